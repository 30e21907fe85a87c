import { afterEach, describe, expect, it } from 'vitest';
import type { Receipt } from '../../src/engine/delivery.js';
import { DeliveryRecorder, holdAll, positionOf, waitFor, type DeliveryPolicy } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const TYPES = ['orders/created', 'orders/paid', 'orders/shipped', 'invoices/sent', 'users/joined', 'users/left'];
const TEN_SECONDS_US = 10_000_000;

/** Acks each delivery a little later, as a handler that does some work would. */
const ackSoon: DeliveryPolicy = (delivery, consumer, recorder) => {
  setTimeout(() => recorder.ack(consumer, delivery), 2);
};

describe('engine latency recording', () => {
  it('records every stage once per event on the way from publish to ack', async () => {
    const engine = await harness.open();
    engine.registerClient({ id: 'producer' });
    engine.registerClient({ id: 'reader' });
    const reader = new DeliveryRecorder(ackSoon);
    const consumer = await engine.subscribe('reader', { name: 'all', pattern: '**' }, reader.handler);

    // Half one by one, half in batches: both publish paths.
    const single = await Promise.all(
      Array.from({ length: 100 }, (_, i) => engine.publish('producer', { type: TYPES[i % TYPES.length], payload: bytes(`single ${i}`) })),
    );
    const batched: Receipt[] = [];
    for (let batch = 0; batch < 4; batch++) {
      const results = await engine.publishMany(
        'producer',
        Array.from({ length: 25 }, (_, i) => ({ type: TYPES[i % TYPES.length], payload: bytes(`batch ${batch} ${i}`) })),
      );
      for (const result of results) {
        if (!('offset' in result)) throw result;
        batched.push(result);
      }
    }
    const receipts = [...single, ...batched];
    expect(new Set(receipts.map((receipt) => receipt.shard)).size).toBeGreaterThan(1);
    await reader.waitForAcked(receipts.map(positionOf), 10_000);

    const { stages } = engine.latency.snapshot(false);
    for (const name of ['publish_to_durable', 'publish_to_first_delivery', 'delivery_to_ack', 'publish_to_ack'] as const) {
      const stage = stages[name];
      expect(stage.count, name).toBe(200);
      expect(stage.max, name).toBeGreaterThan(0);
      expect(stage.max, name).toBeLessThan(TEN_SECONDS_US);
      expect(stage.min, name).toBeGreaterThanOrEqual(0);
      expect(stage.p50, name).toBeLessThanOrEqual(stage.p99);
    }
    // Microsecond clocks: storing takes time, and every ack waited for a 2 ms timer.
    expect(stages.publish_to_durable.min).toBeGreaterThan(0);
    expect(stages.delivery_to_ack.min).toBeGreaterThanOrEqual(1_000);
    expect(stages.publish_to_ack.min).toBeGreaterThan(0);
    // Each event's end to end spans its wait for the ack (less 1 ms: publishedAt has ms precision),
    // so the same holds, within HDR precision, between the two stages' percentiles.
    for (const percentile of ['p50', 'max'] as const) {
      expect(stages.publish_to_ack[percentile], percentile).toBeGreaterThanOrEqual(stages.delivery_to_ack[percentile] * 0.998 - 1_000);
    }
    // fsync times stay in the shard workers until asked for.
    expect(stages.fsync.count).toBe(0);
    expect(consumer.ackTimes.size).toBe(0);
    const withFsyncs = (await engine.latencyNow(false)).stages.fsync;
    expect(withFsyncs.count, 'each group commit of the events logs timed').toBeGreaterThan(0);
    expect(withFsyncs.min).toBeGreaterThan(0);
    expect(withFsyncs.max).toBeGreaterThanOrEqual(withFsyncs.p50);
    // Taken once: asking again adds only fsyncs made since.
    const fsyncsNow = withFsyncs.count;
    expect((await engine.latencyNow(false)).stages.fsync.count).toBe(fsyncsNow);

    // A reset starts an empty interval.
    expect(engine.latency.snapshot(true).stages.publish_to_ack.count).toBe(200);
    expect(engine.latency.snapshot(false).stages.publish_to_ack.count).toBe(0);
  });

  it('forgets the delivery times of a consumer that closes without acking', async () => {
    const engine = await harness.open();
    engine.registerClient({ id: 'producer' });
    engine.registerClient({ id: 'reader' });
    const holder = new DeliveryRecorder(holdAll);
    const credits = 5;
    const consumer = await engine.subscribe('reader', { name: 'held', pattern: '**' }, holder.handler, { credits });

    const results = await engine.publishMany(
      'producer',
      Array.from({ length: 40 }, (_, i) => ({ type: TYPES[i % TYPES.length], payload: bytes(`held ${i}`) })),
    );
    const shards = new Set(results.map((result) => (result as Receipt).shard));
    await waitFor(() => holder.deliveries.length >= credits * shards.size, 10_000, () => `${holder.deliveries.length} deliveries held`);

    expect(consumer.ackTimes.size).toBe(holder.deliveries.length);
    expect(consumer.ackTimes.size).toBeLessThanOrEqual(credits * engine.options.shards);
    await consumer.close();
    expect(consumer.ackTimes.size).toBe(0);

    // Acks after closing find nothing to time.
    consumer.ack(holder.deliveries);
    const { stages } = engine.latency.snapshot(false);
    expect(stages.publish_to_first_delivery.count).toBe(holder.deliveries.length);
    expect(stages.delivery_to_ack.count).toBe(0);
    expect(stages.publish_to_ack.count).toBe(0);
  });
});
