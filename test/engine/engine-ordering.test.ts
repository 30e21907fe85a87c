import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery, Receipt } from '../../src/engine/delivery.js';
import { DeliveryRecorder, positionOf, type DeliveryPolicy } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, text, typesOnDistinctShards } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const CANDIDATE_TYPES = ['orders/created', 'orders/paid', 'users/signup', 'stock/moved', 'orders/shipped', 'users/left', 'stock/counted'];

interface Published {
  producer: string;
  seq: number;
  receipt: Receipt;
}

describe('engine ordering under concurrency', () => {
  it('delivers each type in offset order to every subscriber while several producers publish at once', async () => {
    const engine = await harness.open({ workers: 2, shards: 4 });
    // Two types share a shard, the others do not: order must hold per type either way.
    const spread = typesOnDistinctShards(engine, CANDIDATE_TYPES, 3);
    const sharing = CANDIDATE_TYPES.find((t) => !spread.includes(t) && spread.some((s) => engine.shardOf(s) === engine.shardOf(t)))!;
    expect(sharing, 'some candidate type shares a shard with another').toBeDefined();
    const types = [...spread, sharing];
    const producers = ['p0', 'p1', 'p2', 'p3'];
    for (const id of [...producers, 'svc-x', 'svc-y']) engine.registerClient({ id });

    const everything = new DeliveryRecorder();
    const firstType = new DeliveryRecorder();
    await engine.subscribe('svc-x', { name: 'everything', pattern: '**' }, everything.handler);
    await engine.subscribe('svc-y', { name: 'one-type', pattern: types[0]! }, firstType.handler);

    const EVENTS_PER_PRODUCER = 300;
    const CHUNK = 25;
    // Per producer and type, receipts in the order the producer published them.
    const published: Published[] = [];
    const byProducerType = new Map<string, Receipt[]>();
    await Promise.all(
      producers.map(async (producer, p) => {
        for (let start = 0; start < EVENTS_PER_PRODUCER; start += CHUNK) {
          const chunk: Array<Promise<void>> = [];
          for (let seq = start; seq < start + CHUNK; seq++) {
            const type = types[(seq * 7 + p * 3 + (seq >> 3)) % types.length]!;
            const list = byProducerType.get(`${producer}|${type}`) ?? [];
            byProducerType.set(`${producer}|${type}`, list);
            const slot = list.length;
            list.push(null as unknown as Receipt);
            chunk.push(
              engine.publish(producer, { type, payload: bytes(`${producer}:${seq}`) }).then((receipt) => {
                list[slot] = receipt;
                published.push({ producer, seq, receipt });
              }),
            );
          }
          await Promise.all(chunk);
        }
      }),
    );
    expect(published).toHaveLength(producers.length * EVENTS_PER_PRODUCER);

    // Offsets: unique per shard, and per producer and type increasing in publish order.
    const positions = new Set(published.map(({ receipt }) => positionOf(receipt)));
    expect(positions.size).toBe(published.length);
    for (const { receipt } of published) {
      expect(receipt.duplicate).toBe(false);
      expect(receipt.shard).toBe(engine.shardOf(receipt.type));
    }
    for (const [key, receipts] of byProducerType) {
      const offsets = receipts.map((r) => r.offset);
      expect(isStrictlyIncreasing(offsets), `${key} offsets in publish order: ${offsets.join(',')}`).toBe(true);
    }

    await everything.waitForIds(
      published.map(({ receipt }) => receipt.id),
      20_000,
    );
    await firstType.waitForIds(
      published.filter(({ receipt }) => receipt.type === types[0]).map(({ receipt }) => receipt.id),
      20_000,
    );

    const byPosition = new Map(published.map((p) => [positionOf(p.receipt), p]));
    for (const [name, recorder, wanted] of [
      ['everything', everything, types],
      ['one-type', firstType, [types[0]!]],
    ] as const) {
      expect(recorder.deliveries.every((d) => d.attempt === 1), `${name}: no redeliveries when everything is acked at once`).toBe(true);
      expect(new Set(recorder.deliveries.map((d) => d.event.type))).toEqual(new Set(wanted));
      for (const type of wanted) {
        const delivered = recorder.firstDeliveries.filter((d) => d.event.type === type).map((d) => d.offset);
        const confirmed = published
          .filter(({ receipt }) => receipt.type === type)
          .map(({ receipt }) => receipt.offset)
          .sort((a, b) => a - b);
        expect(delivered, `${name}: ${type} delivered in offset order, each once`).toEqual(confirmed);
      }
      for (const delivery of recorder.deliveries) {
        const source = byPosition.get(positionOf(delivery))!;
        expect(delivery.event.id).toBe(source.receipt.id);
        expect(delivery.event.sender).toBe(source.producer);
        expect(text(delivery.event.payload)).toBe(`${source.producer}:${source.seq}`);
      }
    }
  });
});

describe('engine strict ordering per key', () => {
  it('holds each key from first delivery until ack, redelivers nacked events first, and lets other keys proceed', async () => {
    const engine = await harness.open({ workers: 1, shards: 4 });
    engine.registerClient({ id: 'producer' });
    engine.registerClient({ id: 'ledger' });
    const [keyedType, unkeyedType] = typesOnDistinctShards(engine, ['ledger/entry', 'ledger/fee', 'ledger/moved', 'ledger/closed'], 2) as [string, string];
    const keys = ['k0', 'k1', 'k2', 'k3'];

    const NACK_AT_ONCE = new Set([3, 17, 40, 41, 77]);
    const NACK_DELAYED = new Set([4, 9, 60]);
    const DELAY_MS = 250;
    const NACK_TWICE = 22;
    const policy: DeliveryPolicy = (delivery, consumer, recorder) => {
      const seq = Number(text(delivery.event.payload));
      if (delivery.attempt === 1 && NACK_AT_ONCE.has(seq)) return recorder.nack(consumer, delivery);
      if (delivery.attempt === 1 && NACK_DELAYED.has(seq)) return recorder.nack(consumer, delivery, DELAY_MS);
      if (seq === NACK_TWICE && delivery.attempt === 1) return recorder.nack(consumer, delivery);
      if (seq === NACK_TWICE && delivery.attempt === 2) return recorder.nack(consumer, delivery, 60);
      // Ack a little later, at varying times, so keys interleave.
      setTimeout(() => recorder.ack(consumer, delivery), seq % 7);
    };
    const recorder = new DeliveryRecorder(policy);
    await engine.subscribe('ledger', { name: 'strict', pattern: 'ledger/*', ordered: true, ackTimeoutMs: 10_000, maxDeliveries: 10 }, recorder.handler);

    const TOTAL = 160;
    const receipts: Receipt[] = [];
    // Published in waves so new events keep arriving while earlier ones are nacked.
    for (let wave = 0; wave < TOTAL; wave += 40) {
      const batch = [];
      for (let seq = wave; seq < wave + 40; seq++) {
        const event = seq % 5 === 4 ? { type: unkeyedType, payload: bytes(String(seq)) } : { type: keyedType, key: keys[seq % 4]!, payload: bytes(String(seq)) };
        batch.push(engine.publish('producer', event));
      }
      receipts.push(...(await Promise.all(batch)));
    }
    const positions = receipts.map(positionOf);
    await recorder.waitForAcked(positions, 20_000);

    // Ordering key as the engine defines it: the event's key, else its type.
    const keyOf = (d: Delivery) => d.event.key ?? d.event.type;
    const publishOrder = new Map<string, number[]>();
    receipts.forEach((receipt, seq) => {
      const key = seq % 5 === 4 ? unkeyedType : keys[seq % 4]!;
      publishOrder.set(key, [...(publishOrder.get(key) ?? []), receipt.offset]);
    });

    // Walk the consumer's timeline: per key at most one unacked delivery; after a nack the same
    // event comes back before any later event of its key; a new event of a key only after the
    // previous one was acked; new events of a key arrive in publish order.
    const state = new Map<string, { holder: number | null; outstanding: boolean; firsts: number[] }>();
    for (const entry of recorder.timeline) {
      const key = keyOf(entry.delivery);
      const s = state.get(key) ?? { holder: null, outstanding: false, firsts: [] };
      state.set(key, s);
      const at = `${entry.kind} offset ${entry.delivery.offset} attempt ${entry.delivery.attempt} of key ${key}`;
      if (entry.kind === 'delivered') {
        expect(s.outstanding, `${at}: the key already had an unacked delivery`).toBe(false);
        if (s.holder !== null) expect(entry.delivery.offset, `${at}: nacked offset ${s.holder} must come back first`).toBe(s.holder);
        if (entry.delivery.attempt === 1) s.firsts.push(entry.delivery.offset);
        s.holder = entry.delivery.offset;
        s.outstanding = true;
      } else {
        expect(s.holder, at).toBe(entry.delivery.offset);
        s.outstanding = false;
        if (entry.kind === 'acked') s.holder = null;
      }
    }
    for (const [key, offsets] of publishOrder) expect(state.get(key)!.firsts, `first deliveries of ${key}`).toEqual(offsets);

    const attemptsOf = (seq: number) => recorder.deliveriesOf(receipts[seq]!.id).map((d) => d.attempt);
    for (const seq of NACK_AT_ONCE) expect(attemptsOf(seq)).toEqual([1, 2]);
    for (const seq of NACK_DELAYED) expect(attemptsOf(seq)).toEqual([1, 2]);
    expect(attemptsOf(NACK_TWICE)).toEqual([1, 2, 3]);

    // A delayed nack holds only its own key: others are delivered while it waits, and it returns after the delay.
    for (const seq of NACK_DELAYED) {
      const id = receipts[seq]!.id;
      const nackIndex = recorder.timeline.findIndex((e) => e.kind === 'nacked' && e.delivery.event.id === id);
      const backIndex = recorder.timeline.findIndex((e) => e.kind === 'delivered' && e.delivery.event.id === id && e.delivery.attempt === 2);
      expect(recorder.timeline[backIndex]!.at - recorder.timeline[nackIndex]!.at).toBeGreaterThanOrEqual(DELAY_MS);
      const key = keyOf(recorder.timeline[nackIndex]!.delivery);
      const othersMeanwhile = recorder.timeline.slice(nackIndex, backIndex).filter((e) => e.kind === 'delivered' && keyOf(e.delivery) !== key);
      expect(othersMeanwhile.length, `deliveries of other keys while ${seq} (key ${key}) waited`).toBeGreaterThan(0);
    }
    const ackCounts = new Map<string, number>();
    for (const e of recorder.timeline) if (e.kind === 'acked') ackCounts.set(positionOf(e.delivery), (ackCounts.get(positionOf(e.delivery)) ?? 0) + 1);
    expect([...ackCounts.values()].every((n) => n === 1)).toBe(true);
    expect(ackCounts.size).toBe(TOTAL);
  });
});

function isStrictlyIncreasing(values: readonly number[]): boolean {
  return values.every((v, i) => i === 0 || v > values[i - 1]!);
}

describe('engine strict ordering with a key backlog larger than the window', () => {
  it('lets other keys proceed while a key with more waiting events than maxInFlight is held by a delayed nack', async () => {
    const engine = await harness.open({ workers: 1, shards: 4 });
    engine.registerClient({ id: 'producer' });
    engine.registerClient({ id: 'ledger' });
    const DELAY_MS = 400;
    const WINDOW = 20;
    const policy: DeliveryPolicy = (delivery, consumer, recorder) => {
      if (text(delivery.event.payload) === 'hot-0' && delivery.attempt === 1) return recorder.nack(consumer, delivery, DELAY_MS);
      recorder.ack(consumer, delivery);
    };
    const recorder = new DeliveryRecorder(policy);
    await engine.subscribe('ledger', { name: 'strict', pattern: 'ledger/*', ordered: true, maxInFlight: WINDOW, ackTimeoutMs: 10_000 }, recorder.handler);
    // The hot key has more events waiting than the window holds; the cold key's come after them in the log.
    const hot = await Promise.all(Array.from({ length: 3 * WINDOW }, (_, i) => engine.publish('producer', { type: 'ledger/entry', key: 'hot', payload: bytes(`hot-${i}`) })));
    const cold = await Promise.all(Array.from({ length: 5 }, (_, i) => engine.publish('producer', { type: 'ledger/entry', key: 'cold', payload: bytes(`cold-${i}`) })));
    await recorder.waitForAcked([...hot, ...cold].map(positionOf), 10_000);

    const hotBack = recorder.timeline.findIndex((e) => e.kind === 'delivered' && e.delivery.event.id === hot[0]!.id && e.delivery.attempt === 2);
    const coldDone = Math.max(...cold.map((c) => recorder.timeline.findIndex((e) => e.kind === 'acked' && e.delivery.event.id === c.id)));
    expect(coldDone, 'the cold key is served while the hot key waits for its delayed nack').toBeLessThan(hotBack);
  });
});
