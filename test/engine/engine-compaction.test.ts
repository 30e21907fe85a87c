import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.js';
import { WorkBoard } from '../../src/observability/work-progress.js';
import { DeliveryRecorder, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, expectEngineError, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

/** One shard, small segments, no periodic rounds: the tests run rounds themselves. */
async function open(options: Parameters<EngineHarness['open']>[0] = {}): Promise<Engine> {
  const engine = await harness.open({ shards: 1, segmentBytes: 16 * 1024, ...options, compaction: { checkIntervalMs: 0, mergeBelowBytes: 0, ...options.compaction } });
  for (const id of ['producer', 'reader', 'late']) engine.registerClient({ id });
  return engine;
}

async function publishAll(engine: Engine, type: string, count: number, payload: (i: number) => string, key?: (i: number) => string) {
  const receipts = [];
  for (let i = 0; i < count; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 200); j++) batch.push({ type, payload: bytes(payload(j)), ...(key ? { key: key(j) } : {}) });
    receipts.push(...(await engine.publishMany('producer', batch)));
  }
  return receipts as Array<{ id: string; offset: number }>;
}

/**
 * Acks journaled, and the log's checkpoint (written every second) past the segments: compaction only
 * takes segments before the one the last checkpoint names.
 */
const settle = () => new Promise((resolve) => setTimeout(resolve, 1200));

describe('compaction in the engine', () => {
  it('removes settled events only: a lagging subscription still gets every event it has not acked, byte for byte', async () => {
    const work = new WorkBoard(null);
    const engine = await open({ workBoard: work, compaction: { policies: [{ pattern: 'orders/**', removeAckedAfterMs: 0 }] } });
    const fast = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'fast', pattern: 'orders/**' }, fast.handler);
    // The slow one acks the first 600 and then stops reading: everything from its floor on must stay.
    let slowAcks = 0;
    const slow = new DeliveryRecorder((delivery, consumer, recorder) => {
      if (slowAcks < 600) {
        slowAcks++;
        recorder.ack(consumer, delivery);
      }
    });
    const slowConsumer = await engine.subscribe('reader', { name: 'slow', pattern: 'orders/**', maxInFlight: 600 }, slow.handler);
    const receipts = await publishAll(engine, 'orders/created', 2000, (i) => `order-${i}-${'x'.repeat(200)}`);
    await waitFor(() => fast.acked.size === 2000 && slowAcks === 600, 10_000, () => `${fast.acked.size} fast, ${slowAcks} slow acks`);
    await slowConsumer.close();
    await settle()

    const reports = await engine.compactNow();
    const reclaimed = reports.reduce((sum, r) => sum + r.bytesBefore - r.bytesAfter, 0);
    expect(reports.length).toBeGreaterThan(0);
    expect(reclaimed).toBeGreaterThan(0);
    expect(reports.every((r) => r.reason === 'clean' && r.installed)).toBe(true);
    expect(engine.compaction.totals.recordsRemoved).toBeGreaterThan(0);
    expect(engine.compaction.totals.recordsRemoved).toBeLessThanOrEqual(600);
    expect(work.view().finished.some((w) => w.kind === 'compaction' && !w.error)).toBe(true);
    // Nothing changed since: a round that only looks at changed segments finds nothing to do.
    expect(await engine.compaction.run(false)).toEqual([]);
    // The removed events are gone for lookups; the first one the slow subscription did not ack is not.
    await expectEngineError(engine.eventTrail('orders/created', receipts[0]!.id), 'NOT_FOUND');
    expect((await engine.eventTrail('orders/created', receipts[600]!.id)).offset).toBe(receipts[600]!.offset);

    const rest = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'slow', pattern: 'orders/**' }, rest.handler);
    await waitFor(() => rest.acked.size === 1400, 10_000, () => `${rest.acked.size} of 1400 after compaction`);
    const got = rest.deliveries.map((d) => text(d.event.payload)).sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
    expect(got).toEqual(Array.from({ length: 1400 }, (_, i) => `order-${600 + i}-${'x'.repeat(200)}`));
  });

  it('keeps the newest event of each key (key compaction) and dead letters', async () => {
    const engine = await open({ compaction: { policies: [{ pattern: 'prices/*', compaction: 'key', tombstoneRetentionMs: 3_600_000 }] } });
    const reader = new DeliveryRecorder((delivery, consumer, recorder) => {
      if (text(delivery.event.payload) === 'AAPL:poison') consumer.discard(delivery, 'bad price');
      else recorder.ack(consumer, delivery);
    });
    await engine.subscribe('reader', { name: 'prices', pattern: 'prices/*' }, reader.handler);
    const symbols = ['AAPL', 'MSFT', 'GOOG', 'AMZN'];
    await engine.publish('producer', { type: 'prices/usd', key: 'AAPL', payload: bytes('AAPL:poison') });
    await publishAll(engine, 'prices/usd', 1200, (i) => `${symbols[i % 4]}:${i}:${'p'.repeat(100)}`, (i) => symbols[i % 4]!);
    // Filler so the last prices are in a sealed segment too.
    await publishAll(engine, 'prices/usd', 200, (i) => `FILL${i}:${i}:${'f'.repeat(100)}`, (i) => `FILL${i}`);
    await waitFor(() => reader.acked.size === 1400, 10_000, () => `${reader.acked.size} of 1400 acked`);
    await settle();

    const reports = await engine.compactNow();
    expect(reports.reduce((sum, r) => sum + r.recordsDropped, 0)).toBeGreaterThan(1000);

    const late = new DeliveryRecorder();
    await engine.subscribe('late', { name: 'all', pattern: 'prices/*', start: { from: 'all' } }, late.handler);
    await waitFor(() => late.deliveries.length > 0 && late.acked.size === late.deliveries.length, 10_000, 'the late subscription drained');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const payloads = late.deliveries.map((d) => text(d.event.payload));
    for (const symbol of symbols) {
      const last = `${symbol}:${1196 + symbols.indexOf(symbol)}:${'p'.repeat(100)}`;
      expect(payloads, `the newest ${symbol}`).toContain(last);
      expect(payloads.filter((p) => p.startsWith(`${symbol}:`)).length, `older ${symbol} removed`).toBeLessThan(50);
    }
    expect(payloads, 'the dead letter stays').toContain('AAPL:poison');
    expect((await engine.deadLetters('reader', 'prices')).map((l) => l.reason)).toEqual(['discarded: bad price']);
  });

  it('keeps a scheduled event until it has fired, and the settings across a restart', async () => {
    const dataDir = await harness.dataDir();
    let engine = await open({ dataDir });
    engine.setCompactionSettings({ policies: [{ pattern: 'mail/**', removeAckedAfterMs: 0 }] });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'mail', pattern: 'mail/**' }, reader.handler);
    await engine.publish('producer', { type: 'mail/send', payload: bytes('later'), delayMs: 2500 });
    await publishAll(engine, 'mail/send', 600, (i) => `now-${i}-${'m'.repeat(200)}`);
    await waitFor(() => reader.acked.size === 600, 10_000, () => `${reader.acked.size} of 600 acked`);
    await settle();
    await engine.compactNow();
    await waitFor(() => reader.deliveries.some((d) => text(d.event.payload) === 'later'), 6_000, 'the scheduled event delivered after compaction');

    await harness.close(engine);
    engine = await open({ dataDir });
    expect(engine.compactionSettings.policies).toEqual([{ pattern: 'mail/**', removeAckedAfterMs: 0, compaction: 'none', tombstoneRetentionMs: 86_400_000 }]);
  });

  it('closes promptly while a slow compaction runs, and the log is whole after', async () => {
    const dataDir = await harness.dataDir();
    const work = new WorkBoard(null);
    // A 1 MiB segment at 64 KiB/s of reads plus writes takes about 20 s to rewrite.
    let engine = await open({ dataDir, segmentBytes: 1024 * 1024, workBoard: work, compaction: { policies: [{ pattern: 'logs/**', removeAckedAfterMs: 0 }], ioBytesPerSecond: 64 * 1024 } });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'logs', pattern: 'logs/**' }, reader.handler);
    await publishAll(engine, 'logs/line', 5000, (i) => `line-${i}-${'l'.repeat(200)}`);
    await waitFor(() => reader.acked.size === 5000, 10_000, () => `${reader.acked.size} of 5000 acked`);
    await settle();
    const round = engine.compactNow().catch((error: unknown) => error);
    await waitFor(() => work.view().active.some((w) => w.kind === 'compaction'), 5_000, 'a compaction running');
    const closing = Date.now();
    await harness.close(engine);
    expect(Date.now() - closing, 'close does not wait for the throttled rewrite').toBeLessThan(3_000);
    await round;

    engine = await open({ dataDir, segmentBytes: 1024 * 1024 });
    const late = new DeliveryRecorder();
    await engine.subscribe('late', { name: 'all', pattern: 'logs/**', start: { from: 'all' } }, late.handler);
    await waitFor(() => late.acked.size > 0 && late.acked.size === late.deliveries.length, 10_000, 'the log read again');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const payloads = late.deliveries.map((d) => text(d.event.payload));
    // Whatever compaction finished before the close is gone; the rest is there, in order, whole.
    expect(payloads.at(-1)).toBe(`line-4999-${'l'.repeat(200)}`);
    const numbers = payloads.map((p) => Number(p.split('-')[1]));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
  });
});

