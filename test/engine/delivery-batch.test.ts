import { describe, expect, it } from 'vitest';
import { DeliveryPacker, META_FIELDS, unpackDeliveries, type PackedDeliveries } from '../../src/engine/delivery-batch.js';
import type { Delivery } from '../../src/engine/delivery.js';
import type { StoredEvent } from '../../src/engine/event.js';
import { encodeEventBody } from '../../src/engine/event-codec.js';
import { Prng } from '../helpers/prng.js';
import { storedEvent } from '../helpers/stored-event.js';

const event = (overrides: Partial<StoredEvent> = {}): StoredEvent => storedEvent({ payload: Uint8Array.from([1, 2, 3]), ...overrides });

/** One push: where its body lies, what names it is given, and what must come out. */
interface Pushed {
  subscription: string;
  consumer: string;
  offset: number;
  attempt: number;
  body: Uint8Array;
  start: number;
  end: number;
  type: string | null;
  sender: string | null;
  event: StoredEvent;
}

/**
 * Encoded bodies of `events` placed in a few larger source buffers (as a shard worker holds them:
 * batch buffers and slabs), each body a sub-range [start, end) with other bytes around it.
 */
function placeBodies(events: readonly StoredEvent[], rng: Prng, sources = 3): Array<{ body: Uint8Array; start: number; end: number }> {
  const encoded = events.map((e) => encodeEventBody(e));
  const groups: number[][] = Array.from({ length: sources }, () => []);
  encoded.forEach((_, i) => groups[i % sources]!.push(i));
  const placed = new Array<{ body: Uint8Array; start: number; end: number }>(events.length);
  for (const group of groups) {
    const total = group.reduce((sum, i) => sum + encoded[i]!.length + 5, 11);
    const backing = new Uint8Array(total + 32).fill(0xa5);
    const buffer = backing.subarray(16, 16 + total); // a view at a non-zero byteOffset
    let at = 3 + rng.int(0, 8);
    for (const i of group) {
      buffer.set(encoded[i]!, at);
      placed[i] = { body: buffer, start: at, end: at + encoded[i]!.length };
      at += encoded[i]!.length + rng.int(0, 5);
    }
  }
  return placed;
}

const SUBSCRIPTIONS = ['sub-a', 'sub-b', 'orders/created', 'sub-ü'];
const CONSUMERS = ['consumer-1', 'consumer-2', 'client-1'];
const TYPES = ['orders/created', 'orders/paid', 'billing/payé'];
const SENDERS = ['client-1', 'client-2', 'klient-ß-東京'];

/** `count` deliveries of varied events, names and bodies; type/sender given or left null at random. */
function makePushes(rng: Prng, count: number, payloadBytes: () => number = () => rng.int(0, 200)): Pushed[] {
  const events: StoredEvent[] = [];
  for (let i = 0; i < count; i++) {
    events.push(
      event({
        id: `id-${i}`,
        type: rng.pick(TYPES),
        sender: rng.pick(SENDERS),
        payload: rng.bytes(payloadBytes()),
        key: rng.next() < 0.3 ? `key-${rng.int(0, 9)}` : null,
        headers: rng.next() < 0.3 ? { h: `v${i}`, 'x-ü': 'välue' } : {},
        recipients: rng.next() < 0.2 ? ['client-1', 'client-β'] : null,
        signature: rng.next() < 0.2 ? rng.bytes(64) : null,
        priority: rng.int(0, 9),
        expiresAt: rng.next() < 0.5 ? 0 : 1_718_000_000_000 + i,
      }),
    );
  }
  const placed = placeBodies(events, rng);
  return events.map((e, i) => ({
    subscription: rng.pick(SUBSCRIPTIONS),
    consumer: rng.pick(CONSUMERS),
    offset: i === 0 ? 2 ** 45 + 3 : rng.int(0, 1_000_000),
    attempt: rng.int(1, 10),
    ...placed[i]!,
    type: rng.next() < 0.5 ? e.type : null,
    sender: rng.next() < 0.5 ? e.sender : null,
    event: e,
  }));
}

function pushAll(packer: DeliveryPacker, pushes: readonly Pushed[]): void {
  for (const p of pushes) packer.push(p.subscription, p.consumer, p.offset, p.attempt, p.body, p.start, p.end, p.type, p.sender);
}

function plainEvent(e: StoredEvent): unknown {
  return {
    ...e,
    headers: Object.entries(e.headers),
    payload: Buffer.from(e.payload).toString('hex'),
    signature: e.signature === null ? null : Buffer.from(e.signature).toString('hex'),
  };
}

function expectDeliveries(deliveries: readonly Delivery[], pushes: readonly Pushed[], shard: number): void {
  expect(deliveries.length).toBe(pushes.length);
  pushes.forEach((p, i) => {
    const d = deliveries[i]!;
    expect(
      { subscription: d.subscription, consumer: d.consumer, shard: d.shard, offset: d.offset, attempt: d.attempt },
      `delivery ${i}`,
    ).toEqual({ subscription: p.subscription, consumer: p.consumer, shard, offset: p.offset, attempt: p.attempt });
    expect(plainEvent(d.event), `delivery ${i} event`).toEqual(plainEvent(p.event));
  });
}

/** The distinct strings a batch of pushes names. */
function distinctNames(pushes: readonly Pushed[]): Set<string> {
  const names = new Set<string>();
  for (const p of pushes) {
    names.add(p.subscription);
    names.add(p.consumer);
    if (p.type !== null) names.add(p.type);
    if (p.sender !== null) names.add(p.sender);
  }
  return names;
}

function expectPackedShape(packed: PackedDeliveries, pushes: readonly Pushed[]): void {
  expect(packed.count).toBe(pushes.length);
  expect(packed.bodyEnds.length).toBe(pushes.length);
  expect(packed.meta.length).toBe(pushes.length * META_FIELDS);
  expect(packed.bodies.length).toBe(pushes.reduce((sum, p) => sum + p.end - p.start, 0));
  // Names: each distinct string once, and exactly the strings the pushes gave.
  expect(new Set(packed.names).size, 'no name twice').toBe(packed.names.length);
  expect(new Set(packed.names)).toEqual(distinctNames(pushes));
  pushes.forEach((p, i) => {
    const m = i * META_FIELDS;
    expect(packed.meta[m]).toBe(p.offset);
    expect(packed.meta[m + 1]).toBe(p.attempt);
    expect(packed.names[packed.meta[m + 2]!]).toBe(p.subscription);
    expect(packed.names[packed.meta[m + 3]!]).toBe(p.consumer);
    if (p.type === null) expect(packed.meta[m + 4]).toBe(-1);
    else expect(packed.names[packed.meta[m + 4]!]).toBe(p.type);
    if (p.sender === null) expect(packed.meta[m + 5]).toBe(-1);
    else expect(packed.names[packed.meta[m + 5]!]).toBe(p.sender);
    // Each body is copied byte for byte, back to back.
    const start = i === 0 ? 0 : packed.bodyEnds[i - 1]!;
    expect(Buffer.from(packed.bodies.subarray(start, packed.bodyEnds[i]!)).equals(Buffer.from(p.body.subarray(p.start, p.end))), `body ${i}`).toBe(true);
  });
}

describe('DeliveryPacker and unpackDeliveries', () => {
  it('round-trips deliveries whose bodies are sub-ranges of larger buffers, with known and unknown names', () => {
    const rng = new Prng(0xde11);
    const pushes = makePushes(rng, 60);
    // Make sure every combination of known/unknown type and sender occurs.
    pushes[0]!.type = null;
    pushes[0]!.sender = null;
    pushes[1]!.type = pushes[1]!.event.type;
    pushes[1]!.sender = null;
    pushes[2]!.type = null;
    pushes[2]!.sender = pushes[2]!.event.sender;
    pushes[3]!.type = pushes[3]!.event.type;
    pushes[3]!.sender = pushes[3]!.event.sender;
    const packer = new DeliveryPacker();
    pushAll(packer, pushes);
    expect(packer.count).toBe(60);
    expect(packer.byteLength).toBe(pushes.reduce((sum, p) => sum + p.end - p.start, 0));
    const { packed } = packer.take();
    expectPackedShape(packed, pushes);
    expectDeliveries(unpackDeliveries(packed, 7), pushes, 7);
  });

  it('shares names across deliveries and columns: each distinct string once', () => {
    const body = encodeEventBody(event({ type: 'orders/created', sender: 'client-1' }));
    const packer = new DeliveryPacker();
    // The same string as subscription, type and consumer/sender; names alternate, so the packer's
    // last-name shortcut and its table both answer.
    const names: Array<[string, string]> = [
      ['orders/created', 'client-1'],
      ['other', 'client-1'],
      ['orders/created', 'c2'],
      ['other', 'c2'],
      ['orders/created', 'client-1'],
    ];
    for (const [i, [subscription, consumer]] of names.entries()) packer.push(subscription, consumer, i, 1, body, 0, body.length, 'orders/created', 'client-1');
    const { packed } = packer.take();
    expect([...packed.names].sort()).toEqual(['c2', 'client-1', 'orders/created', 'other']);
    const index = (name: string) => packed.names.indexOf(name);
    for (let i = 0; i < names.length; i++) {
      const m = i * META_FIELDS;
      expect([packed.meta[m + 2], packed.meta[m + 3], packed.meta[m + 4], packed.meta[m + 5]]).toEqual([
        index(names[i]![0]),
        index(names[i]![1]),
        index('orders/created'),
        index('client-1'),
      ]);
    }
    const deliveries = unpackDeliveries(packed, 0);
    expect(deliveries.map((d) => [d.subscription, d.consumer, d.offset, d.event.type, d.event.sender])).toEqual(
      names.map(([s, c], i) => [s, c, i, 'orders/created', 'client-1']),
    );
  });

  it('copies each body when it takes the batch: changing the sources afterwards does not change it', () => {
    const rng = new Prng(0xde12);
    const pushes = makePushes(rng, 20);
    const packer = new DeliveryPacker();
    pushAll(packer, pushes);
    const { packed } = packer.take();
    expect(new Set(pushes.map((p) => p.body.buffer)).has(packed.bodies.buffer)).toBe(false);
    for (const p of pushes) p.body.fill(0);
    expectDeliveries(unpackDeliveries(packed, 1), pushes, 1);
  });

  it('grows past 1024 deliveries and 64 KiB of bodies, and takes a body larger than the buffer at once', () => {
    const rng = new Prng(0xde13);
    const pushes = makePushes(rng, 2_500, () => rng.int(50, 150));
    // One body several times the initial 64 KiB, in the middle of the run.
    const big = event({ id: 'big', payload: rng.bytes(300_000), type: 'billing/payé' });
    const [placed] = placeBodies([big], rng, 1);
    pushes.splice(1_500, 0, { subscription: 'sub-a', consumer: 'consumer-1', offset: 99, attempt: 2, ...placed!, type: big.type, sender: null, event: big });
    const packer = new DeliveryPacker();
    pushAll(packer, pushes);
    expect(packer.count).toBe(2_501);
    expect(packer.byteLength).toBeGreaterThan(64 * 1024 + 300_000);
    const { packed } = packer.take();
    expectPackedShape(packed, pushes);
    expectDeliveries(unpackDeliveries(packed, 2), pushes, 2);
  });

  it('is empty after take(), and the next batch is independent of the one taken', () => {
    const rng = new Prng(0xde14);
    const first = makePushes(rng, 1_100, () => rng.int(0, 80));
    const packer = new DeliveryPacker();
    pushAll(packer, first);
    const one = packer.take();
    expect(packer.count).toBe(0);
    expect(packer.byteLength).toBe(0);
    const firstNames = [...one.packed.names];

    // A second batch with other names only: it starts its own name table.
    const second = makePushes(rng, 30).map((p, i) => ({ ...p, subscription: `second-sub-${i % 3}`, consumer: `second-consumer-${i % 2}`, type: null, sender: null }));
    pushAll(packer, second);
    expect(packer.count).toBe(30);
    const two = packer.take();
    expectPackedShape(two.packed, second);
    expect(two.packed.names.every((name) => name.startsWith('second-'))).toBe(true);
    expectDeliveries(unpackDeliveries(two.packed, 4), second, 4);

    // The first batch is untouched by the second.
    expect(one.packed.names).toEqual(firstNames);
    expectPackedShape(one.packed, first);
    expectDeliveries(unpackDeliveries(one.packed, 3), first, 3);
    // Buffers are not shared between the batches.
    for (const a of one.transfer) for (const b of two.transfer) expect(a).not.toBe(b);

    // A batch that starts with the very names the previous batches ended with (the packer's
    // last-name shortcut must not answer with an index into an old table).
    const lastSecond = second[second.length - 1]!;
    const repeat: Pushed[] = TYPES.map((type, k) => {
      const e = event({ type, sender: SENDERS[k]!, id: `repeat-${k}` });
      const body = encodeEventBody(e);
      return { subscription: lastSecond.subscription, consumer: lastSecond.consumer, offset: k, attempt: 1, body, start: 0, end: body.length, type, sender: SENDERS[k]!, event: e };
    });
    pushAll(packer, repeat);
    const three = packer.take();
    expectPackedShape(three.packed, repeat);
    expectDeliveries(unpackDeliveries(three.packed, 8), repeat, 8);

    // An empty take after a take: nothing in it.
    const empty = packer.take();
    expect(empty.packed.count).toBe(0);
    expect(empty.packed.names).toEqual([]);
    expect(unpackDeliveries(empty.packed, 0)).toEqual([]);
  });

  it('lists the buffers of bodies, bodyEnds and meta for transfer, and the batch survives being transferred', () => {
    const rng = new Prng(0xde15);
    const pushes = makePushes(rng, 40);
    const packer = new DeliveryPacker();
    pushAll(packer, pushes);
    const { packed, transfer } = packer.take();
    expect(transfer).toHaveLength(3);
    expect(transfer).toContain(packed.bodies.buffer);
    expect(transfer).toContain(packed.bodyEnds.buffer);
    expect(transfer).toContain(packed.meta.buffer);
    expect(new Set(transfer).size).toBe(3);

    // What a worker does: post the batch with its transfer list (the originals are detached).
    const received = structuredClone(packed, { transfer });
    expect(packed.bodies.buffer.byteLength).toBe(0);
    expect(packed.meta.buffer.byteLength).toBe(0);
    expect(packed.bodyEnds.buffer.byteLength).toBe(0);
    expectPackedShape(received, pushes);
    expectDeliveries(unpackDeliveries(received, 5), pushes, 5);

    // The packer kept none of the transferred buffers: it packs the next batch as before.
    const next = makePushes(rng, 1_200, () => rng.int(40, 90));
    pushAll(packer, next);
    const again = packer.take();
    const receivedAgain = structuredClone(again.packed, { transfer: again.transfer });
    expectDeliveries(unpackDeliveries(receivedAgain, 6), next, 6);
  });
});
