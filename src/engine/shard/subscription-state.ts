import type { DeliveryPacker } from '../delivery-batch.js';
import { TypePattern } from '../type-pattern.js';
import type { SubscriptionSpec } from '../subscription-spec.js';
import { OffsetRangeSet } from './offset-range-set.js';

type PendingState = 'ready' | 'inflight' | 'waiting' | 'delayed';

interface PendingEvent {
  offset: number;
  /** Ordering key: the event's key, else its type. */
  key: string;
  /** The stored event body, in its own buffer. */
  body: Uint8Array;
  /** Deliveries so far. */
  attempt: number;
  state: PendingState;
  consumer: string | null;
  /** inflight: redeliver after this time; delayed: due at this time. */
  dueAt: number;
  /** A dead letter put back by a replay: below the commit point, so it does not hold the commit. */
  replayed: boolean;
  /** ms; 0 when the event does not expire. */
  expiresAt: number;
}

interface ConsumerSlot {
  id: string;
  credits: number;
  inflight: number;
}

export interface DeadLetter {
  offset: number;
  reason: string;
  /** Deliveries it had. */
  attempts: number;
  /** It had been replayed from the dead letters before (its end must be recorded there too). */
  replayed: boolean;
}

/** An event that left the subscription after a replay (acked, or dead again). */
export interface ReplayFinished {
  offset: number;
}

const MATCH_CACHE_MAX = 10_000;
/** The dead-letter reason of an event whose ttl passed before it was delivered (or acked). */
export const EXPIRED = 'expired';

/**
 * The delivery state of one durable subscription in one shard.
 *
 * Events are read from the shard's log in offset order into a bounded read-ahead (`ready`), handed to
 * live consumers within the subscription's window, and tracked until acked. `pending` holds every
 * event read and not yet done, keyed by offset in insertion (= offset) order, so its first key is the
 * commit point: every matching event below it is done. Bounds: at most `maxInFlight` events are
 * outstanding (in flight, waiting for redelivery or delayed by a nack), and at most `maxInFlight`
 * more wait in the read-ahead, so memory does not grow with the backlog on disk.
 *
 * Redelivery order (default mode): events due for redelivery go before new ones, lowest offset
 * first. Ordered mode: an event's key stays held from its first delivery until it is acked or
 * dead-lettered, so later events of that key wait and its redelivery comes before them.
 */
export class SubscriptionState {
  readonly spec: SubscriptionSpec;
  readonly pattern: TypePattern;
  /** Next log offset to read for this subscription. */
  readOffset: number;
  /** Done offsets at or above the commit point (acked, dead-lettered, or recovered as such). */
  readonly done: OffsetRangeSet;
  private readonly pending = new Map<number, PendingEvent>();
  private ready: Array<PendingEvent | null> = [];
  private readyHead = 0;
  private readyCount = 0;
  private redeliver: PendingEvent[] = [];
  private outstanding = 0;
  private readonly heldKeys = new Map<string, number>();
  private readonly consumers = new Map<string, ConsumerSlot>();
  private consumerOrder: string[] = [];
  private nextConsumer = 0;
  private readonly matchCache = new Map<string, boolean>();

  constructor(spec: SubscriptionSpec, readOffset: number, done: OffsetRangeSet) {
    this.spec = spec;
    this.pattern = new TypePattern(spec.pattern);
    this.readOffset = readOffset;
    this.done = done;
  }

  /**
   * Ordered mode: the lowest offset passed over because its key was held (or evicted from the
   * read-ahead for that reason), to be read again once a key is released; null when none.
   */
  private rewindOffset: number | null = null;

  /** Every matching event below this offset is done. */
  get commitOffset(): number {
    // A full pass (pending is bounded by twice the window): rewound reads and replays insert out of
    // offset order, so the first key is not always the lowest.
    let commit = this.rewindOffset === null ? this.readOffset : Math.min(this.readOffset, this.rewindOffset);
    for (const item of this.pending.values()) if (!item.replayed && item.offset < commit) commit = item.offset;
    return commit;
  }

  /** Events this subscription dead-lettered here since the shard opened (for status and metrics). */
  deadLettered = 0;

  get hasConsumers(): boolean {
    return this.consumers.size > 0;
  }

  /** Events the window still takes as outstanding (used to pace dead-letter replays). */
  get outstandingRoom(): number {
    return Math.max(0, this.spec.maxInFlight - this.outstanding);
  }

  /** While paused nothing is read or delivered; the backlog waits on disk, acks still count. */
  paused = false;

  /** Whether deliveries can go out now: a live consumer, and not paused. */
  get isActive(): boolean {
    return this.consumers.size > 0 && !this.paused;
  }

  /**
   * Move the subscription to `offset` (replay from a time or offset, or skip ahead): everything read
   * is forgotten, deliveries out now will not be redelivered (their acks are ignored), and reading
   * starts again at `offset`.
   */
  seek(offset: number): void {
    this.pending.clear();
    this.ready = [];
    this.readyHead = 0;
    this.readyCount = 0;
    this.redeliver = [];
    this.outstanding = 0;
    this.heldKeys.clear();
    this.rewindOffset = null;
    for (const slot of this.consumers.values()) slot.inflight = 0;
    this.done.clear();
    this.readOffset = offset;
  }

  /**
   * How many more events the read-ahead takes now. In ordered mode a full read-ahead first gives up
   * the events waiting behind held keys (they are read again later), so one key's backlog cannot
   * stall the others.
   */
  get readRoom(): number {
    if (this.readyCount >= this.spec.maxInFlight && this.spec.ordered) this.evictHeld();
    return Math.max(0, this.spec.maxInFlight - this.readyCount);
  }

  /** Whether this subscription wants events of `type` (cached: types repeat). */
  matchesType(type: string): boolean {
    let matches = this.matchCache.get(type);
    if (matches === undefined) {
      matches = this.pattern.matches(type);
      if (this.matchCache.size >= MATCH_CACHE_MAX) this.matchCache.clear();
      this.matchCache.set(type, matches);
    }
    return matches;
  }

  /**
   * Whether to take this event into the read-ahead now: addressed to this client, not done, not
   * already pending (a rewound read passes them again), and in ordered mode its key not held.
   */
  wants(offset: number, key: string, recipients: readonly string[] | null): boolean {
    if (this.done.has(offset) || this.pending.has(offset)) return false;
    if (recipients !== null && !recipients.includes(this.spec.client)) return false;
    if (this.spec.ordered && this.heldKeys.has(key)) {
      this.rewindOffset = Math.min(this.rewindOffset ?? offset, offset);
      return false;
    }
    return true;
  }

  /** Drop not-yet-delivered events whose key is held; they are read again after a release. */
  private evictHeld(): void {
    for (let i = this.readyHead; i < this.ready.length; i++) {
      const item = this.ready[i];
      if (!item || !this.heldKeys.has(item.key)) continue;
      this.ready[i] = null;
      this.readyCount--;
      this.pending.delete(item.offset);
      this.rewindOffset = Math.min(this.rewindOffset ?? item.offset, item.offset);
    }
    this.compactReady();
  }

  /** Take an event read from the log (offsets arrive in increasing order). */
  offer(offset: number, key: string, body: Uint8Array, expiresAt = 0): void {
    const item: PendingEvent = { offset, key, body, attempt: 0, state: 'ready', consumer: null, dueAt: 0, replayed: false, expiresAt };
    this.pending.set(offset, item);
    this.ready.push(item);
    this.readyCount++;
  }

  attach(consumer: string, credits: number): void {
    const existing = this.consumers.get(consumer);
    if (existing) {
      existing.credits = credits;
      return;
    }
    this.consumers.set(consumer, { id: consumer, credits, inflight: 0 });
    this.consumerOrder = [...this.consumers.keys()];
  }

  /** Remove a consumer; its unacked deliveries become due for redelivery at once. */
  detach(consumer: string): void {
    if (!this.consumers.delete(consumer)) return;
    this.consumerOrder = [...this.consumers.keys()];
    for (const item of this.pending.values()) {
      if (item.state === 'inflight' && item.consumer === consumer) this.toWaiting(item);
    }
  }

  /**
   * Hand out what can be delivered now: redeliveries first, then new events within the window, to
   * consumers with credit, round robin. Returns dead letters (events past maxDeliveries).
   */
  dispatch(nowMs: number, out: DeliveryPacker): DeadLetter[] {
    const dead: DeadLetter[] = [];
    if (!this.isActive) return dead;
    for (let i = 0; i < this.redeliver.length; ) {
      const item = this.redeliver[i]!;
      if (item.expiresAt > 0 && item.expiresAt <= nowMs) {
        this.redeliver.splice(i, 1);
        this.finish(item);
        this.deadLettered++;
        dead.push({ offset: item.offset, reason: EXPIRED, attempts: item.attempt, replayed: item.replayed });
        continue;
      }
      if (item.attempt >= this.spec.maxDeliveries) {
        this.redeliver.splice(i, 1);
        this.finish(item);
        this.deadLettered++;
        dead.push({ offset: item.offset, reason: `not acked after ${item.attempt} deliveries`, attempts: item.attempt, replayed: item.replayed });
        continue;
      }
      // A replayed dead letter takes its key like a first delivery: it waits while another event of
      // the key is out (redeliveries already hold their key).
      const holder = this.spec.ordered ? this.heldKeys.get(item.key) : undefined;
      if (holder !== undefined && holder !== item.offset) {
        i++;
        continue;
      }
      const consumer = this.pickConsumer();
      if (!consumer) return dead;
      this.redeliver.splice(i, 1);
      if (this.spec.ordered) this.heldKeys.set(item.key, item.offset);
      this.deliver(item, consumer, nowMs, out);
    }
    for (let i = this.readyHead; i < this.ready.length && this.outstanding < this.spec.maxInFlight; i++) {
      const item = this.ready[i];
      if (!item) continue;
      if (item.expiresAt > 0 && item.expiresAt <= nowMs) {
        this.ready[i] = null;
        this.readyCount--;
        this.pending.delete(item.offset);
        this.done.add(item.offset);
        this.deadLettered++;
        dead.push({ offset: item.offset, reason: EXPIRED, attempts: 0, replayed: false });
        continue;
      }
      if (this.spec.ordered) {
        const holder = this.heldKeys.get(item.key);
        if (holder !== undefined && holder !== item.offset) continue;
      }
      const consumer = this.pickConsumer();
      if (!consumer) break;
      this.ready[i] = null;
      this.readyCount--;
      this.outstanding++;
      if (this.spec.ordered) this.heldKeys.set(item.key, item.offset);
      this.deliver(item, consumer, nowMs, out);
    }
    this.compactReady();
    return dead;
  }

  /**
   * Settle acks; returns the offsets that became done (unknown or already-done offsets are ignored)
   * and, among them, those that had been replayed from the dead letters.
   */
  ack(offsets: readonly number[]): { acked: number[]; replayedDone: number[] } {
    const acked: number[] = [];
    const replayedDone: number[] = [];
    for (const offset of offsets) {
      const item = this.take(offset);
      if (!item) continue;
      acked.push(offset);
      if (item.replayed) replayedDone.push(offset);
    }
    return { acked, replayedDone };
  }

  /** The consumer gives up on these deliveries: they are dead-lettered with `reason`, never redelivered. */
  discard(offsets: readonly number[], reason: string): DeadLetter[] {
    const dead: DeadLetter[] = [];
    for (const offset of offsets) {
      const item = this.take(offset);
      if (!item) continue;
      this.deadLettered++;
      dead.push({ offset, reason: `discarded: ${reason}`, attempts: item.attempt, replayed: item.replayed });
    }
    return dead;
  }

  /**
   * Put a dead letter back (a replay): delivered again before new events, attempts counted afresh.
   * Returns false when it is already pending.
   */
  replay(offset: number, key: string, body: Uint8Array): boolean {
    if (this.pending.has(offset)) return false;
    // A replay is an operator's decision: it is delivered even if the event's ttl has passed.
    const item: PendingEvent = { offset, key, body, attempt: 0, state: 'waiting', consumer: null, dueAt: 0, replayed: true, expiresAt: 0 };
    this.pending.set(offset, item);
    this.outstanding++;
    this.done.delete(offset);
    let i = this.redeliver.length;
    while (i > 0 && this.redeliver[i - 1]!.offset > offset) i--;
    this.redeliver.splice(i, 0, item);
    return true;
  }

  /** Remove a delivered (not merely read-ahead) event and mark it done; null if there is none. */
  private take(offset: number): PendingEvent | null {
    const item = this.pending.get(offset);
    if (!item || item.state === 'ready') return null;
    if (item.state === 'waiting') this.redeliver.splice(this.redeliver.indexOf(item), 1);
    this.finish(item);
    return item;
  }

  /** Nacked deliveries come back after `delayMs` (0: at once); the attempt still counts. */
  nack(offsets: readonly number[], delayMs: number, nowMs: number): number[] {
    const nacked: number[] = [];
    for (const offset of offsets) {
      const item = this.pending.get(offset);
      if (!item || item.state !== 'inflight') continue;
      nacked.push(offset);
      this.release(item);
      if (delayMs > 0) {
        item.state = 'delayed';
        item.dueAt = nowMs + delayMs;
      } else {
        this.toWaiting(item);
      }
    }
    return nacked;
  }

  /** Move deliveries past their ack deadline, and delayed nacks now due, to redelivery. */
  expire(nowMs: number): void {
    for (const item of this.pending.values()) {
      if ((item.state === 'inflight' || item.state === 'delayed') && item.dueAt <= nowMs) this.toWaiting(item);
    }
  }

  /** The durable view of this subscription's position. */
  cursor(): { commit: number; done: OffsetRangeSet } {
    const commit = this.commitOffset;
    this.done.dropBelow(commit);
    return { commit, done: this.done };
  }

  private deliver(item: PendingEvent, consumer: ConsumerSlot, nowMs: number, out: DeliveryPacker): void {
    item.state = 'inflight';
    item.attempt++;
    item.consumer = consumer.id;
    item.dueAt = nowMs + this.spec.ackTimeoutMs;
    consumer.inflight++;
    out.push(this.spec.key, consumer.id, item.offset, item.attempt, item.body);
  }

  private pickConsumer(): ConsumerSlot | null {
    const count = this.consumerOrder.length;
    for (let tried = 0; tried < count; tried++) {
      const slot = this.consumers.get(this.consumerOrder[this.nextConsumer++ % count]!)!;
      if (slot.inflight < slot.credits) return slot;
    }
    return null;
  }

  private release(item: PendingEvent): void {
    if (item.state !== 'inflight' || item.consumer === null) return;
    const slot = this.consumers.get(item.consumer);
    if (slot) slot.inflight--;
    item.consumer = null;
  }

  private toWaiting(item: PendingEvent): void {
    this.release(item);
    item.state = 'waiting';
    // Keep redeliveries in offset order; the queue is bounded by the window.
    let i = this.redeliver.length;
    while (i > 0 && this.redeliver[i - 1]!.offset > item.offset) i--;
    this.redeliver.splice(i, 0, item);
  }

  /** The event is done: acked or dead-lettered. */
  private finish(item: PendingEvent): void {
    this.release(item);
    this.pending.delete(item.offset);
    this.outstanding--;
    this.done.add(item.offset);
    if (this.spec.ordered && this.heldKeys.get(item.key) === item.offset) {
      this.heldKeys.delete(item.key);
      // Events passed over while this key was held are read again (pending and done ones are skipped).
      if (this.rewindOffset !== null) {
        this.readOffset = Math.min(this.readOffset, this.rewindOffset);
        this.rewindOffset = null;
      }
    }
  }

  private compactReady(): void {
    while (this.readyHead < this.ready.length && this.ready[this.readyHead] === null) this.readyHead++;
    if (this.readyHead === this.ready.length) {
      this.ready = [];
      this.readyHead = 0;
    } else if (this.ready.length - this.readyHead > 2 * this.readyCount + 1024) {
      // Ordered mode leaves holes behind a held key; squeeze them out so the array stays bounded.
      this.ready = this.ready.slice(this.readyHead).filter((item) => item !== null);
      this.readyHead = 0;
    } else if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.readyHead);
      this.readyHead = 0;
    }
  }
}
