import type { DeliveryPacker } from '../delivery-batch.js';
import { TypePattern } from '../type-pattern.js';
import type { SubscriptionSpec } from '../subscription-spec.js';
import { OffsetRangeSet } from './offset-range-set.js';
import { ReadyQueue, ScanStep } from './ready-queue.js';
import { ConsumerSlots, type ConsumerSlot } from './consumer-slots.js';
import { before, EXPIRED, MAIN_RANK, RANKS, laneKey, type DeadLetter, type PendingEvent } from './pending-event.js';
import { PendingEvents } from './pending-events.js';
import { TypeMatcher } from './type-matcher.js';
import type { EventCounters } from './shard-metrics.js';

export { EXPIRED, MAIN_RANK, laneKey, type DeadLetter } from './pending-event.js';

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
  private readonly matcher: TypeMatcher;
  /** Next log offset to read for this subscription. */
  readOffset: number;
  /** Done offsets at or above the commit point (acked, dead-lettered, or recovered as such). */
  readonly done: OffsetRangeSet;
  private readonly pending: PendingEvents;
  private readonly ready = new ReadyQueue<PendingEvent>(RANKS);
  /** Next lane position to read, by priority (unset: from the subscription's start). */
  readonly laneRead: Array<number | undefined> = new Array(RANKS);
  /** Where the subscription started in this shard (a lane's first read begins there). */
  readonly startOffset: number;
  private redeliver: PendingEvent[] = [];

  private outstanding = 0;
  private readonly heldKeys = new Map<string, number>();
  private readonly consumers = new ConsumerSlots();
  /** Where deliveries and settlements are counted by event type (the shard's metrics). */
  private readonly counters: EventCounters | null;

  constructor(
    spec: SubscriptionSpec,
    readOffset: number,
    done: OffsetRangeSet,
    startOffset: number,
    lanes: Record<string, number> = {},
    counters: EventCounters | null = null,
  ) {
    this.spec = spec;
    this.counters = counters;
    this.pending = new PendingEvents(spec.maxInFlight);
    this.matcher = new TypeMatcher(new TypePattern(spec.pattern));
    this.readOffset = readOffset;
    this.done = done;
    this.startOffset = startOffset;
    for (const [priority, position] of Object.entries(lanes)) this.laneRead[Number(priority)] = position;
  }

  /** Whether priorities other than the default come from lanes (not in ordered mode). */
  get usesLanes(): boolean {
    return !this.spec.ordered;
  }

  /**
   * Ordered mode: the lowest offset passed over because its key was held (or evicted from the
   * read-ahead for that reason), to be read again once a key is released; null when none.
   */
  private rewindOffset: number | null = null;

  /** Every matching event below this offset is done. */
  get commitOffset(): number {
    return this.pending.commitOffset(this.readOffset, this.rewindOffset);
  }

  /** Every wanted entry of `priority`'s lane below this position is done (undefined: never read). */
  laneCommit(priority: number): number | undefined {
    return this.pending.laneCommit(priority, this.laneRead[priority]);
  }

  /** Events this subscription dead-lettered here since the shard opened (for status and metrics). */
  deadLettered = 0;

  /** Events outstanding: delivered, due for redelivery, delayed by a nack or being deferred. */
  get inFlight(): number {
    return this.outstanding;
  }

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
  seek(offset: number, lanePositions: Record<number, number>): void {
    this.pending.clear();
    this.ready.clear();
    this.laneRead.fill(undefined);
    for (const [priority, position] of Object.entries(lanePositions)) this.laneRead[Number(priority)] = position;
    this.redeliver = [];
    this.outstanding = 0;
    this.heldKeys.clear();
    this.rewindOffset = null;
    this.consumers.resetInflight();
    this.done.clear();
    this.readOffset = offset;
  }

  /**
   * How many more events the read-ahead takes now. In ordered mode a full read-ahead first gives up
   * the events waiting behind held keys (they are read again later), so one key's backlog cannot
   * stall the others.
   */
  get readRoom(): number {
    return this.roomFor(MAIN_RANK);
  }

  /**
   * Room in the read-ahead for events of `rank`: events of lower priority already read give way
   * (they are evicted as higher ones arrive, and read again later).
   */
  roomFor(rank: number): number {
    if (this.ready.count >= this.spec.maxInFlight && this.spec.ordered) this.evictHeld();
    return Math.max(0, this.spec.maxInFlight - this.ready.countUpTo(rank));
  }

  /** Whether this subscription wants events of `type` (cached: types repeat). */
  matchesType(type: string): boolean {
    return this.matcher.matches(type);
  }

  /**
   * Whether to take this event into the read-ahead now: addressed to this client, not done, not
   * already pending (a rewound read passes them again), and in ordered mode its key not held.
   */
  wants(offset: number, key: string, recipients: readonly string[] | null, doneKey = offset): boolean {
    if (this.done.has(doneKey) || this.pending.has(offset)) return false;
    if (recipients !== null && !recipients.includes(this.spec.client)) return false;
    if (this.spec.ordered && this.heldKeys.has(key)) {
      this.rewindOffset = Math.min(this.rewindOffset ?? offset, offset);
      return false;
    }
    return true;
  }

  /** Drop not-yet-delivered events whose key is held; they are read again after a release. */
  private evictHeld(): void {
    for (const item of this.ready.removeWhere((candidate) => this.heldKeys.has(candidate.key))) {
      this.pending.delete(item.offset);
      this.rewindOffset = Math.min(this.rewindOffset ?? item.offset, item.offset);
      this.pending.recycle(item);
    }
  }

  /**
   * Take an event read from the log (main scan: offsets in increasing order) or from a lane
   * (`lanePos` >= 0, `rank` its lane's). When the read-ahead is full, lower-priority events give
   * way and their sources rewind to read them again. `type` defaults to the key, which is the type
   * of an event without a key of its own.
   */
  offer(
    offset: number,
    key: string,
    body: Uint8Array,
    bodyStart: number,
    bodyEnd: number,
    expiresAt = 0,
    rank = MAIN_RANK,
    lanePos = -1,
    doneKey = offset,
    type = key,
    sender: string | null = null,
  ): void {
    const item = this.pending.record(offset, rank, lanePos, doneKey, key, type, body, bodyStart, bodyEnd, sender, 'ready', false, expiresAt);
    if (this.ready.count >= this.spec.maxInFlight) {
      for (const evicted of this.ready.evictAbove(rank, this.ready.count - this.spec.maxInFlight + 1)) {
        this.pending.delete(evicted.offset);
        if (evicted.lanePos >= 0) {
          const priority = 9 - evicted.rank;
          this.laneRead[priority] = Math.min(this.laneRead[priority] ?? evicted.lanePos, evicted.lanePos);
        } else {
          this.readOffset = Math.min(this.readOffset, evicted.offset);
        }
        this.pending.recycle(evicted);
      }
    }
    this.pending.add(item);
    this.ready.push(item);
  }

  attach(consumer: string, credits: number): void {
    this.consumers.attach(consumer, credits);
  }

  /** Remove a consumer; its unacked deliveries become due for redelivery at once. */
  detach(consumer: string): void {
    if (!this.consumers.detach(consumer)) return;
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
        this.counters?.deadLettered(item.type, 'expired');
        dead.push({ offset: item.offset, key: item.doneKey, reason: EXPIRED, attempts: item.attempt, replayed: item.replayed });
        this.pending.recycle(item);
        continue;
      }
      if (item.attempt >= this.spec.maxDeliveries) {
        this.redeliver.splice(i, 1);
        this.finish(item);
        this.deadLettered++;
        this.counters?.deadLettered(item.type, 'max-deliveries');
        dead.push({ offset: item.offset, key: item.doneKey, reason: `not acked after ${item.attempt} deliveries`, attempts: item.attempt, replayed: item.replayed });
        this.pending.recycle(item);
        continue;
      }
      // A replayed dead letter takes its key like a first delivery: it waits while another event of
      // the key is out (redeliveries already hold their key).
      const holder = this.spec.ordered ? this.heldKeys.get(item.key) : undefined;
      if (holder !== undefined && holder !== item.offset) {
        i++;
        continue;
      }
      const consumer = this.consumers.pick();
      if (!consumer) return dead;
      this.redeliver.splice(i, 1);
      if (this.spec.ordered) this.heldKeys.set(item.key, item.offset);
      this.deliver(item, consumer, nowMs, out);
    }
    this.ready.scan((item) => {
      if (this.outstanding >= this.spec.maxInFlight) return ScanStep.Stop;
      if (item.expiresAt > 0 && item.expiresAt <= nowMs) {
        this.pending.delete(item.offset);
        this.done.add(item.doneKey);
        this.deadLettered++;
        this.counters?.deadLettered(item.type, 'expired');
        dead.push({ offset: item.offset, key: item.doneKey, reason: EXPIRED, attempts: 0, replayed: false });
        this.pending.recycle(item);
        return ScanStep.Take;
      }
      if (this.spec.ordered) {
        const holder = this.heldKeys.get(item.key);
        if (holder !== undefined && holder !== item.offset) return ScanStep.Skip;
      }
      const consumer = this.consumers.pick();
      if (!consumer) return ScanStep.Stop;
      this.outstanding++;
      if (this.spec.ordered) this.heldKeys.set(item.key, item.offset);
      this.deliver(item, consumer, nowMs, out);
      return ScanStep.Take;
    });
    return dead;
  }

  /**
   * Settle acks; returns the offsets that became done (unknown or already-done offsets are ignored)
   * and, among them, those that had been replayed from the dead letters.
   */
  ack(offsets: readonly number[]): { acked: number[]; keys: number[]; replayedDone: number[] } {
    const acked: number[] = [];
    const keys: number[] = [];
    const replayedDone: number[] = [];
    for (const offset of offsets) {
      const item = this.take(offset);
      if (!item) continue;
      this.counters?.acked(item.type);
      acked.push(offset);
      keys.push(item.doneKey);
      if (item.replayed) replayedDone.push(offset);
      this.pending.recycle(item);
    }
    return { acked, keys, replayedDone };
  }

  /** The consumer gives up on these deliveries: they are dead-lettered with `reason`, never redelivered. */
  discard(offsets: readonly number[], reason: string): DeadLetter[] {
    const dead: DeadLetter[] = [];
    for (const offset of offsets) {
      const item = this.take(offset);
      if (!item) continue;
      this.deadLettered++;
      this.counters?.deadLettered(item.type, 'discarded');
      dead.push({ offset, key: item.doneKey, reason: `discarded: ${reason}`, attempts: item.attempt, replayed: item.replayed });
      this.pending.recycle(item);
    }
    return dead;
  }

  /**
   * Put a dead letter back (a replay): delivered again before new events, attempts counted afresh.
   * Returns false when it is already pending. `type` defaults to the key, as in `offer`.
   */
  replay(offset: number, key: string, body: Uint8Array, bodyStart: number, bodyEnd: number, type = key): boolean {
    if (this.pending.has(offset)) return false;
    // A replay is an operator's decision: it is delivered even if the event's ttl has passed.
    const item = this.pending.record(offset, MAIN_RANK, -1, offset, key, type, body, bodyStart, bodyEnd, null, 'waiting', true, 0);
    this.pending.add(item);
    this.outstanding++;
    this.done.delete(offset);
    this.queueRedelivery(item);
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
      this.counters?.nacked(item.type);
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

  /**
   * The consumer defers these deliveries: they leave the consumer (its credit comes back) and wait
   * in 'deferring' until the shard has durably scheduled their return, then `deferred` finishes
   * them (or `deferFailed` redelivers them). Returns the offsets that were in flight.
   */
  defer(offsets: readonly number[]): number[] {
    const deferring: number[] = [];
    for (const offset of offsets) {
      const item = this.pending.get(offset);
      if (!item || item.state !== 'inflight') continue;
      this.release(item);
      item.state = 'deferring';
      deferring.push(offset);
    }
    return deferring;
  }

  /** Their return is scheduled: done here (a copy comes back when due). Returns those finished. */
  deferred(offsets: readonly number[]): { finished: number[]; keys: number[] } {
    const finished: number[] = [];
    const keys: number[] = [];
    for (const offset of offsets) {
      const item = this.pending.get(offset);
      if (!item || item.state !== 'deferring') continue;
      this.finish(item);
      this.counters?.deferred(item.type);
      finished.push(offset);
      keys.push(item.doneKey);
      this.pending.recycle(item);
    }
    return { finished, keys };
  }

  /** Scheduling their return failed: deliver them again instead. */
  deferFailed(offsets: readonly number[]): void {
    for (const offset of offsets) {
      const item = this.pending.get(offset);
      if (item && item.state === 'deferring') this.toWaiting(item);
    }
  }

  /** Move deliveries past their ack deadline, and delayed nacks now due, to redelivery. */
  expire(nowMs: number): void {
    for (const item of this.pending.values()) {
      if ((item.state === 'inflight' || item.state === 'delayed') && item.dueAt <= nowMs) this.toWaiting(item);
    }
  }

  /** The durable view of this subscription's position. */
  cursor(): { commit: number; done: OffsetRangeSet; lanes: Record<string, number> } {
    const commit = this.commitOffset;
    this.done.dropBelow(commit);
    const lanes: Record<string, number> = {};
    for (let priority = 0; priority < RANKS; priority++) {
      const laneCommit = this.laneCommit(priority);
      if (laneCommit === undefined) continue;
      lanes[priority] = laneCommit;
      this.done.dropBetween(laneKey(priority, 0), laneKey(priority, laneCommit));
    }
    return { commit, done: this.done, lanes };
  }

  private deliver(item: PendingEvent, consumer: ConsumerSlot, nowMs: number, out: DeliveryPacker): void {
    item.state = 'inflight';
    item.attempt++;
    item.consumer = consumer.id;
    item.dueAt = nowMs + this.spec.ackTimeoutMs;
    consumer.inflight++;
    this.counters?.delivered(item.type, item.attempt);
    out.push(this.spec.key, consumer.id, item.offset, item.attempt, item.body, item.bodyStart, item.bodyEnd, item.type, item.sender);
  }

  private release(item: PendingEvent): void {
    if (item.state !== 'inflight' || item.consumer === null) return;
    this.consumers.release(item.consumer);
    item.consumer = null;
  }

  private toWaiting(item: PendingEvent): void {
    this.release(item);
    item.state = 'waiting';
    this.queueRedelivery(item);
  }

  /** Keep redeliveries in (rank, offset) order; the queue is bounded by the window. */
  private queueRedelivery(item: PendingEvent): void {
    let i = this.redeliver.length;
    while (i > 0 && before(item, this.redeliver[i - 1]!)) i--;
    this.redeliver.splice(i, 0, item);
  }

  /** The event is done: acked or dead-lettered. */
  private finish(item: PendingEvent): void {
    this.release(item);
    this.pending.delete(item.offset);
    this.outstanding--;
    this.done.add(item.doneKey);
    if (this.spec.ordered && this.heldKeys.get(item.key) === item.offset) {
      this.heldKeys.delete(item.key);
      // Events passed over while this key was held are read again (pending and done ones are skipped).
      if (this.rewindOffset !== null) {
        this.readOffset = Math.min(this.readOffset, this.rewindOffset);
        this.rewindOffset = null;
      }
    }
  }
}

