import path from 'node:path';
import { Log } from '../../../native-free-storage/index.js';
import { DeliveryPacker, META_FIELDS, type PackedDeliveries } from '../delivery-batch.js';
import { EngineError } from '../errors.js';
import { decodeEventBody, readEventType } from '../event-codec.js';
import type { DeadLetterView, EncodedPublishBatch, PublishResult, Settlement, ShardConfig, ShardStats } from '../shard-messages.js';
import { sameSubscription, type StartPosition, type SubscriptionSpec } from '../subscription-spec.js';
import { ShardPublisher } from './shard-publisher.js';
import { SignatureChecks, type SignatureVerdicts } from './signature-checks.js';
import { appendedOf, type AppendedEvents } from './appended-events.js';
import { Scheduler, type FiredCopies } from './scheduler.js';
import { eventBodyOf, RecordKind } from './record-kind.js';
import { PriorityLanes } from './priority-lanes.js';
import { indexLanes } from './lane-indexing.js';
import { lanePositions, resolvePosition } from './start-positions.js';
import { OffsetRangeSet } from './offset-range-set.js';
import { SubscriptionState } from './subscription-state.js';
import { TrailLog, type TrailEntry } from './trail-log.js';
import { ShardDeadLetters } from './shard-dead-letters.js';
import { TailCache } from './tail-cache.js';
import { EventLookup } from './event-lookup.js';
import { SubscriptionFeeder } from './subscription-feeder.js';
import { BodySlab } from './body-slab.js';
import { SubscriptionStore, type DoneEntry, type StoredSubscription } from './subscription-store.js';
import { directoryBytes, ShardMetrics, type SerializedShardMetrics } from './shard-metrics.js';
import { ReplayProgress } from './replay-progress.js';
import { ShardCompaction } from './shard-compaction.js';
import type { FsyncLatency } from './fsync-latency.js';
import { openShardFiles, type ShardFiles } from './shard-files.js';
import { offsetScanProgress, WorkHandle, type WorkSink } from './work-reporter.js';
import type { WorkProgress } from '../../observability/work-progress.js';

/** Receives a pump's deliveries, packed, with the buffers to transfer. */
export type DeliveryEmitter = (packed: PackedDeliveries, transfer: ArrayBuffer[]) => void;

const TICK_MS = 50;
/** How long a measured disk usage is reported before the directory is walked again. */
const DISK_USAGE_TTL_MS = 2000;
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
  /** `<dataDir>/shards/<id>`: everything the shard stores. */
  private readonly dir: string;
  private readonly log: Log;
  private readonly store: SubscriptionStore;
  private readonly deadLetters: ShardDeadLetters;
  private readonly trail: TrailLog;
  private readonly scheduler: Scheduler;
  private readonly lanes: PriorityLanes;
  private readonly publisher: ShardPublisher;
  private readonly signatures: SignatureChecks;
  private readonly subscriptions = new Map<string, SubscriptionState>();
  private readonly startOffsets = new Map<string, number>();
  private readonly emit: DeliveryEmitter;
  private readonly packer = new DeliveryPacker();
  private readonly tail = new TailCache(TAIL_CACHE_EVENTS, TAIL_CACHE_BYTES);
  private readonly slab = new BodySlab();
  private readonly lookup: EventLookup;
  private readonly feeder: SubscriptionFeeder;
  private readonly onError: (error: unknown) => void;
  private readonly metrics = new ShardMetrics();
  private readonly replays: ReplayProgress;
  /** Chooses segments to compact and installs their rewrites (the rewrite runs in the compaction worker). */
  readonly compaction: ShardCompaction;
  private readonly fsyncLatency: FsyncLatency;
  /** The final report of this shard's opening (also sent on the port, which may arrive later). */
  recoveryProgress: WorkProgress | null = null;
  private pumpScheduled = false;
  private cursorsDirty = false;
  private snapshotRunning: Promise<void> | null = null;
  private lastSnapshotMs = Date.now();
  private lastScheduleCheckpointMs = Date.now();
  /** The last walk of the shard's directory (shared by stats calls within its time to live). */
  private diskUsage: { at: number; bytes: Promise<number> } | null = null;
  private readonly ticker: NodeJS.Timeout;
  private closed = false;

  private constructor(
    id: number,
    files: ShardFiles,
    config: ShardConfig,
    emit: DeliveryEmitter,
    onError: (error: unknown) => void,
    work: WorkSink,
  ) {
    const { log, store, deadLetters, trail, scheduler, lanes } = files;
    this.id = id;
    this.replays = new ReplayProgress(id, work);
    this.compaction = new ShardCompaction(log, lanes, this.subscriptions, deadLetters, scheduler, this.tail);
    this.fsyncLatency = files.fsyncLatency;
    this.dir = path.join(config.dataDir, 'shards', String(id));
    this.log = log;
    this.store = store;
    this.trail = trail;
    this.scheduler = scheduler;
    this.lanes = lanes;
    this.publisher = new ShardPublisher(id, log, this.tail, config, (appended) => this.stored(appended));
    this.signatures = new SignatureChecks(config.signatureChecksInFlight);
    this.lookup = new EventLookup(log, this.publisher);
    this.deadLetters = new ShardDeadLetters(id, deadLetters, this.lookup, trail, this.slab);
    this.feeder = new SubscriptionFeeder(log, lanes, this.tail, this.slab, onError);
    this.emit = emit;
    this.onError = onError;
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  /** Open the shard's log and state under `<dataDir>/shards/<id>`, recovering both. */
  static async open(id: number, config: ShardConfig, emit: DeliveryEmitter, onError: (error: unknown) => void, work: WorkSink = () => {}): Promise<Shard> {
    // Reported as long work: a large log after a crash takes a while, and /health shows where it is.
    const recovery = new WorkHandle(work, `recovery:shard-${id}`, 'recovery', id, 'opening the events log', null, 'offsets');
    try {
      let shard: Shard | null = null;
      const files = await openShardFiles(id, config, (fired) => shard?.fired(fired), onError, recovery);
      shard = new Shard(id, files, config, emit, onError, work);
      for (const { spec, startOffset, paused } of files.subscriptions) {
        const cursor = files.cursors.get(spec.key) ?? { commit: startOffset, done: new OffsetRangeSet(), lanes: {} };
        shard.startOffsets.set(spec.key, startOffset);
        const state = new SubscriptionState(spec, Math.max(cursor.commit, files.log.startOffset), cursor.done, startOffset, cursor.lanes, shard.metrics);
        state.paused = paused ?? false;
        shard.subscriptions.set(spec.key, state);
      }
      shard.publisher.rebuildDedup(Date.now(), offsetScanProgress(recovery, 'loading recent event ids for deduplication'));
      shard.deadLetters.restoreOwed(shard.subscriptions);
      recovery.finish();
      shard.recoveryProgress = recovery.latest;
      return shard;
    } catch (error) {
      recovery.finish(error);
      throw error;
    }
  }

  /** Events just stored by a publish: index what is scheduled, deliver the rest. */
  private stored(appended: AppendedEvents): void {
    this.scheduler.observe(appended);
    indexLanes(this.lanes, appended);
    this.schedulePump();
  }

  /** Copies of scheduled or deferred deliveries came due and were appended. */
  private fired({ base, records, rootOffsets }: FiredCopies): void {
    const now = Date.now();
    records.forEach((record, i) => {
      const eventBody = eventBodyOf(record.attributes, record.body)!;
      const type = readEventType(eventBody.body);
      this.tail.add(base + i, type, null, record.body, 0, record.body.length, RecordKind.FIRED, record.priority, true, 0);
      this.trail.add('due', rootOffsets[i]!, now, eventBody.subscription || undefined, undefined, undefined, undefined, undefined, base + i);
    });
    indexLanes(this.lanes, appendedOf(base, records));
    this.schedulePump();
  }

  /**
   * What the shard holds now, with its metrics: taken at the task's turn; only the disk usage is
   * read afterwards, from the directory, while later tasks go on. The directory is walked at most
   * once per DISK_USAGE_TTL_MS: the dashboard, /health and scrapes all ask every few seconds.
   */
  async stats(): Promise<ShardStats> {
    const stats: ShardStats = {
      shard: this.id,
      nextOffset: this.log.nextOffset,
      subscriptions: this.subscriptions.size,
      scheduledPending: this.scheduler.pending,
      scheduledInMemory: this.scheduler.inMemory,
      metrics: this.metricsNow(),
      fsyncLatency: this.fsyncLatency.drain(),
    };
    const now = Date.now();
    if (this.diskUsage === null || now - this.diskUsage.at >= DISK_USAGE_TTL_MS) {
      const bytes = directoryBytes(this.dir).catch((error: unknown) => {
        this.diskUsage = null; // a failed walk is not remembered
        throw error;
      });
      this.diskUsage = { at: now, bytes };
    }
    stats.metrics.diskBytes = await this.diskUsage.bytes;
    return stats;
  }

  private metricsNow(): SerializedShardMetrics {
    const end = this.log.nextOffset;
    const fsync = this.log.fsyncTimings;
    return {
      eventTypes: this.metrics.eventTypes(),
      subscriptions: [...this.subscriptions.values()].map((state) => ({
        subscription: state.spec.key,
        lagOffsets: Math.max(0, end - state.commitOffset),
        inFlight: state.inFlight,
        paused: state.paused,
        deadLettered: state.deadLettered,
      })),
      diskBytes: 0,
      fsync: { count: fsync.count, totalSeconds: fsync.totalSeconds, bounds: [...fsync.bounds], buckets: fsync.buckets },
    };
  }

  /** Keep events this long (null: keep), applied now and whenever a segment rolls. */
  setRetention(retention: { retentionMs: number | null; retentionBytes: number | null }): { segmentsDeleted: number; bytesDeleted: number } {
    this.assertOpen();
    return this.log.setRetention(retention);
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
   * The verdicts on a batch's signatures, or null when it has none to check. Run before `publish`,
   * while the shard's next tasks wait: the verifications run on other threads meanwhile.
   */
  checkSignatures(batch: EncodedPublishBatch): Promise<SignatureVerdicts> | null {
    return this.signatures.needed(batch) ? this.signatures.check(batch) : null;
  }

  /**
   * Store and confirm a batch encoded by the engine, its signatures checked (`checkSignatures`).
   * Each event gets its own outcome; refused ones store nothing. Settles once the stored ones are
   * durable.
   */
  async publish(batch: EncodedPublishBatch, verdicts: SignatureVerdicts | null): Promise<PublishResult> {
    this.assertOpen();
    if (verdicts === null && this.signatures.needed(batch)) throw new EngineError('INTERNAL', 'a batch with signatures to check was published unchecked');
    const result = await this.publisher.publish(batch, verdicts);
    // Stored: an offset and not a duplicate's (refused events have none).
    const published = new Uint32Array(batch.types.length);
    for (let i = 0; i < batch.typeOf.length; i++) {
      if (!Number.isNaN(result.offsets[i]!) && result.duplicate[i] === 0) published[batch.typeOf[i]!]!++;
    }
    batch.types.forEach((type, t) => published[t]! > 0 && this.metrics.published(type, published[t]!));
    return result;
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
    const start = resolvePosition(this.log, spec.start);
    this.subscriptions.set(spec.key, new SubscriptionState(spec, start, new OffsetRangeSet(), start, lanePositions(this.lanes, start), this.metrics));
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
    const offset = resolvePosition(this.log, position);
    state.seek(offset, lanePositions(this.lanes, offset));
    this.replays.seeked(subscription, offset, this.log.durableOffset);
    await this.snapshotRunning;
    await this.snapshot();
    this.schedulePump();
    return { offset };
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
      const { acked, keys, replayedDone } = state.ack(offsets);
      if (keys.length > 0) done.push({ s: subscription, o: keys });
      for (const offset of acked) this.trail.add('acked', offset, now, subscription);
      this.deadLetters.finished(subscription, replayedDone, now);
    }
    for (const { subscription, offsets, delayMs } of settlement.nacks) {
      const nacked = this.subscriptions.get(subscription)?.nack(offsets, delayMs, now) ?? [];
      for (const offset of nacked) this.trail.add('nacked', offset, now, subscription, undefined, undefined, undefined, delayMs);
    }
    for (const { subscription, offsets, reason } of settlement.discards) {
      const state = this.subscriptions.get(subscription);
      if (!state) continue;
      const letters = state.discard(offsets, reason);
      if (letters.length > 0) done.push(this.deadLetters.record(subscription, letters, now));
    }
    for (const { subscription, offsets, dueAt, delayMs } of settlement.defers) {
      const state = this.subscriptions.get(subscription);
      if (state) this.defer(state, offsets, dueAt, delayMs);
    }
    this.journal(done);
    this.schedulePump();
  }

  /** Deferred deliveries count as done only once their return is durably scheduled. */
  private defer(state: SubscriptionState, offsets: number[], dueAt: number, delayMs: number): void {
    const deferring = state.defer(offsets);
    if (deferring.length === 0) return;
    const subscription = state.spec.key;
    this.scheduler
      .defer(deferring.map((eventOffset) => ({ subscription, eventOffset, dueAt })))
      .then(() => {
        const { finished, keys } = state.deferred(deferring);
        const at = Date.now();
        for (const offset of finished) this.trail.add('deferred', offset, at, subscription, undefined, undefined, undefined, delayMs);
        this.journal([{ s: subscription, o: keys }]);
        this.schedulePump();
      })
      .catch((error) => {
        state.deferFailed(deferring);
        this.onError(error);
        this.schedulePump();
      });
  }

  /** A subscription's dead letters here, with each event's id and type (read from the log). */
  listDeadLetters(subscription: string, limit: number, afterOffset: number): DeadLetterView[] {
    this.subscriptionNamed(subscription);
    return this.deadLetters.list(subscription, limit, afterOffset);
  }

  /**
   * Queue dead letters (the given offsets, or all) to go back into the subscription; returns how
   * many were queued. Until they are put back they stay listed.
   */
  replayDeadLetters(subscription: string, offsets: number[] | 'all'): { replayed: number } {
    this.subscriptionNamed(subscription);
    const replayed = this.deadLetters.queueReplay(subscription, offsets);
    this.replays.deadLettersQueued(subscription, replayed);
    this.schedulePump();
    return { replayed };
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
      this.deadLetters.drain(state, now);
      if (this.feeder.fill(state)) more = true;
      const letters = state.dispatch(now, out);
      if (letters.length > 0) dead.push(this.deadLetters.record(state.spec.key, letters, now));
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
      const m = i * META_FIELDS;
      this.trail.add('delivered', meta[m]!, nowMs, packed.names[meta[m + 2]!]!, packed.names[meta[m + 3]!]!, meta[m + 1]!);
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

  /** Ack deadlines, delayed nacks, dedup expiry, periodic cursor snapshots and schedule checkpoints. */
  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const state of this.subscriptions.values()) state.expire(now);
    this.publisher.expire(now);
    this.replays.report(this.subscriptions, (subscription) => this.deadLetters.queuedCount(subscription));
    this.schedulePump();
    if (this.cursorsDirty && !this.snapshotRunning && now - this.lastSnapshotMs >= SNAPSHOT_INTERVAL_MS) void this.snapshot();
    if (now - this.lastScheduleCheckpointMs >= SNAPSHOT_INTERVAL_MS) {
      this.lastScheduleCheckpointMs = now;
      this.scheduler.checkpoint().catch((error) => this.onError(error));
      this.lanes.checkpoint().catch((error) => this.onError(error));
    }
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
    this.replays.close();
    await this.snapshotRunning;
    await this.store.snapshot(() => new Map([...this.subscriptions].map(([key, state]) => [key, state.cursor()])));
    await this.scheduler.close();
    await this.lanes.checkpoint();
    await this.lanes.close();
    await this.log.close();
    await this.store.close();
    await this.deadLetters.close();
    await this.trail.close();
  }
}
