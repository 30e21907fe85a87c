import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryRecorder, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, expectEngineError, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

describe('audit trail', () => {
  it('returns an event with its trail: published, delivered, nacked, redelivered, acked; by engine and producer ids, across a restart', async () => {
    const dataDir = await harness.dataDir();
    let engine = await harness.open({ dataDir });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    // Nack each event's first delivery, ack the second.
    const reader = new DeliveryRecorder((delivery, consumer, recorder) => {
      if (delivery.attempt === 1) recorder.nack(consumer, delivery, 30);
      else recorder.ack(consumer, delivery);
    });
    const consumer = await engine.subscribe('reader', { name: 'audit', pattern: 'orders/**' }, reader.handler);
    const chosen = await engine.publish('producer', { type: 'orders/paid', id: 'order-77-paid', payload: bytes('paid') });
    const assigned = await engine.publish('producer', { type: 'orders/paid', payload: bytes('assigned') });
    await waitFor(() => reader.acked.size === 2, 5_000, () => `${reader.acked.size} of 2 acked`);

    const check = async () => {
      for (const receipt of [chosen, assigned]) {
        const { event, offset, shard, trail } = await engine.eventTrail('orders/paid', receipt.id);
        expect({ id: event.id, offset, shard }).toEqual({ id: receipt.id, offset: receipt.offset, shard: receipt.shard });
        expect(trail.map((e) => e.kind)).toEqual(['published', 'delivered', 'nacked', 'delivered', 'acked']);
        expect(trail[0]).toMatchObject({ client: 'producer', at: event.publishedAt });
        expect(trail[1]).toMatchObject({ subscription: 'reader/audit', consumer: consumer.id, attempt: 1 });
        expect(trail[2]).toMatchObject({ subscription: 'reader/audit', delayMs: 30 });
        expect(trail[3]).toMatchObject({ attempt: 2 });
        expect(trail[4]).toMatchObject({ subscription: 'reader/audit' });
        const times = trail.map((e) => e.at);
        expect([...times].sort((a, b) => a - b)).toEqual(times);
      }
      expect(text((await engine.eventTrail('orders/paid', chosen.id)).event.payload)).toBe('paid');
    };
    await check();

    await harness.close(engine);
    engine = await harness.open({ dataDir });
    await check();
  });

  it('answers NOT_FOUND for an event that does not exist, and refuses a bad type', async () => {
    const engine = await harness.open();
    engine.registerClient({ id: 'producer' });
    await engine.publish('producer', { type: 'orders/paid', id: 'exists', payload: bytes('x') });
    await expectEngineError(engine.eventTrail('orders/paid', 'missing'), 'NOT_FOUND', 'id');
    await expectEngineError(engine.eventTrail('orders/other', 'exists'), 'NOT_FOUND', 'id');
    await expectEngineError(engine.eventTrail('bad//type', 'exists'), 'INVALID_EVENT', 'type');
  });
  it("finds a producer's own id after the dedup window by scanning the type's records", async () => {
    const engine = await harness.open({ dedupWindowMs: 50 });
    engine.registerClient({ id: 'producer' });
    const target = await engine.publish('producer', { type: 'orders/paid', id: 'invoice-9', payload: bytes('target') });
    for (let i = 0; i < 50; i++) await engine.publish('producer', { type: i % 2 ? 'orders/paid' : 'orders/other', payload: bytes(`noise-${i}`) });
    await new Promise((resolve) => setTimeout(resolve, 120));
    const { event, offset, trail } = await engine.eventTrail('orders/paid', 'invoice-9');
    expect({ id: event.id, offset, payload: text(event.payload) }).toEqual({ id: 'invoice-9', offset: target.offset, payload: 'target' });
    expect(trail.map((e) => e.kind)).toEqual(['published']);
  });
  it('keeps at most trailRetentionBytes of trail per shard, dropping the oldest', async () => {
    const dataDir = await harness.dataDir();
    const engine = await harness.open({ dataDir, shards: 1, trailRetentionBytes: 256 * 1024 });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'audit', pattern: 'orders/**' }, reader.handler);
    const first = await engine.publish('producer', { type: 'orders/paid', payload: bytes('first') });
    for (let round = 0; round < 40; round++) {
      await engine.publishMany('producer', Array.from({ length: 500 }, () => ({ type: 'orders/paid', payload: bytes('x') })));
      await waitFor(() => reader.acked.size === 1 + (round + 1) * 500, 10_000, () => `${reader.acked.size} acked`);
    }
    const trailDir = path.join(dataDir, 'shards', '0', 'state', 'trail');
    const bytesOnDisk = fs.readdirSync(trailDir).filter((f) => f.endsWith('.log')).reduce((sum, f) => sum + fs.statSync(path.join(trailDir, f)).size, 0);
    expect(bytesOnDisk).toBeLessThanOrEqual(256 * 1024 + 64 * 1024);
    // The oldest event's deliveries fell out of the bounded trail; its publication is still known.
    const { trail } = await engine.eventTrail('orders/paid', first.id);
    expect(trail.map((e) => e.kind)).toEqual(['published']);
  });
});
