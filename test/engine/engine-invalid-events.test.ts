import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryRecorder, positionOf } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, expectEngineError, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const MAX_PAYLOAD = 1024;
const valid = () => ({ type: 'orders/created', payload: bytes('ok') });

/** One bad field at a time, on an otherwise valid event, and the field the refusal must name. */
const BAD_EVENTS: Array<[string, Record<string, unknown>, string]> = [
  ['a type with a space', { ...valid(), type: 'orders/ created' }, 'type'],
  ['an empty type segment', { ...valid(), type: 'orders//created' }, 'type'],
  ['a type that is not a string', { ...valid(), type: 42 }, 'type'],
  ['no type', { payload: bytes('x') }, 'type'],
  ['a payload one byte too large', { ...valid(), payload: new Uint8Array(MAX_PAYLOAD + 1) }, 'payload'],
  ['a payload that is a string', { ...valid(), payload: 'text' }, 'payload'],
  ['a header value that is a number', { ...valid(), headers: { retries: 3 } }, 'headers'],
  ['headers that are an array', { ...valid(), headers: ['a'] }, 'headers'],
  ['an empty key', { ...valid(), key: '' }, 'key'],
  ['a key over 1024 bytes', { ...valid(), key: 'k'.repeat(1025) }, 'key'],
  ['empty recipients', { ...valid(), recipients: [] }, 'recipients'],
  ['a repeated recipient', { ...valid(), recipients: ['svc-b', 'svc-b'] }, 'recipients'],
  ['an unknown field', { ...valid(), urgency: 9 }, 'urgency'],
  ['a priority above 9', { ...valid(), priority: 10 }, 'priority'],
  ['a fractional priority', { ...valid(), priority: 4.5 }, 'priority'],
  ['a negative delay', { ...valid(), delayMs: -1 }, 'delayMs'],
  ['a delay past the maximum', { ...valid(), delayMs: 31 * 24 * 60 * 60 * 1000 }, 'delayMs'],
  ['both delayMs and deliverAt', { ...valid(), delayMs: 10, deliverAt: Date.now() + 10 }, 'deliverAt'],
  ['a deliverAt that is not a number', { ...valid(), deliverAt: '2026-12-01' }, 'deliverAt'],
  ['a deliverAt past the maximum', { ...valid(), deliverAt: Date.now() + 31 * 24 * 60 * 60 * 1000 }, 'deliverAt'],
  ['a sender', { ...valid(), sender: 'svc-b' }, 'sender'],
  ['an id with a space', { ...valid(), id: 'order 1' }, 'id'],
  ['a short signature', { ...valid(), id: 'e-1', signature: new Uint8Array(10) }, 'signature'],
];

describe('invalid events', () => {
  it('refuses each invalid field with INVALID_EVENT naming it, and stores nothing', async () => {
    const engine = await harness.open({ workers: 1, maxPayloadBytes: MAX_PAYLOAD });
    engine.registerClient({ id: 'producer' });
    engine.registerClient({ id: 'reader' });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'everything', pattern: '**', start: { from: 'all' } }, reader.handler);

    for (const [what, event, field] of BAD_EVENTS) {
      const error = await expectEngineError(engine.publish('producer', event), 'INVALID_EVENT', field);
      expect(error.retryable, what).toBe(false);
      expect(error.message.length, what).toBeGreaterThan(0);
    }
    // A payload of exactly the limit is fine.
    const atLimit = await engine.publish('producer', { ...valid(), payload: new Uint8Array(MAX_PAYLOAD) });
    const marker = await engine.publish('producer', { type: 'orders/created', payload: bytes('marker') });
    expect(atLimit.offset, 'nothing was stored before the valid events').toBe(0);
    expect(marker.offset).toBe(1);

    await reader.waitForAcked([positionOf(marker)], 5_000);
    await sleep(100);
    expect(reader.deliveries.map((d) => d.event.id)).toEqual([atLimit.id, marker.id]);
    expect(text(reader.deliveries[1]!.event.payload)).toBe('marker');
  });

  it('refuses an unknown client with FORBIDDEN, valid event or not', async () => {
    const engine = await harness.open({ workers: 1 });
    engine.registerClient({ id: 'reader' });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'everything', pattern: '**', start: { from: 'all' } }, reader.handler);
    await expectEngineError(engine.publish('stranger', valid()), 'FORBIDDEN');
    await expectEngineError(engine.publish('stranger', { type: '' }), 'FORBIDDEN');
    await expectEngineError(engine.subscribe('stranger', { name: 'x', pattern: '**' }, () => {}), 'FORBIDDEN');

    engine.registerClient({ id: 'producer' });
    const marker = await engine.publish('producer', valid());
    expect(marker.offset).toBe(0);
    await reader.waitForAcked([positionOf(marker)], 5_000);
    expect(reader.deliveries.map((d) => d.event.id)).toEqual([marker.id]);
  });
});
