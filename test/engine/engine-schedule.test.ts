import { afterEach, describe, expect, it } from 'vitest';
import type { Consumer } from '../../src/engine/consumer.js';
import type { Delivery } from '../../src/engine/delivery.js';
import type { Engine } from '../../src/engine/engine.js';
import { DeliveryRecorder, holdAll, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, expectEngineError, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

async function openWithClients(options: Parameters<EngineHarness['open']>[0] = {}): Promise<Engine> {
  const engine = await harness.open(options);
  for (const id of ['producer', 'reader']) engine.registerClient({ id });
  return engine;
}

/** When each event id was first delivered. */
function firstDeliveryTimes(recorder: DeliveryRecorder): Map<string, number> {
  const times = new Map<string, number>();
  for (const entry of recorder.timeline) if (entry.kind === 'delivered' && !times.has(entry.delivery.event.id)) times.set(entry.delivery.event.id, entry.at);
  return times;
}

describe('scheduled delivery', () => {
  it('delivers delayMs and deliverAt events at their due time, not before, and immediate ones at once', async () => {
    const engine = await openWithClients();
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 's', pattern: 'mail/**' }, reader.handler);
    const start = Date.now();
    const delayed = await engine.publish('producer', { type: 'mail/send', payload: bytes('delayed'), delayMs: 400 });
    const at = await engine.publish('producer', { type: 'mail/send', payload: bytes('at'), deliverAt: start + 250 });
    const past = await engine.publish('producer', { type: 'mail/send', payload: bytes('past'), deliverAt: start - 10_000 });
    const now = await engine.publish('producer', { type: 'mail/send', payload: bytes('now') });
    await waitFor(() => reader.acked.size === 4, 5_000, () => `${reader.acked.size} of 4 delivered`);
    const times = firstDeliveryTimes(reader);
    expect(reader.deliveries.map((d) => text(d.event.payload))).toEqual(['past', 'now', 'at', 'delayed']);
    expect(times.get(at.id)! - (start + 250)).toBeGreaterThanOrEqual(0);
    expect(times.get(at.id)! - (start + 250)).toBeLessThan(250);
    const delayedEvent = reader.deliveriesOf(delayed.id)[0]!.event;
    expect(delayedEvent.deliverAt).toBeGreaterThanOrEqual(delayedEvent.publishedAt + 400);
    expect(times.get(delayed.id)!).toBeGreaterThanOrEqual(delayedEvent.deliverAt);
    expect(times.get(delayed.id)! - delayedEvent.deliverAt).toBeLessThan(250);
    expect(reader.deliveriesOf(past.id)[0]!.event.deliverAt).toBe(0);
    expect(times.get(now.id)! - start).toBeLessThan(250);
    // The receipt names the stored original; the delivery comes from its copy.
    expect(reader.deliveriesOf(delayed.id)[0]!.offset).toBeGreaterThan(delayed.offset);
  });

  it('keeps scheduled events across a restart and delivers them when due, once', async () => {
    const dataDir = await harness.dataDir();
    let engine = await openWithClients({ dataDir });
    const idle = await engine.subscribe('reader', { name: 's', pattern: 'mail/**' }, () => {});
    await idle.close();
    const receipts = [];
    for (let i = 0; i < 20; i++) receipts.push(await engine.publish('producer', { type: `mail/t${i % 5}`, payload: bytes(String(i)), delayMs: 600 + i * 20 }));
    await harness.close(engine);

    engine = await openWithClients({ dataDir });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 's', pattern: 'mail/**' }, reader.handler);
    await waitFor(() => reader.acked.size === 20, 10_000, () => `${reader.acked.size} of 20 delivered`);
    await sleep(300);
    expect(reader.deliveries).toHaveLength(20);
    for (const delivery of reader.deliveries) expect(reader.timeline.find((e) => e.delivery === delivery)!.at).toBeGreaterThanOrEqual(delivery.event.deliverAt);
    expect(new Set(reader.deliveries.map((d) => d.event.id))).toEqual(new Set(receipts.map((r) => r.id)));
  });

  it('fires events that came due while the engine was stopped as soon as it opens', async () => {
    const dataDir = await harness.dataDir();
    let engine = await openWithClients({ dataDir });
    const idle = await engine.subscribe('reader', { name: 's', pattern: 'mail/**' }, () => {});
    await idle.close();
    await engine.publish('producer', { type: 'mail/send', payload: bytes('overdue'), delayMs: 100 });
    await harness.close(engine);
    await sleep(300);
    engine = await openWithClients({ dataDir });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 's', pattern: 'mail/**' }, reader.handler);
    await waitFor(() => reader.acked.size === 1, 5_000, 'the overdue event');
    expect(text(reader.deliveries[0]!.event.payload)).toBe('overdue');
  });

  it('survives a killed shard worker', async () => {
    const engine = await openWithClients({ workers: 2 });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 's', pattern: 'mail/**' }, reader.handler);
    const receipt = await engine.publish('producer', { type: 'mail/send', payload: bytes('later'), delayMs: 800 });
    const owner = engine.shardPool.ownerOf(receipt.shard);
    const worker = engine.shardPool.threads.find((t) => t.threadId === owner)!;
    await worker.terminate();
    await waitFor(() => reader.acked.size === 1, 10_000, 'the scheduled event after the worker died');
    expect(reader.deliveries[0]!.event.id).toBe(receipt.id);
  });

  it('keeps far-future schedules on disk: pending counted, memory bounded, kept across a restart', { timeout: 60_000 }, async () => {
    const dataDir = await harness.dataDir();
    let engine = await openWithClients({ dataDir });
    const count = 50_000;
    const base = Date.now() + 60 * 60 * 1000;
    for (let start = 0; start < count; start += 1000) {
      const batch = Array.from({ length: 1000 }, (_, j) => ({ type: `mail/t${(start + j) % 7}`, payload: bytes('x'), deliverAt: base + (start + j) * 100 }));
      await engine.publishMany('producer', batch);
    }
    const total = async () => {
      const stats = await engine.shardStats();
      return { pending: stats.reduce((n, s) => n + s.scheduledPending, 0), inMemory: stats.reduce((n, s) => n + s.scheduledInMemory, 0) };
    };
    expect((await total()).pending).toBe(count);
    // Within a checkpoint interval, buffered entries are written to their bucket files.
    let now = await total();
    const deadline = Date.now() + 10_000;
    while (now.inMemory > 1000 && Date.now() < deadline) {
      await sleep(200);
      now = await total();
    }
    expect(now.inMemory).toBeLessThanOrEqual(1000);
    await harness.close(engine);
    engine = await openWithClients({ dataDir });
    expect(await total()).toEqual({ pending: count, inMemory: 0 });
  });

  it('refuses a defer past the maximum or negative, with a typed error', async () => {
    const engine = await openWithClients({ maxScheduleMs: 1000 });
    const reader = new DeliveryRecorder(holdAll);
    const consumer = await engine.subscribe('reader', { name: 's', pattern: 'mail/**' }, reader.handler);
    await engine.publish('producer', { type: 'mail/send', payload: bytes('x') });
    await waitFor(() => reader.deliveries.length === 1, 5_000, 'a delivery');
    for (const delay of [1001, -1, 1.5]) {
      await expectEngineError(Promise.resolve().then(() => consumer.defer(reader.deliveries[0]!, delay)), 'INVALID_ARGUMENT', 'delayMs');
    }
    await expectEngineError(engine.publish('producer', { type: 'mail/send', payload: bytes('x'), delayMs: 1001 }), 'INVALID_EVENT', 'delayMs');
  });
});

describe('deferred delivery', () => {
  it('brings a deferred delivery back after its delay without counting an attempt, and records the trail', async () => {
    const engine = await openWithClients();
    const steps: string[] = [];
    const reader = new DeliveryRecorder((delivery, consumer, recorder) => {
      steps.push(`attempt ${delivery.attempt}`);
      if (steps.length === 1) recorder.nack(consumer, delivery);
      else if (steps.length === 2) consumer.defer(delivery, 300);
      else recorder.ack(consumer, delivery);
    });
    await engine.subscribe('reader', { name: 'd', pattern: 'mail/**', maxDeliveries: 2 }, reader.handler);
    const receipt = await engine.publish('producer', { type: 'mail/send', id: 'mail-1', payload: bytes('hello') });
    await waitFor(() => reader.acked.size === 1, 5_000, 'the deferred delivery acked');
    const [, deferredAt, back] = reader.timeline.filter((e) => e.kind === 'delivered');
    expect(back!.at - deferredAt!.at).toBeGreaterThanOrEqual(300);
    expect(back!.delivery.event.id).toBe(receipt.id);
    expect(back!.delivery.attempt).toBe(1);
    expect(text(back!.delivery.event.payload)).toBe('hello');
    await sleep(200);
    expect(reader.deliveries).toHaveLength(3);

    const { trail } = await engine.eventTrail('mail/send', 'mail-1');
    expect(trail.map((e) => e.kind)).toEqual(['published', 'delivered', 'nacked', 'delivered', 'deferred', 'due', 'delivered', 'acked']);
    expect(trail[4]).toMatchObject({ subscription: 'reader/d', delayMs: 300 });
    expect(trail[5]).toMatchObject({ subscription: 'reader/d', copyOffset: back!.delivery.offset });
  });

  it('keeps a deferral across a restart and brings it back only to the subscription that deferred', async () => {
    const dataDir = await harness.dataDir();
    let engine = await openWithClients({ dataDir });
    const deferrer = new DeliveryRecorder((delivery, consumer) => consumer.defer(delivery, 700));
    await engine.subscribe('reader', { name: 'deferrer', pattern: 'mail/**' }, deferrer.handler);
    const other = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'other', pattern: 'mail/**' }, other.handler);
    await engine.publish('producer', { type: 'mail/send', payload: bytes('later please') });
    await waitFor(() => deferrer.deliveries.length === 1 && other.acked.size === 1, 5_000, 'first deliveries');
    await sleep(100); // the defer marker is durable
    await harness.close(engine);

    engine = await openWithClients({ dataDir });
    const back = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'deferrer', pattern: 'mail/**' }, back.handler);
    const otherAgain = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'other', pattern: 'mail/**' }, otherAgain.handler);
    await waitFor(() => back.acked.size === 1, 5_000, 'the deferred delivery after the restart');
    await sleep(300);
    expect(text(back.deliveries[0]!.event.payload)).toBe('later please');
    expect(back.timeline[0]!.at).toBeGreaterThanOrEqual(deferrer.timeline[0]!.at + 700);
    expect(back.deliveries).toHaveLength(1);
    expect(otherAgain.deliveries, 'the other subscription does not get the copy').toHaveLength(0);
  });

  it('fires a deferral whose original event was removed meanwhile: the defer record carries the event', async () => {
    // Small segments: the original lands in a sealed segment that retention can delete.
    const engine = await openWithClients({ shards: 1, segmentBytes: 4096 });
    let held: { delivery: Delivery; consumer: Consumer } | null = null;
    const reader = new DeliveryRecorder((delivery, consumer, recorder) => {
      if (text(delivery.event.payload) === 'keep me' && delivery.attempt === 1 && !held) held = { delivery, consumer };
      else recorder.ack(consumer, delivery);
    });
    await engine.subscribe('reader', { name: 'deferrer', pattern: 'mail/**' }, reader.handler);
    await engine.publish('producer', { type: 'mail/send', payload: bytes('keep me') });
    // Filler seals segments past the original, then the held delivery is deferred (its marker is new).
    for (let i = 0; i < 40; i++) await engine.publish('producer', { type: 'mail/filler', payload: bytes('x'.repeat(400)) });
    await waitFor(() => held !== null && reader.acked.size === 40, 5_000, 'the original held, the filler acked');
    held!.consumer.defer(held!.delivery, 1000);
    await sleep(200); // the defer marker is durable
    const { segmentsDeleted } = await engine.setRetention({ retentionBytes: 4096 });
    expect(segmentsDeleted, 'the segment holding the original is gone').toBeGreaterThan(0);
    await waitFor(() => reader.deliveries.length === 42, 5_000, () => `the deferred delivery (${reader.deliveries.length} deliveries)`);
    expect(text(reader.deliveries.at(-1)!.event.payload)).toBe('keep me');
  });
});

