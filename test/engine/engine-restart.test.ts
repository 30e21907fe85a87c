import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.js';
import type { Receipt } from '../../src/engine/delivery.js';
import type { StartPosition } from '../../src/engine/subscription-spec.js';
import { DeliveryRecorder, positionOf } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const TYPES = ['orders/created', 'orders/paid', 'users/signup', 'stock/moved', 'users/left'];

async function open(dataDir: string): Promise<Engine> {
  const engine = await harness.open({ dataDir, workers: 1, shards: 4 });
  engine.registerClient({ id: 'producer' });
  engine.registerClient({ id: 'reader' });
  return engine;
}

async function publishBatch(engine: Engine, from: number, count: number): Promise<Receipt[]> {
  const receipts: Receipt[] = [];
  for (let start = from; start < from + count; start += 50) {
    const chunk = [];
    for (let seq = start; seq < Math.min(start + 50, from + count); seq++) {
      chunk.push(engine.publish('producer', { type: TYPES[seq % TYPES.length]!, payload: bytes(String(seq)) }));
    }
    receipts.push(...(await Promise.all(chunk)));
  }
  return receipts;
}

describe('engine restart', () => {
  it('resumes a subscription where it was: unacked events come again, acked ones never', async () => {
    const dataDir = await harness.dataDir();
    const first = await open(dataDir);
    // Ack the even events, leave the odd ones unacked when the engine stops.
    const before = new DeliveryRecorder((delivery, consumer, r) => {
      if (Number(text(delivery.event.payload)) % 2 === 0) r.ack(consumer, delivery);
    });
    const subscription = { name: 'resume', pattern: '**', start: { from: 'all' } as StartPosition, ackTimeoutMs: 30_000 };
    await first.subscribe('reader', subscription, before.handler);
    const receipts = await publishBatch(first, 0, 300);
    await before.waitForIds(
      receipts.map((r) => r.id),
      10_000,
    );
    const acked = receipts.filter((_, seq) => seq % 2 === 0).map(positionOf);
    const unacked = receipts.filter((_, seq) => seq % 2 === 1).map(positionOf);
    expect([...before.acked].sort()).toEqual([...acked].sort());
    await harness.close(first);

    const second = await open(dataDir);
    const perShard = countPerShard(receipts);
    second.shardRecovery.forEach((recovered, shard) => expect(recovered.nextOffset, `shard ${shard} recovered every event`).toBe(perShard.get(shard) ?? 0));
    const after = new DeliveryRecorder();
    // The start position only applies to a new subscription: this one resumes.
    await second.subscribe('reader', { ...subscription, start: { from: 'new' } }, after.handler);
    await after.waitForAcked(unacked, 10_000);
    const more = await publishBatch(second, 300, 60);
    await after.waitForAcked(more.map(positionOf), 10_000);
    await sleep(200);

    const redelivered = after.deliveries.map(positionOf);
    expect(new Set(redelivered), 'exactly the unacked events, then the new ones').toEqual(new Set([...unacked, ...more.map(positionOf)]));
    expect(redelivered.length, 'each once').toBe(unacked.length + more.length);
    // Offsets and ids are stable across the restart, and new offsets continue each shard's log.
    const byPosition = new Map([...receipts, ...more].map((r) => [positionOf(r), r]));
    for (const delivery of after.deliveries) {
      const receipt = byPosition.get(positionOf(delivery))!;
      expect(delivery.event.id).toBe(receipt.id);
      expect(delivery.event.type).toBe(receipt.type);
    }
    for (const [shard, count] of perShard) {
      const newOffsets = more.filter((r) => r.shard === shard).map((r) => r.offset);
      expect(newOffsets, `shard ${shard} continues at ${count}`).toEqual(newOffsets.map((_, i) => count + i));
    }
    await harness.close(second);

    // Everything is acked now: a third start delivers only what is published then.
    const third = await open(dataDir);
    const last = new DeliveryRecorder();
    await third.subscribe('reader', subscription, last.handler);
    const marker = await third.publish('producer', { type: TYPES[0]!, payload: bytes('marker') });
    await last.waitForAcked([positionOf(marker)], 5_000);
    await sleep(200);
    expect(last.deliveries.map((d) => d.event.id)).toEqual([marker.id]);
  });

  it('starts a new subscription at new, all, a time or an offset', async () => {
    const dataDir = await harness.dataDir();
    const first = await open(dataDir);
    const early = await publishBatch(first, 0, 40);
    await sleep(30);
    const middle = Date.now();
    await sleep(30);
    const late = await publishBatch(first, 40, 40);
    await harness.close(first);

    // Created after a restart: the time index and offsets come from disk.
    const second = await open(dataDir);
    const OFFSET = 5;
    const starts: Array<[string, StartPosition]> = [
      ['from-new', { from: 'new' }],
      ['from-all', { from: 'all' }],
      ['from-time', { from: 'time', timestamp: middle }],
      ['from-offset', { from: 'offset', offset: OFFSET }],
    ];
    const recorders = new Map<string, DeliveryRecorder>();
    for (const [name, start] of starts) {
      const recorder = new DeliveryRecorder();
      recorders.set(name, recorder);
      await second.subscribe('reader', { name, pattern: '**', start }, recorder.handler);
    }
    const fresh = await publishBatch(second, 80, 40);
    const everything = [...early, ...late, ...fresh];
    const expected = new Map<string, Receipt[]>([
      ['from-new', fresh],
      ['from-all', everything],
      ['from-time', [...late, ...fresh]],
      ['from-offset', everything.filter((r) => r.offset >= OFFSET)],
    ]);
    for (const [name, receipts] of expected) await recorders.get(name)!.waitForAcked(receipts.map(positionOf), 10_000);
    await sleep(200);
    for (const [name, receipts] of expected) {
      const delivered = recorders.get(name)!.deliveries.map(positionOf);
      expect(delivered.length, `${name}: each once`).toBe(receipts.length);
      expect(new Set(delivered), name).toEqual(new Set(receipts.map(positionOf)));
    }
  });
});

function countPerShard(receipts: readonly Receipt[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const r of receipts) counts.set(r.shard, Math.max(counts.get(r.shard) ?? 0, r.offset + 1));
  return counts;
}
