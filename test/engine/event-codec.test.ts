import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import type { StoredEvent } from '../../src/engine/event.js';
import {
  decodeEventBody,
  encodeEventBody,
  eventStreamTag,
  readEventId,
  readEventType,
} from '../../src/engine/event-codec.js';
import { Prng } from '../helpers/prng.js';
import { storedEvent } from '../helpers/stored-event.js';

const minimalEvent = storedEvent;

function fullEvent(): StoredEvent {
  return minimalEvent({
    type: 'orders/eu/created.v2',
    id: 'order-42:attempt-1',
    payload: Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff),
    headers: { 'content-type': 'application/json', 'x-trace-ünï': 'välue ✓ 😀', empty: '' },
    key: 'customer/Zoë 🚀',
    sender: 'klient-ß-東京',
    publishedAt: Number.MAX_SAFE_INTEGER,
    recipients: ['client-a', 'client-β', 'client-😀'],
    signature: Uint8Array.from({ length: 64 }, (_, i) => 255 - i),
    priority: 9,
    deliverAt: 1_718_000_005_000,
    expiresAt: 2 ** 40 + 17,
  });
}

/** Decoded events hold views; compare them as plain values. */
function plain(event: StoredEvent): unknown {
  return {
    ...event,
    payload: Array.from(event.payload),
    signature: event.signature === null ? null : Array.from(event.signature),
  };
}

function internalError(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (error) {
    if (error instanceof EngineError && error.code === 'INTERNAL') return error;
    throw new Error(`expected an INTERNAL EngineError, got ${String(error)}`);
  }
  throw new Error('expected a throw');
}

describe('encodeEventBody / decodeEventBody', () => {
  it('round-trips a full event with unicode headers, key, sender and recipients', () => {
    const event = fullEvent();
    const decoded = decodeEventBody(encodeEventBody(event));
    expect(plain(decoded)).toEqual(plain(event));
    expect(Object.keys(decoded.headers)).toEqual(Object.keys(event.headers));
  });

  it('round-trips a minimal event with an empty payload', () => {
    const event = minimalEvent();
    const body = encodeEventBody(event);
    expect(plain(decodeEventBody(body))).toEqual(plain(event));
    // version, type, id, priority, flags, 3 times, sender, header count, payload length
    expect(body.length).toBe(1 + 1 + 14 + 1 + 26 + 1 + 1 + 24 + 2 + 8 + 2 + 4);
  });

  it('tells an absent key from an empty one', () => {
    expect(decodeEventBody(encodeEventBody(minimalEvent({ key: '' }))).key).toBe('');
    expect(decodeEventBody(encodeEventBody(minimalEvent({ key: null }))).key).toBeNull();
  });

  it('keeps a header literally named __proto__ as a header', () => {
    const headers = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
    const decoded = decodeEventBody(encodeEventBody(minimalEvent({ headers })));
    expect(Object.getPrototypeOf(decoded.headers)).toBe(Object.prototype);
    expect(Object.entries(decoded.headers)).toEqual([
      ['__proto__', 'x'],
      ['a', 'b'],
    ]);
  });

  it('writes the documented v1 layout byte by byte', () => {
    const body = encodeEventBody({
      id: 'E1',
      type: 'a/b',
      payload: Uint8Array.of(0xaa, 0xbb),
      headers: { h: 'vé' },
      key: 'k',
      sender: 's',
      publishedAt: 0x0102_0304_0506,
      recipients: ['r'],
      signature: new Uint8Array(64).fill(0x5e),
      priority: 7,
      deliverAt: 1,
      expiresAt: 2,
    });
    const expected = Buffer.concat([
      Buffer.from([1]), // version
      Buffer.from([3]), Buffer.from('a/b'), // type
      Buffer.from([2]), Buffer.from('E1'), // id
      Buffer.from([7]), // priority
      Buffer.from([0b111]), // flags: key, recipients, signature
      Buffer.from([6, 5, 4, 3, 2, 1, 0, 0]), // publishedAt u64 LE
      Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]), // deliverAt
      Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), // expiresAt
      Buffer.from([1, 0]), Buffer.from('s'), // sender
      Buffer.from([1, 0]), Buffer.from('k'), // key
      Buffer.from([1, 0]), // header count
      Buffer.from([1, 0]), Buffer.from('h'), Buffer.from([3, 0, 0, 0]), Buffer.from('vé'), // header
      Buffer.from([1, 0]), Buffer.from([1, 0]), Buffer.from('r'), // recipients
      Buffer.alloc(64, 0x5e), // signature
      Buffer.from([2, 0, 0, 0]), Buffer.from([0xaa, 0xbb]), // payload
    ]);
    expect(body.toString('hex')).toBe(expected.toString('hex'));
  });

  it('returns the payload and signature as plain Uint8Array views into the body', () => {
    const body = encodeEventBody(fullEvent());
    const decoded = decodeEventBody(body);
    expect(decoded.payload.constructor).toBe(Uint8Array);
    expect(decoded.payload.buffer).toBe(body.buffer);
    expect(decoded.signature!.buffer).toBe(body.buffer);
    body[body.length - 1] ^= 0xff;
    expect(decoded.payload[decoded.payload.length - 1]).toBe(body[body.length - 1]);
  });

  it('decodes from a plain Uint8Array at an offset inside a larger buffer', () => {
    const event = fullEvent();
    const body = encodeEventBody(event);
    const backing = new Uint8Array(body.length + 10);
    backing.set(body, 7);
    const view = backing.subarray(7, 7 + body.length);
    expect(plain(decodeEventBody(view))).toEqual(plain(event));
    expect(readEventType(view)).toBe(event.type);
    expect(readEventId(view)).toBe(event.id);
  });

  it('round-trips 300 random events', () => {
    const prng = new Prng(4242);
    const alphabet = ['a', 'Z', '9', 'é', 'ß', '東', '😀', ' ', '/', '\u0000'];
    const text = (max: number): string => Array.from({ length: prng.int(0, max) }, () => prng.pick(alphabet)).join('');
    for (let i = 0; i < 300; i++) {
      const headers: Record<string, string> = {};
      for (let h = prng.int(0, 5); h > 0; h--) headers[`h${h}${text(4)}`] = text(40);
      const event = minimalEvent({
        type: Array.from({ length: prng.int(1, 4) }, () => `seg${prng.int(0, 99)}`).join('/'),
        id: `id-${prng.int(0, 1e9)}`,
        payload: prng.bytes(prng.int(0, 2000)),
        headers,
        key: prng.next() < 0.5 ? null : text(60),
        sender: text(30),
        publishedAt: prng.int(0, 2 ** 52),
        recipients: prng.next() < 0.5 ? null : Array.from({ length: prng.int(0, 4) }, () => text(10)),
        signature: prng.next() < 0.5 ? null : new Uint8Array(prng.bytes(64)),
        priority: prng.int(0, 9),
        deliverAt: prng.int(0, 2 ** 45),
        expiresAt: prng.int(0, 2 ** 45),
      });
      const decoded = decodeEventBody(encodeEventBody(event));
      // Compare as JSON text first: 300 deep-equality assertions would dominate the test's time.
      if (JSON.stringify(plain(decoded)) !== JSON.stringify(plain(event))) {
        expect(plain(decoded)).toEqual(plain(event));
      }
    }
  });
});

describe('decodeEventBody refuses malformed bodies', () => {
  it('refuses every truncation of a full body', () => {
    const body = encodeEventBody(fullEvent());
    for (let length = 0; length < body.length; length++) {
      expect(internalError(() => decodeEventBody(body.subarray(0, length))).message).toMatch(/malformed event body/);
    }
  });

  it('refuses trailing bytes, unknown versions, unknown flags and bad priorities', () => {
    const body = encodeEventBody(minimalEvent());
    expect(internalError(() => decodeEventBody(Buffer.concat([body, Buffer.from([0])]))).message).toMatch(/1 bytes after the payload/);
    const v2 = Buffer.from(body);
    v2[0] = 2;
    expect(internalError(() => decodeEventBody(v2)).message).toMatch(/unsupported event body version 2/);
    expect(internalError(() => readEventType(v2)).message).toMatch(/version 2/);
    expect(internalError(() => readEventId(v2)).message).toMatch(/version 2/);
    const typeLength = body[1]!;
    const idLength = body[2 + typeLength]!;
    const priorityAt = 3 + typeLength + idLength;
    const badPriority = Buffer.from(body);
    badPriority[priorityAt] = 10;
    expect(internalError(() => decodeEventBody(badPriority)).message).toMatch(/priority 10/);
    const badFlags = Buffer.from(body);
    badFlags[priorityAt + 1] = 0x08;
    expect(internalError(() => decodeEventBody(badFlags)).message).toMatch(/unknown flags 0x8/);
    const hugeTime = Buffer.from(body);
    hugeTime.writeUInt32LE(0x0020_0000, priorityAt + 2 + 4); // high word of publishedAt: 2^53
    expect(internalError(() => decodeEventBody(hugeTime)).message).toMatch(/exceeds 2\^53/);
  });

  it('throws only INTERNAL engine errors on random garbage and corrupted bodies', () => {
    const prng = new Prng(777);
    const body = encodeEventBody(fullEvent());
    for (let i = 0; i < 2000; i++) {
      const garbage = i % 2 === 0 ? prng.bytes(prng.int(0, 200)) : Buffer.from(body);
      if (i % 2 === 0 && garbage.length > 0) garbage[0] = 1;
      if (i % 2 === 1) garbage[prng.int(0, 60)] = prng.int(0, 255);
      try {
        decodeEventBody(garbage);
      } catch (error) {
        if (!(error instanceof EngineError) || error.code !== 'INTERNAL') throw error;
      }
    }
  });
});

describe('encodeEventBody refuses events it cannot represent', () => {
  it.each([
    ['type', { type: 't'.repeat(256) }, /type must be 1-255 bytes/],
    ['type', { type: '' }, /type must be 1-255 bytes/],
    ['id', { id: '' }, /id must be 1-255 characters/],
    ['id', { id: 'x'.repeat(256) }, /id must be 1-255 characters/],
    ['id', { id: 'idé' }, /id must be ASCII/],
    ['priority', { priority: 10 }, /priority must be an integer 0-9, got 10/],
    ['priority', { priority: 1.5 }, /priority/],
    ['publishedAt', { publishedAt: -1 }, /publishedAt must be a non-negative integer/],
    ['deliverAt', { deliverAt: 1.5 }, /deliverAt/],
    ['expiresAt', { expiresAt: 2 ** 53 }, /expiresAt/],
    ['sender', { sender: 'é'.repeat(40_000) }, /at most 65535 bytes, got 80000/],
    ['key', { key: 'k'.repeat(65_536) }, /key strings must be at most 65535 bytes/],
    ['headers', { headers: { ['n'.repeat(65_536)]: 'v' } }, /headers strings/],
    ['recipients', { recipients: ['r'.repeat(65_536)] }, /recipients strings/],
    ['signature', { signature: new Uint8Array(63) }, /signature must be 64 bytes, got 63/],
  ])('%s: %#', (field, overrides, message) => {
    let caught: unknown;
    try {
      encodeEventBody(minimalEvent(overrides as Partial<StoredEvent>));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EngineError);
    expect((caught as EngineError).code).toBe('INVALID_EVENT');
    expect((caught as EngineError).field).toBe(field);
    expect((caught as EngineError).message).toMatch(message);
  });
});

describe('readEventType / readEventId', () => {
  it('read the first two fields without decoding the rest', () => {
    const body = encodeEventBody(fullEvent());
    expect(readEventType(body)).toBe('orders/eu/created.v2');
    expect(readEventId(body)).toBe('order-42:attempt-1');
    // Everything after the id is irrelevant to them: they work on a body cut right after it.
    const cut = body.subarray(0, 2 + body[1]! + 1 + body[2 + body[1]!]!);
    expect(readEventType(cut)).toBe('orders/eu/created.v2');
    expect(readEventId(cut)).toBe('order-42:attempt-1');
    expect(internalError(() => readEventId(cut.subarray(0, cut.length - 1))).message).toMatch(/truncated/);
    expect(internalError(() => readEventType(new Uint8Array(0))).message).toMatch(/truncated/);
  });
});

describe('eventStreamTag', () => {
  /** Reference FNV-1a 32 over bytes. */
  function fnv1a(bytes: Uint8Array): number {
    let hash = 0x811c9dc5;
    for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    return hash;
  }

  it('is FNV-1a 32 of the UTF-8 type', () => {
    // Published FNV-1a test vectors.
    expect(eventStreamTag('')).toBe(0x811c9dc5);
    expect(eventStreamTag('a')).toBe(0xe40c292c);
    expect(eventStreamTag('foobar')).toBe(0xbf9cf968);
    for (const type of ['orders/created', 'ünïcode/東京', 'emoji/😀']) {
      expect(eventStreamTag(type)).toBe(fnv1a(Buffer.from(type, 'utf8')));
    }
  });

  it('returns the same tag from its cache, and stays correct past the cache bound', () => {
    const first = eventStreamTag('orders/created');
    for (let i = 0; i < 100_050; i++) eventStreamTag(`t/${i}`);
    expect(eventStreamTag('orders/created')).toBe(first);
    expect(eventStreamTag('t/5')).toBe(fnv1a(Buffer.from('t/5')));
    expect(eventStreamTag('t/100049')).toBe(fnv1a(Buffer.from('t/100049')));
  });
});
