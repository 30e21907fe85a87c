import path from 'node:path';
import { Log } from '../../../native-free-storage/index.js';
import { DeliveryPacker, type PackedDeliveries } from '../delivery-batch.js';
import { EngineError } from '../errors.js';
import { decodeEventBody, readEventRouting } from '../event-codec.js';
import type { DeadLetterView, EncodedPublishBatch, PublishResult, Settlement, ShardConfig } from '../shard-messages.js';
import { sameSubscription, type StartPosition, type SubscriptionSpec } from '../subscription-spec.js';
import { ShardPublisher } from './shard-publisher.js';
import { OffsetRangeSet } from './offset-range-set.js';
import { EXPIRED, SubscriptionState, type DeadLetter } from './subscription-state.js';
import { TrailLog, type TrailEntry } from './trail-log.js';
import { DeadLetterStore } from './dead-letter-store.js';
import { TailCache } from './tail-cache.js';
import { EventLookup } from './event-lookup.js';
import { SubscriptionFeeder } from './subscription-feeder.js';
import { BodySlab } from './body-slab.js';
import { SubscriptionStore, type DoneEntry, type StoredSubscription } from './subscription-store.js';

/** Receives a pump's deliveries, packed, with the buffers to transfer. */
export type DeliveryEmitter = (packed: PackedDeliveries, transfer: ArrayBuffer[]) => void;

const TICK_MS = 50;
const SNAPSHOT_INTERVAL_MS = 2000;
/** Recent events kept in memory for subscriptions at the head. */
const TAIL_CACHE_EVENTS = 16_384;
const TAIL_CACHE_BYTES = 16 * 1024 * 1024;

/**
 * One shard: the event types hashed to it, their log, and the delivery state of every subscription
 * in it. A shard lives in one worker thread at a time and is driven by that worker's task loop; all
 * of its methods run on that thread.
 */
export class Shard {
  readonly id: number;
  private readonly log: Log;
  private readonly store: SubscriptionStore;
  private readonly deadLetters: DeadLetterStore;
  private readonly trail: TrailLog;
  /** Dead letters waiting to be put back, per subscription (offsets only; bounded by the list). */
  private readonly replayQueues = new Map<string, number[]>();
  private readonly publisher: ShardPublisher;
  private readonly subscriptions = new Map<string, SubscriptionState>();
  private readonly startOffsets = new Map<string, number>();
  private readonly emit: DeliveryEmitter;
  private readonly packer = new DeliveryPacker();
  private readonly tail = new TailCache(TAIL_CACHE_EVENTS, TAIL_CACHE_BYTES);
  private readonly slab = new BodySlab();
  private readonly lookup: EventLookup;
  private readonly feeder: SubscriptionFeeder;
  private readonly onError: (error: unknown) => void;
  private pumpScheduled = false;
  private cursorsDirty = false;
  private snapshotRunning: Promise<void> | null = null;
  private lastSnapshotMs = Date.now();
  private readonly ticker: NodeJS.Timeout;
  private closed = false;

  private constructor(
    id: number,
    log: Log,
    store: SubscriptionStore,
    deadLetters: DeadLetterStore,
    trail: TrailLog,
    config: ShardConfig,
    emit: DeliveryEmitter,
    onError: (error: unknown) => void,
  ) {
    this.id = id;
    this.log = log;
    this.store = store;
    this.deadLetters = deadLetters;
    this.trail = trail;
    this.publisher = new ShardPublisher(id, log, this.tail, config, () => this.schedulePump());
    this.lookup = new EventLookup(log, this.publisher);
    this.feeder = new SubscriptionFeeder(log, this.tail, this.slab, onError);
    this.emit = emit;
    this.onError = onError;
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  /** Open the shard's log and state under `<dataDir>/shards/<id>`, recovering both. */
  static async open(id: number, config: ShardConfig, emit: DeliveryEmitter, onError: (error: unknown) => void): Promise<Shard> {
    const dir = path.join(config.dataDir, 'shards', String(id));
    const log = await Log.open(path.join(dir, 'events'), {
      fsync: config.fsync,
      fsyncIntervalMs: config.fsyncIntervalMs,
      segmentBytes: config.segmentBytes,
      maxRecordBytes: config.maxPayloadBytes + 64 * 1024,
    });
    const { store, subscriptions, cursors } = await SubscriptionStore.open(path.join(dir, 'state'), config.fsync, config.fsyncIntervalMs);
    const deadLetters = await DeadLetterStore.open(path.join(dir, 'state'), config.fsync, config.fsyncIntervalMs, onError);
    const trail = await TrailLog.open(path.join(dir, 'state'), config.trail, config.trailRetentionBytes, config.fsync, config.fsyncIntervalMs, onError);
    const shard = new Shard(id, log, store, deadLetters, trail, config, emit, onError);
    for (const { spec, startOffset, paused } of subscriptions) {
      const cursor = cursors.get(spec.key) ?? { commit: startOffset, done: new OffsetRangeSet() };
      shard.startOffsets.set(spec.key, startOffset);
      const state = new SubscriptionState(spec, Math.max(cursor.commit, log.startOffset), cursor.done);
      state.paused = paused ?? false;
      shard.subscriptions.set(spec.key, state);
    }
    shard.publisher.rebuildDedup(Date.now());
    // Replayed dead letters not yet done when the shard stopped go back into their subscriptions.
    for (const [subscription, offsets] of deadLetters.owed()) {
      const state = shard.subscriptions.get(subscription);
      if (state) for (const offset of offsets) shard.putBack(state, offset);
    }
    return shard;
  }

  get recovery() {
    return this.log.recovery;
  }

  get nextOffset(): number {
    return this.log.nextOffset;
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /**
   * Verify, store and confirm a batch encoded by the engine. Each event gets its own outcome;
   * refused ones store nothing. Settles once the stored ones are durable.
   */
  publish(batch: EncodedPublishBatch): Promise<PublishResult> {
    this.assertOpen();
    return this.publisher.publish(batch);
  }

  /** Create the subscription in this shard if new; reopening keeps its position. */
  subscribe(spec: SubscriptionSpec): { created: boolean } {
    this.assertOpen();
    const existing = this.subscriptions.get(spec.key);
    if (existing) {
      if (!sameSubscription(existing.spec, spec)) {
        throw new EngineError('INVALID_ARGUMENT', `subscription ${spec.key} exists with pattern ${existing.spec.pattern} (ordered: ${existing.spec.ordered})`, {
          field: 'pattern',
        });
      }
      Object.assign(existing.spec, { maxInFlight: spec.maxInFlight, ackTimeoutMs: spec.ackTimeoutMs, maxDeliveries: spec.maxDeliveries });
      this.saveSubscriptions();
      return { created: false };
    }
    const start = this.resolveStart(spec);
    this.subscriptions.set(spec.key, new SubscriptionState(spec, start, new OffsetRangeSet()));
    this.startOffsets.set(spec.key, start);
    this.saveSubscriptions();
    return { created: true };
  }

  /** Pause or resume delivery (durable: a restart keeps a subscription paused). */
  setPaused(subscription: string, paused: boolean): void {
    this.subscriptionNamed(subscription).paused = paused;
    this.saveSubscriptions();
    this.schedulePump();
  }

  /** Replay from (or skip to) a position; written through at once so a restart keeps it. */
  async seek(subscription: string, position: StartPosition): Promise<{ offset: number }> {
    const state = this.subscriptionNamed(subscription);
    const offset = this.resolvePosition(position);
    state.seek(offset);
    await this.snapshotRunning;
    await this.snapshot();
    this.schedulePump();
    return { offset };
  }

  private resolveStart(spec: SubscriptionSpec): number {
    return this.resolvePosition(spec.start);
  }

  private resolvePosition(position: StartPosition): number {
    const log = this.log;
    switch (position.from) {
      case 'new':
        return log.nextOffset;
      case 'all':
        return log.startOffset;
      case 'time':
        return log.offsetForTime(position.timestamp) ?? log.nextOffset;
      case 'offset':
        return Math.min(Math.max(position.offset, log.startOffset), log.nextOffset);
    }
  }

  private saveSubscriptions(): void {
    const stored: StoredSubscription[] = [...this.subscriptions.values()].map((s) => ({
      spec: s.spec,
      startOffset: this.startOffsets.get(s.spec.key)!,
      paused: s.paused,
    }));
    this.store.saveSubscriptions(stored);
  }

  attach(subscription: string, consumer: string, credits: number): void {
    this.subscriptionNamed(subscription).attach(consumer, credits);
    this.schedulePump();
  }

  detach(subscription: string, consumer: string): void {
    this.subscriptions.get(subscription)?.detach(consumer);
    this.schedulePump();
  }

  /**
   * Apply acks, nacks and discards. Acks and discards are journaled so a crash does not redeliver
   * them; discards become dead letters with the consumer's reason.
   */
  settle(settlement: Settlement): void {
    const now = Date.now();
    const done: DoneEntry[] = [];
    for (const { subscription, offsets } of settlement.acks) {
      const state = this.subscriptions.get(subscription);
      if (!state) continue;
      const { acked, replayedDone } = state.ack(offsets);
      if (acked.length > 0) done.push({ s: subscription, o: acked });
      for (const offset of acked) this.trail.add('acked', offset, now, subscription);
      this.deadLetters.markFinished(subscription, replayedDone, now);
    }
    for (const { subscription, offsets, delayMs } of settlement.nacks) {
      const nacked = this.subscriptions.get(subscription)?.nack(offsets, delayMs, now) ?? [];
      for (const offset of nacked) this.trail.add('nacked', offset, now, subscription, undefined, undefined, undefined, delayMs);
    }
    for (const { subscription, offsets, reason } of settlement.discards) {
      const state = this.subscriptions.get(subscription);
      if (!state) continue;
      const letters = state.discard(offsets, reason);
      if (letters.length > 0) done.push(this.deadLettered(subscription, letters, now));
    }
    this.journal(done);
    this.schedulePump();
  }

  /** Record dead letters; returns the journal entry that marks them done for the cursor. */
  private deadLettered(subscription: string, letters: DeadLetter[], nowMs: number): DoneEntry {
    this.deadLetters.record(subscription, letters, nowMs);
    for (const { offset, reason, attempts } of letters) {
      const kind = reason === EXPIRED ? 'expired' : reason.startsWith('discarded: ') ? 'discarded' : 'dead-lettered';
      this.trail.add(kind, offset, nowMs, subscription, undefined, attempts, reason);
    }
    return { s: subscription, o: letters.map((l) => l.offset) };
  }

  /** A subscription's dead letters here, with each event's id and type (read from the log). */
  listDeadLetters(subscription: string, limit: number, afterOffset: number): DeadLetterView[] {
    this.subscriptionNamed(subscription);
    return this.deadLetters.list(subscription, limit, afterOffset).flatMap((letter) => {
      const record = this.lookup.readOne(letter.offset);
      if (!record) return [];
      const event = decodeEventBody(record.body);
      return [{ ...letter, shard: this.id, id: event.id, type: event.type, publishedAt: event.publishedAt }];
    });
  }

  /**
   * Queue dead letters (the given offsets, or all) to go back into the subscription; returns how
   * many were queued. They are put back as the subscription's window has room, so replaying many
   * does not read them all into memory at once; until then they stay listed.
   */
  replayDeadLetters(subscription: string, offsets: number[] | 'all'): { replayed: number } {
    this.subscriptionNamed(subscription);
    const queue = this.replayQueues.get(subscription) ?? [];
    const queued = new Set(queue);
    const wanted = offsets === 'all' ? this.deadLetters.list(subscription, Number.MAX_SAFE_INTEGER).map((l) => l.offset) : offsets;
    const added = wanted.filter((offset) => this.deadLetters.has(subscription, offset) && !queued.has(offset));
    if (added.length > 0) this.replayQueues.set(subscription, [...queue, ...added]);
    this.schedulePump();
    return { replayed: added.length };
  }

  /** Move queued replays into their subscriptions while their windows have room. */
  private drainReplays(state: SubscriptionState, nowMs: number): void {
    const queue = this.replayQueues.get(state.spec.key);
    if (!queue) return;
    const putBack: number[] = [];
    for (const offset of queue.splice(0, state.outstandingRoom)) {
      if (this.deadLetters.has(state.spec.key, offset) && this.putBack(state, offset)) {
        putBack.push(offset);
        this.trail.add('replayed', offset, nowMs, state.spec.key);
      }
    }
    if (queue.length === 0) this.replayQueues.delete(state.spec.key);
    this.deadLetters.markReplayed(state.spec.key, putBack, nowMs);
  }

  /** Read one event back into a subscription as a replay. */
  private putBack(state: SubscriptionState, offset: number): boolean {
    const record = this.lookup.readOne(offset);
    if (!record) return false;
    return state.replay(offset, readEventRouting(record.body).orderingKey, this.slab.copy(record.body));
  }

  private journal(done: DoneEntry[]): void {
    if (done.length === 0) return;
    this.cursorsDirty = true;
    this.store.recordDone(done).catch((error) => this.onError(error));
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Refill each live subscription's read-ahead from the log and hand out what can go. */
  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    const out = this.packer;
    const dead: DoneEntry[] = [];
    let more = false;
    for (const state of this.subscriptions.values()) {
      if (!state.isActive) continue;
      this.drainReplays(state, now);
      if (this.feeder.fill(state)) more = true;
      const letters = state.dispatch(now, out);
      if (letters.length > 0) dead.push(this.deadLettered(state.spec.key, letters, now));
    }
    this.journal(dead);
    if (out.count > 0) {
      const { packed, transfer } = out.take();
      this.recordDeliveries(packed, now);
      this.emit(packed, transfer);
    }
    if (more) this.schedulePump();
  }

  private recordDeliveries(packed: PackedDeliveries, nowMs: number): void {
    const meta = packed.meta;
    for (let i = 0; i < packed.count; i++) {
      const m = i * 4;
      this.trail.add('delivered', meta[m]!, nowMs, packed.subscriptions[meta[m + 2]!]!, packed.consumers[meta[m + 3]!]!, meta[m + 1]!);
    }
  }

  /**
   * An event with its trail, found by type and id: from the dedup window, by the time inside an
   * engine-assigned id, or else by scanning the type's records. Null when it is not retained.
   */
  async eventTrail(type: string, id: string): Promise<{ offset: number; body: Uint8Array; trail: TrailEntry[] } | null> {
    const found = this.lookup.find(type, id);
    if (!found) return null;
    const event = decodeEventBody(found.body);
    const trail = await this.trail.entriesFor(found.offset, event.publishedAt);
    return { offset: found.offset, body: new Uint8Array(found.body), trail };
  }

  /** Ack deadlines, delayed nacks, dedup expiry, periodic cursor snapshots. */
  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const state of this.subscriptions.values()) state.expire(now);
    this.publisher.expire(now);
    this.schedulePump();
    if (this.cursorsDirty && !this.snapshotRunning && now - this.lastSnapshotMs >= SNAPSHOT_INTERVAL_MS) void this.snapshot();
  }

  private snapshot(): Promise<void> {
    this.cursorsDirty = false;
    this.lastSnapshotMs = Date.now();
    this.snapshotRunning = this.store
      .snapshot(() => new Map([...this.subscriptions].map(([key, state]) => [key, state.cursor()])))
      .catch((error) => {
        this.cursorsDirty = true;
        this.onError(error);
      })
      .finally(() => {
        this.snapshotRunning = null;
      });
    return this.snapshotRunning;
  }

  private subscriptionNamed(key: string): SubscriptionState {
    const state = this.subscriptions.get(key);
    if (!state) throw new EngineError('NOT_FOUND', `subscription ${key} does not exist in shard ${this.id}`, { field: 'subscription' });
    return state;
  }

  private assertOpen(): void {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', `shard ${this.id} is closed`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    await this.snapshotRunning;
    await this.store.snapshot(() => new Map([...this.subscriptions].map(([key, state]) => [key, state.cursor()])));
    await this.log.close();
    await this.store.close();
    await this.deadLetters.close();
    await this.trail.close();
  }
}
