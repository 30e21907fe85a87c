import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryRecorder, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, expectEngineError, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const TYPE = 'orders/created';

describe('pause and resume', () => {
  it('delivers nothing while paused, across a restart, then continues where it stopped', async () => {
    const dataDir = await harness.dataDir();
    let engine = await harness.open({ dataDir });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    let reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, reader.handler);
    for (let i = 0; i < 5; i++) await engine.publish('producer', { type: TYPE, payload: bytes(`before-${i}`) });
    await waitFor(() => reader.acked.size === 5, 5_000, () => `${reader.acked.size} of 5 acked`);

    await engine.pause('reader', 'orders');
    for (let i = 0; i < 5; i++) await engine.publish('producer', { type: TYPE, payload: bytes(`paused-${i}`) });
    await sleep(300);
    expect(reader.deliveries).toHaveLength(5);

    await harness.close(engine);
    engine = await harness.open({ dataDir });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, reader.handler);
    await sleep(300);
    expect(reader.deliveries, 'still paused after the restart').toHaveLength(0);

    await engine.resume('reader', 'orders');
    await waitFor(() => reader.acked.size === 5, 5_000, () => `${reader.acked.size} of 5 acked after resume`);
    expect(reader.deliveries.map((d) => text(d.event.payload))).toEqual(['paused-0', 'paused-1', 'paused-2', 'paused-3', 'paused-4']);
  });

  it('refuses to pause a subscription that does not exist', async () => {
    const engine = await harness.open();
    await expectEngineError(engine.pause('reader', 'nothing-here'), 'NOT_FOUND');
  });
});

describe('seek', () => {
  it('replays from the start, from an offset and from a time; the position survives a restart', async () => {
    const dataDir = await harness.dataDir();
    let engine = await harness.open({ dataDir });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    let reader = new DeliveryRecorder();
    let consumer = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, reader.handler);
    const receipts = [];
    for (let i = 0; i < 10; i++) {
      receipts.push(await engine.publish('producer', { type: TYPE, payload: bytes(`event-${i}`) }));
      if (i === 5) await sleep(25);
    }
    await waitFor(() => reader.acked.size === 10, 5_000, () => `${reader.acked.size} of 10 acked`);
    const publishedAt = new Map(reader.deliveries.map((d) => [d.event.id, d.event.publishedAt]));
    const payloads = () => reader.deliveries.map((d) => text(d.event.payload));

    reader.deliveries.length = 0;
    await engine.seek('reader', 'orders', { from: 'all' });
    await waitFor(() => reader.deliveries.length === 10, 5_000, () => `${reader.deliveries.length} of 10 replayed`);
    expect(payloads()).toEqual(receipts.map((_, i) => `event-${i}`));

    reader.deliveries.length = 0;
    const offsets = await engine.seek('reader', 'orders', { from: 'offset', offset: receipts[7]!.offset });
    expect(offsets[receipts[7]!.shard]).toBe(receipts[7]!.offset);
    await waitFor(() => reader.deliveries.length === 3, 5_000, () => `${reader.deliveries.length} of 3 replayed`);
    expect(payloads()).toEqual(['event-7', 'event-8', 'event-9']);

    // By time: the first event published at or after event 6's time (a 20 ms gap precedes it).
    reader.deliveries.length = 0;
    await engine.seek('reader', 'orders', { from: 'time', timestamp: publishedAt.get(receipts[6]!.id)! });
    await waitFor(() => reader.deliveries.length === 4, 5_000, () => `${reader.deliveries.length} of 4 replayed`);
    expect(payloads()).toEqual(['event-6', 'event-7', 'event-8', 'event-9']);

    // The position is durable: seek back to the start with no consumer, restart, attach.
    await consumer.close();
    await engine.seek('reader', 'orders', { from: 'all' });
    await harness.close(engine);
    engine = await harness.open({ dataDir });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    reader = new DeliveryRecorder();
    consumer = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, reader.handler);
    await waitFor(() => reader.deliveries.length === 10, 5_000, () => `${reader.deliveries.length} of 10 after the restart`);
    expect(payloads()).toEqual(receipts.map((_, i) => `event-${i}`));
  });
});
