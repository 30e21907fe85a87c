import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.js';
import { EngineError } from '../../src/engine/errors.js';
import { DeliveryRecorder, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

/** Publish `count` events built by `make`, a window's worth at a time. */
async function publishAll(engine: Engine, count: number, make: (i: number) => object): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - start) }, (_, j) => make(start + j));
    const results = await engine.publishMany('producer', batch);
    const failed = results.find((r) => r instanceof EngineError);
    if (failed) throw failed;
  }
}

async function openWithClients(options: Parameters<EngineHarness['open']>[0] = {}): Promise<Engine> {
  const engine = await harness.open({ shards: 1, ...options });
  for (const id of ['producer', 'reader']) engine.registerClient({ id });
  return engine;
}

describe('priority', () => {
  it('delivers a priority-9 event next even behind a million waiting priority-1 events of the same type', { timeout: 120_000 }, async () => {
    const engine = await openWithClients();
    const idle = await engine.subscribe('reader', { name: 'jobs', pattern: 'jobs/run' }, () => {});
    await idle.close();
    await publishAll(engine, 1_000_000, () => ({ type: 'jobs/run', payload: bytes('low'), priority: 1 }));
    const urgent = await engine.publish('producer', { type: 'jobs/run', payload: bytes('urgent'), priority: 9 });

    const reader = new DeliveryRecorder();
    const consumer = await engine.subscribe('reader', { name: 'jobs', pattern: 'jobs/run' }, reader.handler, { credits: 1 });
    await waitFor(() => reader.deliveries.length >= 3, 10_000, 'three deliveries');
    await consumer.close();
    expect(reader.deliveries[0]!.event.id).toBe(urgent.id);
    expect(reader.deliveries[0]!.event.priority).toBe(9);
    // Then the backlog, in publish order.
    expect(reader.deliveries[1]!.event.priority).toBe(1);
    expect(reader.deliveries[2]!.offset).toBeGreaterThan(reader.deliveries[1]!.offset);
  });

  it('delivers waiting events highest priority first, publish order within a priority', async () => {
    const engine = await openWithClients();
    const idle = await engine.subscribe('reader', { name: 'all', pattern: 'jobs/**' }, () => {});
    await idle.close();
    // Priorities in a scrambled but fixed order; two types share the shard.
    const priorities = Array.from({ length: 200 }, (_, i) => (i * 7) % 10);
    await publishAll(engine, priorities.length, (i) => ({ type: i % 2 ? 'jobs/a' : 'jobs/b', payload: bytes(String(i)), priority: priorities[i]! }));

    const reader = new DeliveryRecorder();
    const consumer = await engine.subscribe('reader', { name: 'all', pattern: 'jobs/**' }, reader.handler, { credits: 1 });
    await waitFor(() => reader.acked.size === priorities.length, 10_000, () => `${reader.acked.size} of ${priorities.length} acked`);
    await consumer.close();
    const delivered = reader.deliveries.map((d) => Number(text(d.event.payload)));
    const expected = priorities.map((priority, i) => ({ priority, i })).sort((a, b) => b.priority - a.priority || a.i - b.i).map((e) => e.i);
    expect(delivered).toEqual(expected);
  });

  it('a newly published urgent event overtakes the read-ahead of a live consumer', async () => {
    const engine = await openWithClients();
    const seen: number[] = [];
    let release: (() => void) | null = null;
    const consumer = await engine.subscribe(
      'reader',
      { name: 'live', pattern: 'jobs/**', maxInFlight: 50 },
      (deliveries, c) => {
        for (const d of deliveries) {
          seen.push(d.event.priority);
          // Hold the first delivery until the urgent event is published, then ack everything.
          if (seen.length === 1) release = () => c.ack(d);
          else c.ack(d);
        }
      },
      { credits: 1 },
    );
    await publishAll(engine, 500, () => ({ type: 'jobs/a', payload: bytes('normal') }));
    await waitFor(() => release !== null, 5_000, 'the first delivery');
    await engine.publish('producer', { type: 'jobs/a', payload: bytes('urgent'), priority: 8 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    release!();
    await waitFor(() => seen.length === 501, 10_000, () => `${seen.length} of 501 delivered`);
    await consumer.close();
    expect(seen[1]).toBe(8);
  });

  it('keeps lane positions across a restart: nothing acked comes back, nothing waiting is lost', async () => {
    const dataDir = await harness.dataDir();
    let engine = await openWithClients({ dataDir });
    const idle = await engine.subscribe('reader', { name: 'r', pattern: 'jobs/**' }, () => {});
    await idle.close();
    await publishAll(engine, 300, (i) => ({ type: 'jobs/a', payload: bytes(String(i)), priority: i % 3 === 0 ? 7 : i % 3 === 1 ? 2 : 4 }));
    const first = new DeliveryRecorder();
    let consumer = await engine.subscribe('reader', { name: 'r', pattern: 'jobs/**' }, (deliveries, c) => {
      for (const d of deliveries) if (first.deliveries.length < 150) first.handler([d], c);
    }, { credits: 1 });
    await waitFor(() => first.acked.size === 150, 10_000, () => `${first.acked.size} of 150 acked`);
    await consumer.close();
    await harness.close(engine);

    engine = await openWithClients({ dataDir });
    const second = new DeliveryRecorder();
    consumer = await engine.subscribe('reader', { name: 'r', pattern: 'jobs/**' }, second.handler, { credits: 1 });
    await waitFor(() => second.acked.size >= 150, 10_000, () => `${second.acked.size} of 150 acked`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await consumer.close();
    const before = first.deliveries.map((d) => text(d.event.payload));
    const after = second.deliveries.map((d) => text(d.event.payload));
    expect(new Set([...before, ...after]).size).toBe(300);
    expect(before.length + after.length).toBe(300);
    // Before the restart: all 100 of priority 7, then priority 4.
    expect(first.deliveries.slice(0, 100).every((d) => d.event.priority === 7)).toBe(true);
    expect(second.deliveries.at(-1)!.event.priority).toBe(2);
  });

  it('in an ordered subscription, order per key wins over priority', async () => {
    const engine = await openWithClients();
    const idle = await engine.subscribe('reader', { name: 'o', pattern: 'jobs/**', ordered: true }, () => {});
    await idle.close();
    await publishAll(engine, 20, (i) => ({ type: 'jobs/a', key: 'k', payload: bytes(String(i)), priority: i % 10 }));
    const reader = new DeliveryRecorder();
    const consumer = await engine.subscribe('reader', { name: 'o', pattern: 'jobs/**', ordered: true }, reader.handler);
    await waitFor(() => reader.acked.size === 20, 5_000, () => `${reader.acked.size} of 20 acked`);
    await consumer.close();
    expect(reader.deliveries.map((d) => text(d.event.payload))).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });
});
