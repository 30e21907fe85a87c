import { describe, expect, it } from 'vitest';
import { DeliveryPacker, META_FIELDS } from '../../../src/engine/delivery-batch.js';
import { OffsetRangeSet } from '../../../src/engine/shard/offset-range-set.js';
import { SubscriptionState } from '../../../src/engine/shard/subscription-state.js';
import { resolveSubscriptionSpec, type SubscriptionOptions } from '../../../src/engine/subscription-spec.js';

const ACK_TIMEOUT_MS = 1_000;
const T0 = 1_000_000;

interface Sent {
  offset: number;
  attempt: number;
  consumer: string;
}

function stateWith(options: Partial<SubscriptionOptions> = {}, readOffset = 0): SubscriptionState {
  const spec = resolveSubscriptionSpec('svc', { name: 'sub', pattern: 't/*', ackTimeoutMs: ACK_TIMEOUT_MS, ...options });
  return new SubscriptionState(spec, readOffset, new OffsetRangeSet(), readOffset);
}

/** Offer events at consecutive offsets from the current read offset, as the shard's fill does. */
function offer(state: SubscriptionState, keys: readonly string[]): void {
  for (const key of keys) {
    state.offer(state.readOffset, key, Uint8Array.of(state.readOffset & 0xff), 0, 1);
    state.readOffset++;
  }
}

function dispatch(state: SubscriptionState, now = T0): { sent: Sent[]; dead: number[] } {
  const packer = new DeliveryPacker();
  const dead = state.dispatch(now, packer).map((d) => d.offset);
  if (packer.count === 0) return { sent: [], dead };
  const { packed } = packer.take();
  const sent: Sent[] = [];
  for (let i = 0; i < packed.count; i++) {
    const m = i * META_FIELDS;
    sent.push({ offset: packed.meta[m]!, attempt: packed.meta[m + 1]!, consumer: packed.names[packed.meta[m + 3]!]! });
  }
  return { sent, dead };
}

const offsets = (sent: Sent[]) => sent.map((s) => s.offset);

describe('SubscriptionState', () => {
  it('delivers in offset order within maxInFlight, and the commit point follows the lowest unacked offset', () => {
    const state = stateWith({ maxInFlight: 3 });
    offer(state, ['a', 'b', 'c', 'd', 'e']);
    expect(state.readRoom, 'the read-ahead is bounded by the window too').toBe(0);
    state.attach('c1', 100);
    expect(dispatch(state).sent).toEqual([0, 1, 2].map((offset) => ({ offset, attempt: 1, consumer: 'c1' })));
    expect(dispatch(state).sent).toEqual([]);
    expect(state.readRoom).toBe(1);
    expect(state.ack([1]).acked).toEqual([1]);
    expect(offsets(dispatch(state).sent)).toEqual([3]);
    expect(state.commitOffset).toBe(0);
    state.ack([0]);
    expect(state.commitOffset).toBe(2);
    state.ack([2, 3]);
    expect(offsets(dispatch(state).sent)).toEqual([4]);
    state.ack([4, 4, 99]);
    expect(state.commitOffset, 'all done: the commit point is the read offset').toBe(5);
    expect(state.ack([4]).acked, 'acking again changes nothing').toEqual([]);
  });

  it('keeps acked offsets above the commit point in the cursor', () => {
    const state = stateWith({ maxInFlight: 10 });
    offer(state, ['a', 'b', 'c', 'd']);
    state.attach('c1', 10);
    dispatch(state);
    state.ack([1, 3]);
    const cursor = state.cursor();
    expect(cursor.commit).toBe(0);
    expect(cursor.done.toJSON()).toEqual([[1, 2], [3, 4]]);
    state.ack([0]);
    expect(state.cursor().commit).toBe(2);
    expect(state.cursor().done.toJSON()).toEqual([[3, 4]]);
  });

  it('shares events round robin within each consumer credit', () => {
    const state = stateWith({ maxInFlight: 10 });
    offer(state, ['a', 'b', 'c', 'd', 'e', 'f']);
    state.attach('c1', 2);
    state.attach('c2', 2);
    const { sent } = dispatch(state);
    expect(sent.map((s) => s.consumer)).toEqual(['c1', 'c2', 'c1', 'c2']);
    expect(dispatch(state).sent).toEqual([]);
    const ofC1 = sent.find((s) => s.consumer === 'c1')!;
    state.ack([ofC1.offset]);
    expect(dispatch(state).sent).toEqual([{ offset: 4, attempt: 1, consumer: 'c1' }]);
  });

  it('redelivers after the ack timeout before new events, lowest offset first', () => {
    const state = stateWith({ maxInFlight: 2 });
    offer(state, ['a', 'b', 'c', 'd']);
    state.attach('c1', 10);
    expect(offsets(dispatch(state).sent)).toEqual([0, 1]);
    state.expire(T0 + ACK_TIMEOUT_MS - 1);
    expect(dispatch(state, T0 + ACK_TIMEOUT_MS - 1).sent, 'not yet due').toEqual([]);
    state.expire(T0 + ACK_TIMEOUT_MS);
    expect(dispatch(state, T0 + ACK_TIMEOUT_MS).sent).toEqual([
      { offset: 0, attempt: 2, consumer: 'c1' },
      { offset: 1, attempt: 2, consumer: 'c1' },
    ]);
    state.nack([1], 0, T0 + ACK_TIMEOUT_MS);
    state.ack([0]);
    expect(dispatch(state, T0 + ACK_TIMEOUT_MS).sent).toEqual([
      { offset: 1, attempt: 3, consumer: 'c1' },
      { offset: 2, attempt: 1, consumer: 'c1' },
    ]);
  });

  it('brings a delayed nack back only when due', () => {
    const state = stateWith({ maxInFlight: 5 });
    offer(state, ['a']);
    state.attach('c1', 10);
    dispatch(state);
    state.nack([0], 300, T0);
    state.expire(T0 + 299);
    expect(dispatch(state, T0 + 299).sent).toEqual([]);
    state.expire(T0 + 300);
    expect(dispatch(state, T0 + 300).sent).toEqual([{ offset: 0, attempt: 2, consumer: 'c1' }]);
  });

  it('dead-letters an event after maxDeliveries and moves on', () => {
    const state = stateWith({ maxInFlight: 1, maxDeliveries: 2 });
    offer(state, ['a', 'b']);
    state.attach('c1', 10);
    expect(dispatch(state).sent).toEqual([{ offset: 0, attempt: 1, consumer: 'c1' }]);
    state.nack([0], 0, T0);
    expect(dispatch(state).sent).toEqual([{ offset: 0, attempt: 2, consumer: 'c1' }]);
    state.expire(T0 + ACK_TIMEOUT_MS);
    const { sent, dead } = dispatch(state, T0 + ACK_TIMEOUT_MS);
    expect(dead).toEqual([0]);
    expect(sent).toEqual([{ offset: 1, attempt: 1, consumer: 'c1' }]);
    expect(state.done.has(0)).toBe(true);
    expect(state.commitOffset).toBe(1);
    expect(state.deadLettered).toBe(1);
  });

  it('in ordered mode holds a key from first delivery until ack, redelivering it first', () => {
    const state = stateWith({ maxInFlight: 10, ordered: true });
    offer(state, ['a', 'a', 'b', 'a', 'b']);
    state.attach('c1', 10);
    expect(offsets(dispatch(state).sent)).toEqual([0, 2]);
    state.nack([0], 0, T0);
    expect(dispatch(state).sent).toEqual([{ offset: 0, attempt: 2, consumer: 'c1' }]);
    state.ack([2]);
    expect(offsets(dispatch(state).sent)).toEqual([4]);
    state.nack([0], 200, T0);
    state.expire(T0 + 100);
    expect(dispatch(state, T0 + 100).sent, 'a delayed nack keeps the key held').toEqual([]);
    state.ack([0]);
    expect(offsets(dispatch(state).sent)).toEqual([1]);
    state.ack([1]);
    expect(offsets(dispatch(state).sent)).toEqual([3]);
  });

  it("redelivers a detached consumer's deliveries to the others at once", () => {
    const state = stateWith({ maxInFlight: 10 });
    offer(state, ['a', 'b', 'c', 'd']);
    state.attach('c1', 10);
    state.attach('c2', 10);
    const first = dispatch(state).sent;
    const ofC1 = first.filter((s) => s.consumer === 'c1').map((s) => s.offset);
    state.detach('c1');
    expect(dispatch(state).sent).toEqual(ofC1.map((offset) => ({ offset, attempt: 2, consumer: 'c2' })));
    state.detach('c2');
    expect(state.hasConsumers).toBe(false);
    expect(dispatch(state).sent, 'nothing goes out without consumers').toEqual([]);
  });

  it('wants only events addressed to its client and not done yet', () => {
    const done = OffsetRangeSet.fromJSON([[3, 4]]);
    const spec = resolveSubscriptionSpec('svc', { name: 'sub', pattern: 't/*' });
    const state = new SubscriptionState(spec, 0, done, 0);
    expect(state.wants(1, 'k', null)).toBe(true);
    expect(state.wants(1, 'k', ['svc'])).toBe(true);
    expect(state.wants(1, 'k', ['other', 'svc'])).toBe(true);
    expect(state.wants(1, 'k', ['other'])).toBe(false);
    expect(state.wants(3, 'k', null)).toBe(false);
    expect(state.matchesType('t/x')).toBe(true);
    expect(state.matchesType('u/x')).toBe(false);
  });
});
