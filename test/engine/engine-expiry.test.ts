import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryRecorder, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, expectEngineError, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

describe('event expiry (ttlMs)', () => {
  it('drops an event not delivered before it expires and records it as expired; others are delivered', async () => {
    const engine = await harness.open();
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    let reader = new DeliveryRecorder();
    let consumer = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, reader.handler);
    await consumer.close();

    const shortLived = await engine.publish('producer', { type: 'orders/created', payload: bytes('short'), ttlMs: 100 });
    const longLived = await engine.publish('producer', { type: 'orders/created', payload: bytes('long'), ttlMs: 60_000 });
    const forever = await engine.publish('producer', { type: 'orders/created', payload: bytes('forever') });
    await sleep(250);

    reader = new DeliveryRecorder();
    consumer = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, reader.handler);
    await waitFor(() => reader.acked.size === 2, 5_000, () => `${reader.acked.size} of 2 acked`);
    await sleep(100);
    expect(reader.deliveries.map((d) => text(d.event.payload))).toEqual(['long', 'forever']);
    expect(reader.deliveries[0]!.event.expiresAt).toBeGreaterThan(reader.deliveries[0]!.event.publishedAt);
    expect(reader.deliveries[1]!.event.expiresAt).toBe(0);

    const letters = await engine.deadLetters('reader', 'orders');
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ id: shortLived.id, offset: shortLived.offset, reason: 'expired', attempts: 0 });
    expect([longLived.id, forever.id]).not.toContain(letters[0]!.id);
  });

  it('refuses a ttlMs that is not a positive integer within the limit', async () => {
    const engine = await harness.open();
    engine.registerClient({ id: 'producer' });
    for (const ttlMs of [0, -5, 1.5, '100', 31 * 24 * 60 * 60 * 1000]) {
      await expectEngineError(engine.publish('producer', { type: 'orders/created', payload: bytes('x'), ttlMs }), 'INVALID_EVENT', 'ttlMs');
    }
  });
});
