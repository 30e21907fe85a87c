import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import {
  DEFAULT_EVENT_LIMITS,
  MAX_EVENT_TYPE_BYTES,
  validateEventType,
  validatePublishInput,
  type EventLimits,
} from '../../src/engine/event.js';

const payload = new Uint8Array([1, 2, 3]);

function rejection(input: unknown, limits?: EventLimits): EngineError {
  try {
    validatePublishInput(input, limits);
  } catch (error) {
    if (error instanceof EngineError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be refused`);
}

function expectRefused(input: unknown, field: string, message: RegExp, limits?: EventLimits): void {
  const error = rejection(input, limits);
  expect(error.code).toBe('INVALID_EVENT');
  expect(error.field).toBe(field);
  expect(error.message).toMatch(message);
  expect(error.message).toContain(field === 'event' ? 'event' : field);
}

describe('DEFAULT_EVENT_LIMITS', () => {
  it('has the documented values and cannot be changed', () => {
    expect(DEFAULT_EVENT_LIMITS).toEqual({
      maxPayloadBytes: 1024 * 1024,
      maxHeaders: 64,
      maxHeaderBytes: 16 * 1024,
      maxKeyBytes: 1024,
      maxIdBytes: 128,
      maxRecipients: 256,
      maxTtlMs: 30 * 24 * 60 * 60 * 1000,
      maxScheduleMs: 30 * 24 * 60 * 60 * 1000,
    });
    expect(Object.isFrozen(DEFAULT_EVENT_LIMITS)).toBe(true);
  });
});

describe('validateEventType', () => {
  it('accepts hierarchical names of [A-Za-z0-9._-] segments', () => {
    for (const type of ['orders', 'orders/created', 'a/b/c/d', 'Orders.V2/created_at-1', '_/-/.', 'x'.repeat(MAX_EVENT_TYPE_BYTES)]) {
      expect(validateEventType(type)).toBe(type);
    }
  });

  it.each([
    ['', /must not be empty/],
    ['/orders', /empty segment at index 0/],
    ['orders/', /must not end with \//],
    ['orders//created', /empty segment at index 7/],
    ['orders/*', /character "\*"/],
    ['orders created', /character " "/],
    ['orders/é', /character "é"/],
    ['x'.repeat(MAX_EVENT_TYPE_BYTES + 1), /at most 255 bytes/],
  ])('refuses %j', (type, message) => {
    try {
      validateEventType(type);
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(EngineError);
      expect((error as EngineError).code).toBe('INVALID_EVENT');
      expect((error as EngineError).field).toBe('type');
      expect((error as EngineError).message).toMatch(message);
    }
  });

  it('refuses non-strings and names the given field', () => {
    expect(() => validateEventType(42)).toThrow(/type must be a string, got number/);
    try {
      validateEventType('a//b', 'subscription.type');
    } catch (error) {
      expect((error as EngineError).field).toBe('subscription.type');
      expect((error as EngineError).message).toContain('subscription.type');
    }
    expect.assertions(3);
  });
});

describe('validatePublishInput', () => {
  it('accepts a minimal event and returns only its fields', () => {
    expect(validatePublishInput({ type: 'orders/created', payload })).toEqual({ type: 'orders/created', payload });
  });

  it('accepts a full event and copies headers and recipients', () => {
    const input = {
      type: 'orders/created',
      id: 'order-42:v1',
      payload,
      headers: { 'content-type': 'application/json', 'x-ünïcode': 'välue ✓' } as Record<string, string>,
      key: 'customer/7 ✓',
      recipients: ['client-a', 'client-b'],
      signature: new Uint8Array(64),
    };
    const result = validatePublishInput(input);
    expect(result).toEqual(input);
    expect(result.headers).not.toBe(input.headers);
    expect(result.recipients).not.toBe(input.recipients);
    input.headers['late'] = 'added';
    input.recipients.push('client-c');
    expect(result.headers).not.toHaveProperty('late');
    expect(result.recipients).toEqual(['client-a', 'client-b']);
  });

  it('accepts Buffers as payload and signature, and treats undefined optional fields as absent', () => {
    const result = validatePublishInput({ type: 't', payload: Buffer.from('hi'), signature: Buffer.alloc(64), key: undefined });
    expect(result).not.toHaveProperty('key');
    expect(Buffer.from(result.payload).toString()).toBe('hi');
  });

  it('refuses a non-object event', () => {
    expectRefused(null, 'event', /event must be an object, got null/);
    expectRefused([], 'event', /got an array/);
    expectRefused('orders', 'event', /got string/);
  });

  it('refuses engine-set and unknown fields', () => {
    expectRefused({ type: 't', payload, sender: 'me' }, 'sender', /sender is set by the engine/);
    expectRefused({ type: 't', payload, publishedAt: 1 }, 'publishedAt', /publishedAt is set by the engine/);
    expectRefused({ type: 't', payload, colour: 'red' }, 'colour', /unknown field "colour"/);
  });

  it('checks type', () => {
    expectRefused({ payload }, 'type', /type must be a string, got undefined/);
    expectRefused({ type: 'a//b', payload }, 'type', /empty segment/);
  });

  it('checks id', () => {
    expectRefused({ type: 't', id: 7, payload }, 'id', /id must be a string, got number/);
    expectRefused({ type: 't', id: '', payload }, 'id', /id must not be empty/);
    expectRefused({ type: 't', id: 'has space', payload }, 'id', /printable ASCII without spaces; character code 32 at index 3/);
    expectRefused({ type: 't', id: 'tab\t', payload }, 'id', /printable ASCII/);
    expectRefused({ type: 't', id: 'déjà', payload }, 'id', /printable ASCII/);
    expectRefused({ type: 't', id: 'x\u007f', payload }, 'id', /printable ASCII/);
    expect(validatePublishInput({ type: 't', id: 'x'.repeat(128), payload }).id).toHaveLength(128);
    expectRefused({ type: 't', id: 'x'.repeat(129), payload }, 'id', /at most 128 bytes, got 129/);
  });

  it('checks payload', () => {
    expectRefused({ type: 't' }, 'payload', /payload must be a Uint8Array, got undefined/);
    expectRefused({ type: 't', payload: 'text' }, 'payload', /got string/);
    expectRefused({ type: 't', payload: new ArrayBuffer(3) }, 'payload', /got ArrayBuffer/);
    expectRefused({ type: 't', payload: [1, 2] }, 'payload', /got an array/);
    expect(validatePublishInput({ type: 't', payload: new Uint8Array(0) }).payload).toHaveLength(0);
    expect(validatePublishInput({ type: 't', payload: new Uint8Array(DEFAULT_EVENT_LIMITS.maxPayloadBytes) }).payload).toHaveLength(
      DEFAULT_EVENT_LIMITS.maxPayloadBytes,
    );
    expectRefused({ type: 't', payload: new Uint8Array(DEFAULT_EVENT_LIMITS.maxPayloadBytes + 1) }, 'payload', /at most 1048576 bytes, got 1048577/);
  });

  it('checks headers', () => {
    expectRefused({ type: 't', payload, headers: 'a=b' }, 'headers', /headers must be a plain object/);
    expectRefused({ type: 't', payload, headers: ['a'] }, 'headers', /plain object/);
    expectRefused({ type: 't', payload, headers: new Map() }, 'headers', /got Map/);
    expectRefused({ type: 't', payload, headers: { a: 1 } }, 'headers', /headers\["a"\] must be a string, got number/);
    expectRefused({ type: 't', payload, headers: { '': 'x' } }, 'headers', /empty name/);
    expectRefused({ type: 't', payload, headers: JSON.parse('{"__proto__":"x"}') }, 'headers', /__proto__/);
    expectRefused({ type: 't', payload, headers: { a: 'bad \ud800' } }, 'headers', /headers\["a"\] is not valid Unicode/);
    expectRefused({ type: 't', payload, headers: { ['\udc00']: 'x' } }, 'headers', /headers name .* is not valid Unicode/);
    expect(validatePublishInput({ type: 't', payload, headers: Object.assign(Object.create(null), { a: 'b' }) }).headers).toEqual({ a: 'b' });

    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`h${i}`, 'v']));
    expectRefused({ type: 't', payload, headers: many }, 'headers', /at most 64 entries, got 65/);
    delete many['h64'];
    expect(Object.keys(validatePublishInput({ type: 't', payload, headers: many }).headers!)).toHaveLength(64);

    // Names and values together, in UTF-8 bytes: 'é' is 2 bytes.
    const exact = { n: 'x'.repeat(16 * 1024 - 1) };
    expect(validatePublishInput({ type: 't', payload, headers: exact }).headers).toEqual(exact);
    expectRefused({ type: 't', payload, headers: { n: 'x'.repeat(16 * 1024 - 2) + 'é' } }, 'headers', /at most 16384 bytes/);
  });

  it('checks key', () => {
    expectRefused({ type: 't', payload, key: 5 }, 'key', /key must be a string, got number/);
    expectRefused({ type: 't', payload, key: null }, 'key', /got null/);
    expectRefused({ type: 't', payload, key: '' }, 'key', /key must not be empty/);
    expectRefused({ type: 't', payload, key: '\ud83d' }, 'key', /not valid Unicode/);
    expect(validatePublishInput({ type: 't', payload, key: 'é'.repeat(512) }).key).toHaveLength(512);
    expectRefused({ type: 't', payload, key: 'é'.repeat(512) + 'x' }, 'key', /at most 1024 bytes, got 1025/);
  });

  it('checks recipients', () => {
    expectRefused({ type: 't', payload, recipients: 'client-a' }, 'recipients', /recipients must be an array of client ids, got string/);
    expectRefused({ type: 't', payload, recipients: [] }, 'recipients', /must not be empty/);
    expectRefused({ type: 't', payload, recipients: ['a', 3] }, 'recipients', /recipients\[1\] must be a string, got number/);
    expectRefused({ type: 't', payload, recipients: ['a', ''] }, 'recipients', /recipients\[1\] must not be empty/);
    expectRefused({ type: 't', payload, recipients: ['a', 'b', 'a'] }, 'recipients', /recipients\[2\] repeats "a"/);
    expectRefused({ type: 't', payload, recipients: ['x'.repeat(129)] }, 'recipients', /recipients\[0\] must be at most 128 bytes, got 129/);
    expectRefused({ type: 't', payload, recipients: ['\udfff'] }, 'recipients', /not valid Unicode/);
    const full = Array.from({ length: 256 }, (_, i) => `client-${i}`);
    expect(validatePublishInput({ type: 't', payload, recipients: full }).recipients).toEqual(full);
    expectRefused({ type: 't', payload, recipients: [...full, 'one-more'] }, 'recipients', /at most 256 entries, got 257/);
  });

  it('checks signature', () => {
    expectRefused({ type: 't', payload, signature: 'base64...' }, 'signature', /signature must be a Uint8Array, got string/);
    expectRefused({ type: 't', payload, signature: new Uint8Array(63) }, 'signature', /exactly 64 bytes \(Ed25519\), got 63/);
    expectRefused({ type: 't', payload, signature: new Uint8Array(65) }, 'signature', /got 65/);
  });

  it('applies custom limits', () => {
    const limits: EventLimits = { maxPayloadBytes: 2, maxHeaders: 1, maxHeaderBytes: 4, maxKeyBytes: 3, maxIdBytes: 5, maxRecipients: 1, maxTtlMs: 10, maxScheduleMs: 10 };
    expectRefused({ type: 't', payload }, 'payload', /at most 2 bytes/, limits);
    expectRefused({ type: 't', payload: new Uint8Array(1), headers: { a: 'b', c: 'd' } }, 'headers', /at most 1 entries/, limits);
    expectRefused({ type: 't', payload: new Uint8Array(1), headers: { ab: 'cde' } }, 'headers', /at most 4 bytes/, limits);
    expectRefused({ type: 't', payload: new Uint8Array(1), key: 'abcd' }, 'key', /at most 3 bytes/, limits);
    expectRefused({ type: 't', payload: new Uint8Array(1), id: 'abcdef' }, 'id', /at most 5 bytes/, limits);
    expectRefused({ type: 't', payload: new Uint8Array(1), recipients: ['a', 'b'] }, 'recipients', /at most 1 entries/, limits);
    expectRefused({ type: 't', payload: new Uint8Array(1), ttlMs: 11 }, 'ttlMs', /from 1 to 10/, limits);
  });
});
