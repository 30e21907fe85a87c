import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryPacker } from '../../../src/engine/delivery-batch.js';
import { OffsetRangeSet } from '../../../src/engine/shard/offset-range-set.js';
import { directoryBytes, MAX_COUNTED_TYPES, OTHER_TYPE, ShardMetrics, type EventTypeCounts } from '../../../src/engine/shard/shard-metrics.js';
import { SubscriptionState } from '../../../src/engine/shard/subscription-state.js';
import { resolveSubscriptionSpec } from '../../../src/engine/subscription-spec.js';
import { TempDirs } from '../../helpers/temp-dirs.js';

const temps = new TempDirs();
afterEach(() => temps.cleanup());

function countsOf(metrics: ShardMetrics, type: string): EventTypeCounts | undefined {
  return metrics.eventTypes().find((c) => c.type === type);
}

describe('ShardMetrics', () => {
  it('counts each kind of event by type, redeliveries being deliveries with attempt > 1', () => {
    const metrics = new ShardMetrics();
    metrics.published('a/x', 3);
    metrics.published('b/y');
    metrics.delivered('a/x', 1);
    metrics.delivered('a/x', 2);
    metrics.delivered('a/x', 3);
    metrics.acked('a/x');
    metrics.nacked('a/x');
    metrics.nacked('a/x');
    metrics.deferred('b/y');
    metrics.deadLettered('b/y', 'expired');
    metrics.deadLettered('b/y', 'discarded');
    metrics.deadLettered('b/y', 'discarded');
    metrics.deadLettered('a/x', 'max-deliveries');

    expect(metrics.eventTypes()).toEqual([
      { type: 'a/x', published: 3, delivered: 3, redelivered: 2, acked: 1, nacked: 2, deferred: 0, deadLettered: { expired: 0, discarded: 0, 'max-deliveries': 1 } },
      { type: 'b/y', published: 1, delivered: 0, redelivered: 0, acked: 0, nacked: 0, deferred: 1, deadLettered: { expired: 1, discarded: 2, 'max-deliveries': 0 } },
    ]);
  });

  it(`counts at most ${MAX_COUNTED_TYPES} types by name; later types go under ${OTHER_TYPE}`, () => {
    const metrics = new ShardMetrics();
    for (let i = 0; i < MAX_COUNTED_TYPES; i++) metrics.published(`t/${i}`);
    expect(metrics.typeCount).toBe(MAX_COUNTED_TYPES);
    expect(countsOf(metrics, OTHER_TYPE)).toBeUndefined();

    metrics.published('late/one');
    metrics.delivered('late/two', 2);
    metrics.published('t/0');
    expect(metrics.typeCount).toBe(MAX_COUNTED_TYPES);
    const types = metrics.eventTypes();
    expect(types).toHaveLength(MAX_COUNTED_TYPES + 1);
    expect(types[types.length - 1]).toMatchObject({ type: OTHER_TYPE, published: 1, delivered: 1, redelivered: 1 });
    expect(countsOf(metrics, 'late/one')).toBeUndefined();
    expect(countsOf(metrics, 't/0')!.published).toBe(2);
  });

  it(`merges an event type named ${OTHER_TYPE} with the overflow: one series per name`, () => {
    const metrics = new ShardMetrics(1);
    metrics.published(OTHER_TYPE);
    metrics.published('a/x');
    metrics.published('b/y');
    expect(metrics.eventTypes().map((c) => [c.type, c.published])).toEqual([
      ['a/x', 1],
      [OTHER_TYPE, 2],
    ]);
  });

  it('serializes to plain data that survives structured cloning, and snapshots do not change afterwards', () => {
    const metrics = new ShardMetrics();
    metrics.published('a/x');
    metrics.deadLettered('a/x', 'expired');
    const snapshot = metrics.eventTypes();
    metrics.published('a/x');
    expect(structuredClone(snapshot)).toEqual(snapshot);
    expect(snapshot[0]!.published).toBe(1);
    expect(countsOf(metrics, 'a/x')!.published).toBe(2);
  });
});

describe('subscription state counting into ShardMetrics', () => {
  it('counts deliveries, redeliveries, acks, nacks, discards and expiries by the type of the pending event', () => {
    const metrics = new ShardMetrics();
    const spec = resolveSubscriptionSpec('svc', { name: 'sub', pattern: 't/**', ackTimeoutMs: 1_000, maxDeliveries: 2 });
    const state = new SubscriptionState(spec, 0, new OffsetRangeSet(), 0, {}, metrics);
    state.attach('c1', 100);
    const now = 1_000_000;
    // Keyed events: the type is not the ordering key.
    state.offer(0, 'key-0', Uint8Array.of(0), 0, 1, 0, undefined, undefined, undefined, 't/acked');
    state.offer(1, 'key-1', Uint8Array.of(1), 0, 1, 0, undefined, undefined, undefined, 't/nacked');
    state.offer(2, 'key-2', Uint8Array.of(2), 0, 1, 0, undefined, undefined, undefined, 't/discarded');
    state.offer(3, 'key-3', Uint8Array.of(3), 0, 1, now - 1, undefined, undefined, undefined, 't/expired');
    state.readOffset = 4;
    const out = new DeliveryPacker();

    const dead = state.dispatch(now, out);
    expect(dead.map((d) => d.reason)).toEqual(['expired']);
    state.ack([0, 0]);
    state.nack([1], 0, now);
    state.discard([2], 'bad');
    state.dispatch(now, out); // redelivers 1 (attempt 2)
    state.nack([1], 0, now);
    state.dispatch(now, out); // attempt 2 reached maxDeliveries: dead-lettered
    expect(state.inFlight).toBe(0);

    const zero = { published: 0, deferred: 0 };
    expect(metrics.eventTypes()).toEqual([
      { type: 't/acked', ...zero, delivered: 1, redelivered: 0, acked: 1, nacked: 0, deadLettered: { expired: 0, discarded: 0, 'max-deliveries': 0 } },
      { type: 't/nacked', ...zero, delivered: 2, redelivered: 1, acked: 0, nacked: 2, deadLettered: { expired: 0, discarded: 0, 'max-deliveries': 1 } },
      { type: 't/discarded', ...zero, delivered: 1, redelivered: 0, acked: 0, nacked: 0, deadLettered: { expired: 0, discarded: 1, 'max-deliveries': 0 } },
      { type: 't/expired', ...zero, delivered: 0, redelivered: 0, acked: 0, nacked: 0, deadLettered: { expired: 1, discarded: 0, 'max-deliveries': 0 } },
    ]);
  });

  it('counts a defer once its return is scheduled, not when it fails', () => {
    const metrics = new ShardMetrics();
    const spec = resolveSubscriptionSpec('svc', { name: 'sub', pattern: 't/**' });
    const state = new SubscriptionState(spec, 0, new OffsetRangeSet(), 0, {}, metrics);
    state.attach('c1', 100);
    state.offer(0, 't/d', Uint8Array.of(0), 0, 1);
    state.offer(1, 't/d', Uint8Array.of(1), 0, 1);
    state.readOffset = 2;
    state.dispatch(1_000, new DeliveryPacker());
    expect(state.defer([0, 1])).toEqual([0, 1]);
    state.deferFailed([1]);
    state.deferred([0, 1]);
    expect(countsOf(metrics, 't/d')).toMatchObject({ delivered: 2, deferred: 1 });
  });
});

describe('directoryBytes', () => {
  it('sums the sizes of the files under a directory, recursively; a missing directory has none', async () => {
    const dir = await temps.make('shard-metrics-');
    await fs.mkdir(path.join(dir, 'a', 'b'), { recursive: true });
    await fs.writeFile(path.join(dir, 'top'), Buffer.alloc(100));
    await fs.writeFile(path.join(dir, 'a', 'mid'), Buffer.alloc(1000));
    await fs.writeFile(path.join(dir, 'a', 'b', 'deep'), Buffer.alloc(4097));
    expect(await directoryBytes(dir)).toBe(5197);
    expect(await directoryBytes(path.join(dir, 'absent'))).toBe(0);
  });
});
