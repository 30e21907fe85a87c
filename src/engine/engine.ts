import fs from 'node:fs';
import { ClientActivity } from './client-activity.js';
import { LatencyRecorder, type LatencySnapshot } from '../observability/latency-recorder.js';
import { WorkBoard } from '../observability/work-progress.js';
import { loadCompactionSettings, saveCompactionSettings, validateCompactionSettings, type CompactionSettings } from './compaction/compaction-settings.js';
import { CompactionRunner, type CompactionReport } from './compaction/compaction-runner.js';
import { PendingAckTimes } from '../observability/pending-ack-times.js';
import { ClientRegistry, type ClientIdentity } from './client-registry.js';
import { Consumer, type ConsumerControl, type DeliveryHandler } from './consumer.js';
import type { Receipt } from './delivery.js';
import { DeliveryRouter } from './delivery-router.js';
import { loadOrCreateMetadata } from './engine-metadata.js';
import { resolveEngineOptions, type EngineOptions, type ResolvedEngineOptions } from './engine-options.js';
import { EngineError } from './errors.js';
import { validateEventType, type StoredEvent } from './event.js';
import { decodeEventBody, eventStreamTag } from './event-codec.js';
import { BatchBufferPool } from './batch-buffer-pool.js';
import { PublishBatcher } from './publish-batcher.js';
import { EventIntake } from './event-intake.js';
import { SettleBatcher } from './settle-batcher.js';
import { loadRetention, saveRetention, validateRetention, type EventRetention } from './event-retention.js';
import type { DeadLetterView, OpenResult, ShardConfig, ShardStats, TrailResult } from './shard-messages.js';
import type { TrailEntry } from './shard/trail-log.js';
import { ShardPool, type ShardTaskBody } from './shard-pool.js';
import { resolveSubscriptionSpec, type StartPosition, type SubscriptionOptions } from './subscription-spec.js';

/** An event with its audit trail (`engine.eventTrail`). */
export interface EventTrail {
  event: StoredEvent;
  shard: number;
  offset: number;
  trail: TrailEntry[];
}

/** Data directories with an engine open in this process (realpath). */
const openDataDirs = new Set<string>();

export interface ConsumerOptions {
  /** Unacked deliveries this consumer holds at most, per shard (default: the subscription's maxInFlight). */
  credits?: number;
}

/**
 * The engine's API, independent of any network protocol: publish, subscribe, ack. Events are
 * spread over shards by type; each shard lives in one worker thread, which stores its events,
 * verifies signatures and runs delivery. This facade batches work per shard, bounds what each
 * producer may have unconfirmed, and routes deliveries to live consumers.
 */
export class Engine {
  readonly options: ResolvedEngineOptions;
  readonly clients = new ClientRegistry();
  /** Latency histograms per stage (publish, delivery, ack), recorded on this thread. */
  readonly latency = new LatencyRecorder();
  /** Long work in the shards (recovery, replays, compaction), for the log and /health. */
  readonly work: WorkBoard;
  /** Compaction rounds: periodic, and on request. */
  readonly compaction: CompactionRunner;
  private compactionConfig: CompactionSettings;
  private readonly pool: ShardPool;
  /** Validates, encodes and batches publishes to the shards, within each client's window. */
  private readonly intake: EventIntake;
  private readonly settlers: SettleBatcher[] = [];
  private readonly consumers = new Map<string, Consumer>();
  /** Hands the shards' deliveries to their live consumers. */
  private readonly router: DeliveryRouter;
  /** Per-client publish and delivery counts and rates (for operators). */
  readonly activity = new ClientActivity();
  private readonly shardConfig: ShardConfig;
  private nextConsumerId = 1;
  private closed = false;
  private openResults: OpenResult[] = [];
  private dataDirKey = '';

  private constructor(options: ResolvedEngineOptions) {
    this.options = options;
    this.work = options.workBoard ?? new WorkBoard(options.logger);
    this.compactionConfig = loadCompactionSettings(options.dataDir, options.compaction);
    // Kept by reference: a shard reopened after its worker died opens with the current retention.
    this.shardConfig = {
      dataDir: options.dataDir,
      fsync: options.fsync,
      fsyncIntervalMs: options.fsyncIntervalMs,
      segmentBytes: options.segmentBytes,
      dedupWindowMs: options.dedupWindowMs,
      maxDedupEntries: options.maxDedupEntries,
      maxPayloadBytes: options.maxPayloadBytes,
      trail: options.trail,
      trailRetentionBytes: options.trailRetentionBytes,
      signatureChecksInFlight: signatureChecksInFlight(options.workers),
      ...loadRetention(options.dataDir, { retentionMs: options.retentionMs, retentionBytes: options.retentionBytes }),
    };
    this.pool = new ShardPool({
      workers: options.workers,
      shards: options.shards,
      config: this.shardConfig,
      onDeliveries: (message) => this.router.route(message),
      onWorkerLog: (shard, level, message) => this.log(level === 'error' ? 'error' : 'warn', message, { shard }),
      onWorkProgress: (progress) => this.work.update(progress),
      onShardOpening: (shard) => this.work.abandonShard(shard, 'the shard is opened again'),
      onShardReopened: (shard) => this.reattach(shard),
      onShardReopenFailed: (shard, error) => this.log('error', 'shard could not be reopened after its worker died', { shard, error }),
    });
    this.router = new DeliveryRouter(this.consumers, this.latency, this.activity, (message, fields) => this.log('error', message, fields));
    this.compaction = new CompactionRunner(this.pool, options.shards, () => this.compactionConfig, this.work, options.logger);
    const publishers: PublishBatcher[] = [];
    const batchBuffers = new BatchBufferPool();
    for (let shard = 0; shard < options.shards; shard++) {
      publishers.push(new PublishBatcher(this.pool, shard, options.maxPublishBatch, batchBuffers));
      this.settlers.push(new SettleBatcher(this.pool, shard, (error) => this.log('warn', 'settle failed; unacked events will be redelivered', { shard, error })));
    }
    this.intake = new EventIntake(options, this.clients, publishers, this.activity, this.latency, () => this.closed, options.shards);
  }

  /**
   * Open the engine on a data directory. One engine per directory: another one in this process is
   * refused here, one in another process by the logs' locks (LOG_LOCKED, as STORAGE_FAILED).
   */
  static async open(options: EngineOptions): Promise<Engine> {
    const resolved = resolveEngineOptions(options);
    const metadata = loadOrCreateMetadata(resolved.dataDir, resolved.shards);
    const dir = fs.realpathSync(resolved.dataDir);
    if (openDataDirs.has(dir)) throw new EngineError('INVALID_ARGUMENT', `an engine is already open on ${dir} in this process`, { field: 'dataDir' });
    openDataDirs.add(dir);
    const engine = new Engine({ ...resolved, shards: metadata.shards });
    engine.dataDirKey = dir;
    try {
      engine.openResults = await engine.pool.start();
      engine.compaction.schedule();
    } catch (error) {
      openDataDirs.delete(dir);
      await engine.pool.destroy();
      throw error instanceof EngineError ? error : new EngineError('STORAGE_FAILED', `the engine could not open ${dir}: ${String(error)}`, { cause: error });
    }
    return engine;
  }

  /** What opening each shard recovered. */
  get shardRecovery(): readonly OpenResult[] {
    return this.openResults;
  }

  get shardPool(): ShardPool {
    return this.pool;
  }

  registerClient(client: ClientIdentity): void {
    this.clients.register(client);
  }

  /** The shard an event type lives in (fixed for the life of the data directory). */
  shardOf(type: string): number {
    return eventStreamTag(type) % this.options.shards;
  }

  /**
   * Publish one event as `clientId`. Resolves with its receipt once durable; a repeated id within
   * the dedup window resolves with the first receipt and `duplicate: true`.
   */
  publish(clientId: string, input: unknown): Promise<Receipt> {
    return this.intake.publish(clientId, input);
  }

  /**
   * Publish several events as `clientId` with one promise: each entry is its receipt or the typed
   * error that refused it. The cheaper path for producers that batch (fewer objects per event).
   */
  publishMany(clientId: string, inputs: readonly unknown[]): Promise<Array<Receipt | EngineError>> {
    return this.intake.publishMany(clientId, inputs);
  }

  /**
   * Open (creating if new) the durable subscription `options.name` of `clientId` and attach a live
   * consumer to it. Deliveries go to `handler` in batches.
   */
  async subscribe(clientId: string, options: SubscriptionOptions, handler: DeliveryHandler, consumerOptions: ConsumerOptions = {}): Promise<Consumer> {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', 'the engine is closed');
    this.clients.get(clientId);
    const spec = resolveSubscriptionSpec(clientId, options);
    const credits = consumerOptions.credits ?? spec.maxInFlight;
    if (!Number.isInteger(credits) || credits < 1) throw new EngineError('INVALID_ARGUMENT', 'credits must be a positive integer', { field: 'credits' });
    const shards = [...Array(this.options.shards).keys()];
    await Promise.all(shards.map((shard) => this.pool.run(shard, { op: 'subscribe', spec })));
    const ackTimes = new PendingAckTimes(this.latency, this.options.shards, credits);
    const consumer = new Consumer(`${spec.key}#${this.nextConsumerId++}`, spec.key, clientId, credits, handler, this.control, ackTimes);
    this.consumers.set(consumer.id, consumer);
    await Promise.all(shards.map((shard) => this.attach(shard, consumer)));
    return consumer;
  }

  /**
   * Stop delivering a subscription's events (in every shard) until `resume`: its backlog keeps
   * growing on disk, unacked deliveries can still be acked. Survives restarts.
   */
  async pause(clientId: string, name: string): Promise<void> {
    await this.everyShard(clientId, name, (subscription) => ({ op: 'pause', subscription }));
  }

  /** Continue a paused subscription where it stopped. */
  async resume(clientId: string, name: string): Promise<void> {
    await this.everyShard(clientId, name, (subscription) => ({ op: 'resume', subscription }));
  }

  /**
   * Replay a subscription from a time or offset (or skip ahead): in each shard it continues from the
   * resolved position; deliveries out now are not redelivered. Returns the offset per shard.
   */
  async seek(clientId: string, name: string, position: StartPosition): Promise<number[]> {
    const start = resolveSubscriptionSpec(clientId, { name, pattern: '**', start: position }).start;
    const results = await this.everyShard<{ offset: number }>(clientId, name, (subscription) => ({ op: 'seek', subscription, position: start }));
    return results.map((result) => result.offset);
  }

  /**
   * A subscription's dead letters (events past maxDeliveries, or discarded), with reason and
   * attempts, ordered by shard and offset; at most `limit` per shard.
   */
  async deadLetters(clientId: string, name: string, options: { limit?: number } = {}): Promise<DeadLetterView[]> {
    const limit = options.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new EngineError('INVALID_ARGUMENT', 'limit must be an integer from 1 to 100000', { field: 'limit' });
    const perShard = await this.everyShard<DeadLetterView[]>(clientId, name, (subscription) => ({ op: 'dead-letters', subscription, limit, afterOffset: -1 }));
    return perShard.flat();
  }

  /**
   * Put dead letters back into their subscription: the given ones (shard and offset, as listed), or
   * all. They are delivered again before new events, with attempts counted afresh. Returns how many.
   */
  async replayDeadLetters(clientId: string, name: string, which: 'all' | ReadonlyArray<{ shard: number; offset: number }>): Promise<number> {
    const byShard = new Map<number, number[]>();
    if (which !== 'all') {
      for (const { shard, offset } of which) {
        if (!Number.isInteger(shard) || shard < 0 || shard >= this.options.shards) throw new EngineError('INVALID_ARGUMENT', `no shard ${shard}`, { field: 'shard' });
        byShard.set(shard, [...(byShard.get(shard) ?? []), offset]);
      }
    }
    const results = await this.everyShard<{ replayed: number }>(clientId, name, (subscription, shard) => {
      const offsets = which === 'all' ? 'all' : byShard.get(shard);
      return offsets ? { op: 'replay', subscription, offsets } : null;
    });
    return results.reduce((sum, result) => sum + result.replayed, 0);
  }

  /**
   * An event and its trail, by type and id, as long as the event is retained: published (by whom,
   * when), then each delivery (subscription, consumer, attempt) and what became of it. Engine-assigned
   * ids are found by the time they carry; a producer's own id within the dedup window, else by
   * scanning the type's records.
   */
  async eventTrail(type: string, id: string): Promise<EventTrail> {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', 'the engine is closed');
    validateEventType(type);
    if (typeof id !== 'string' || id.length === 0 || id.length > 255) throw new EngineError('INVALID_ARGUMENT', 'id must be a non-empty string', { field: 'id' });
    const shard = this.shardOf(type);
    const found = await this.pool.run<TrailResult | null>(shard, { op: 'trail', type, id });
    if (!found) throw new EngineError('NOT_FOUND', `no retained event ${id} of type ${type}`, { field: 'id' });
    const event = decodeEventBody(found.body);
    const published: TrailEntry = { kind: 'published', at: event.publishedAt, client: event.sender };
    return { event, shard, offset: found.offset, trail: [published, ...found.trail] };
  }

  /** Run a task about one subscription in every shard (the builder may skip a shard with null). */
  /** How long each shard keeps its events. */
  get retention(): EventRetention {
    return { retentionMs: this.shardConfig.retentionMs, retentionBytes: this.shardConfig.retentionBytes };
  }

  /**
   * Change how long each shard keeps its events (null: keep everything). Stored in the data
   * directory, so restarts keep it, and applied at once: whole oldest segments past it are deleted.
   */
  async setRetention(input: unknown): Promise<{ segmentsDeleted: number; bytesDeleted: number }> {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', 'the engine is closed');
    const retention = validateRetention(input);
    saveRetention(this.options.dataDir, retention);
    Object.assign(this.shardConfig, retention);
    const results = await Promise.all(
      [...Array(this.options.shards).keys()].map((shard) => this.pool.run<{ segmentsDeleted: number; bytesDeleted: number }>(shard, { op: 'retention', ...retention })),
    );
    return results.reduce((sum, r) => ({ segmentsDeleted: sum.segmentsDeleted + r.segmentsDeleted, bytesDeleted: sum.bytesDeleted + r.bytesDeleted }), { segmentsDeleted: 0, bytesDeleted: 0 });
  }

  /** What each shard holds now: offsets, subscriptions, scheduled deliveries pending (and in memory). */
  async shardStats(): Promise<ShardStats[]> {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', 'the engine is closed');
    const runs: Array<Promise<ShardStats>> = [];
    for (let shard = 0; shard < this.options.shards; shard++) runs.push(this.pool.run<ShardStats>(shard, { op: 'stats' }));
    const stats = await Promise.all(runs);
    // The shards' fsync times since their last stats join the fsync latency stage (once: taken here).
    for (const shard of stats) {
      if (shard.fsyncLatency !== null) this.latency.recordExternal('fsync', shard.fsyncLatency);
      shard.fsyncLatency = null;
    }
    return stats;
  }

  /** Latency per stage over the current interval, with the shards' fsyncs up to now; `reset` starts a new interval. */
  async latencyNow(reset: boolean): Promise<LatencySnapshot> {
    await this.shardStats();
    return this.latency.snapshot(reset);
  }

  private async everyShard<T = unknown>(clientId: string, name: string, task: (subscription: string, shard: number) => ShardTaskBody | null): Promise<T[]> {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', 'the engine is closed');
    const subscription = resolveSubscriptionSpec(clientId, { name, pattern: '**' }).key;
    const runs: Array<Promise<T>> = [];
    for (let shard = 0; shard < this.options.shards; shard++) {
      const body = task(subscription, shard);
      if (body) runs.push(this.pool.run<T>(shard, body));
    }
    return Promise.all(runs);
  }

  private readonly control: ConsumerControl = {
    ack: (consumer, deliveries) => {
      for (const delivery of deliveries) this.settlers[delivery.shard]?.ack(consumer.subscription, delivery.offset);
    },
    nack: (consumer, delivery, delayMs) => this.settlers[delivery.shard]?.nack(consumer.subscription, delivery.offset, delayMs),
    discard: (consumer, delivery, reason) => this.settlers[delivery.shard]?.discard(consumer.subscription, delivery.offset, reason),
    defer: (consumer, delivery, delayMs) => this.settlers[delivery.shard]?.defer(consumer.subscription, delivery.offset, delayMs),
    maxDeferMs: () => this.options.maxScheduleMs,
    close: async (consumer) => {
      this.consumers.delete(consumer.id);
      if (this.closed) return;
      await Promise.all(this.settlers.map((settler) => settler.flush()));
      await Promise.allSettled(
        this.settlers.map((_, shard) => this.pool.run(shard, { op: 'detach', subscription: consumer.subscription, consumer: consumer.id, credits: 0 })),
      );
    },
  };

  private attach(shard: number, consumer: Consumer): Promise<unknown> {
    return this.pool.run(shard, { op: 'attach', subscription: consumer.subscription, consumer: consumer.id, credits: consumer.credits });
  }

  /** A shard came back in a new worker: its live consumers attach again (subscriptions are on disk). */
  private reattach(shard: number): void {
    this.log('warn', 'shard reopened in a new worker after its worker died', { shard });
    for (const consumer of this.consumers.values()) {
      this.attach(shard, consumer).catch((error) => this.log('error', 'consumer could not re-attach', { shard, consumer: consumer.id, error }));
    }
  }

  private log(level: 'warn' | 'error', message: string, fields: Record<string, unknown>): void {
    this.options.logger?.[level](message, fields);
  }

  /** Compaction settings in force (kept in the data directory once changed). */
  get compactionSettings(): CompactionSettings {
    return this.compactionConfig;
  }

  /** Change the compaction settings (what `input` leaves out is kept); stored, so restarts keep them. */
  setCompactionSettings(input: unknown): CompactionSettings {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', 'the engine is closed');
    const settings = validateCompactionSettings(input, this.compactionConfig);
    saveCompactionSettings(this.options.dataDir, settings);
    this.compactionConfig = settings;
    this.compaction.schedule();
    return settings;
  }

  /** Run a compaction round now over every shard; `force` looks again at segments unchanged since their last one. */
  compactNow(force = true): Promise<CompactionReport[]> {
    if (this.closed) return Promise.reject(new EngineError('ENGINE_CLOSED', 'the engine is closed'));
    return this.compaction.run(force);
  }

  /** Confirm what is pending, flush every shard and stop the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.compaction.close();
    this.intake.flush();
    await Promise.all(this.settlers.map((settler) => settler.flush()));
    this.consumers.clear();
    try {
      await this.pool.close();
    } finally {
      openDataDirs.delete(this.dataDirKey);
    }
  }
}

/**
 * Verifications each shard worker runs at once on libuv's thread pool: the workers share it, and one
 * of its threads is left for the logs' fsyncs and file work.
 */
function signatureChecksInFlight(workers: number): number {
  const poolThreads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.floor((poolThreads - 1) / Math.max(1, workers)));
}
