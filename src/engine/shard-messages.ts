import type { MessagePort } from 'node:worker_threads';
import type { CompactionResult } from '../../native-free-storage/index.js';
import type { CompactionSettings } from './compaction/compaction-settings.js';
import type { WorkProgress } from '../observability/work-progress.js';
import type { PackedDeliveries } from './delivery-batch.js';
import type { EngineErrorJSON } from './errors.js';
import type { StartPosition, SubscriptionSpec } from './subscription-spec.js';
import type { SerializedShardMetrics } from './shard/shard-metrics.js';
import type { TrailEntry } from './shard/trail-log.js';

/**
 * The messages between the engine (main thread) and its shard workers. Every task names its shard
 * and carries the shard's task sequence number: the worker runs a shard's tasks in that order, even
 * if the pool hands them over out of order. Work crosses threads in batches.
 */

/** The producer of a publish batch, as authenticated by the engine. */
export interface ProducerIdentity {
  id: string;
  /** Raw 32-byte Ed25519 public key, when the client has one. */
  publicKey: Uint8Array | null;
  requireSignatures: boolean;
}

export interface ShardConfig {
  dataDir: string;
  fsync: 'always' | 'interval' | 'never';
  fsyncIntervalMs: number;
  segmentBytes: number;
  dedupWindowMs: number;
  maxDedupEntries: number;
  maxPayloadBytes: number;
  /** Record the audit trail of deliveries and settlements. */
  trail: boolean;
  /** Bytes of trail a shard keeps at most (oldest dropped first). */
  trailRetentionBytes: number;
  /** Signature verifications a worker runs at once on the thread pool (see SignatureChecks). */
  signatureChecksInFlight: number;
  /** How long the shard keeps its events (null: keep). */
  retentionMs: number | null;
  retentionBytes: number | null;
}

interface TaskBase {
  shard: number;
  /** Incarnation of the shard's owner: bumped when a dead worker's shards move to a new one. */
  epoch: number;
  seq: number;
}

/** Open (or recover) the shard and deliver through `port`. Result: OpenResult. */
export interface OpenTask extends TaskBase {
  op: 'open';
  config: ShardConfig;
  port: MessagePort;
}
export interface OpenResult {
  nextOffset: number;
  subscriptions: number;
  recovery: { clean: boolean; scannedBytes: number; truncatedBytes: number; durationMs: number };
  /** The opening's last progress report (finished), so the engine has it when the open resolves. */
  recoveryProgress: WorkProgress | null;
}

/**
 * Store a batch of events the engine has validated and encoded (record bodies, sender and time
 * set). The bodies travel back to back in one transferred buffer. Result: PublishResult.
 */
export interface PublishTask extends TaskBase {
  op: 'publish';
  batch: EncodedPublishBatch;
}
export interface EncodedPublishBatch {
  /** The producers of this batch; `producerOf[i]` indexes the producer of event i. */
  producers: ProducerIdentity[];
  producerOf: Uint16Array;
  bodies: Uint8Array;
  /** End of each body in `bodies`. */
  ends: Uint32Array;
  /** The event types of this batch, each once; `typeOf[i]` indexes the type of event i. */
  types: string[];
  typeOf: Uint16Array;
  /** The ids the producers chose (events flagged PRODUCER_ID), in batch order; engine-assigned ids stay in the bodies. */
  producerIds: string[];
  /** Each event's publishedAt: the record's timestamp, so seeking by time matches what consumers see. */
  times: Float64Array;
  /** PublishFlag bits of each event. */
  flags: Uint8Array;
  // What the worker needs to store and route each event, copied from its body so that it reads no body:
  /** The record's stream tag (eventStreamTag of the type). */
  streams: Uint32Array;
  priorities: Uint8Array;
  /** 0: deliver at once. */
  deliverAts: Float64Array;
  /** 0: never expires. */
  expiresAts: Float64Array;
}

/** Bits of EncodedPublishBatch.flags. */
export const PublishFlag = {
  /** The producer chose the id (dedup applies); else the engine assigned it. */
  PRODUCER_ID: 1,
  SIGNED: 2,
  /** The event has a key of its own (its ordering key), else its type orders it. */
  KEY: 4,
  /** The event names its recipients. */
  RECIPIENTS: 8,
} as const;

/** Per event: its offset (the original one for a duplicate), or an error. */
export interface PublishResult {
  offsets: Float64Array;
  duplicate: Uint8Array;
  errors: Array<[index: number, error: EngineErrorJSON]>;
  /** The batch's buffer, handed back (transferred) for the engine to reuse; null when kept. */
  bodies: ArrayBuffer | null;
}

/** Create the durable subscription in this shard if it does not exist. Result: void. */
export interface SubscribeTask extends TaskBase {
  op: 'subscribe';
  spec: SubscriptionSpec;
}

/** Attach or detach a live consumer of a subscription; detaching redelivers its unacked events. */
export interface ConsumerTask extends TaskBase {
  op: 'attach' | 'detach';
  subscription: string;
  consumer: string;
  /** Unacked deliveries this consumer takes at most. */
  credits: number;
}

/** Acks, nacks, discards and defers, batched. Result: void. Unknown or stale offsets are ignored (at-least-once). */
export interface SettleTask extends TaskBase, Settlement {
  op: 'settle';
}
export interface Settlement {
  acks: Array<{ subscription: string; offsets: number[] }>;
  nacks: Array<{ subscription: string; offsets: number[]; delayMs: number }>;
  discards: Array<{ subscription: string; offsets: number[]; reason: string }>;
  /** Deliveries to bring back at `dueAt` (ms since the epoch), `delayMs` after the consumer asked. */
  defers: Array<{ subscription: string; offsets: number[]; dueAt: number; delayMs: number }>;
}

/** List a subscription's dead letters in this shard, by offset. Result: DeadLetterView[]. */
export interface DeadLettersTask extends TaskBase {
  op: 'dead-letters';
  subscription: string;
  limit: number;
  afterOffset: number;
}
export interface DeadLetterView {
  shard: number;
  offset: number;
  id: string;
  type: string;
  publishedAt: number;
  reason: string;
  attempts: number;
  /** When it was dead-lettered (ms). */
  at: number;
}

/** Put dead letters back into the subscription (offsets in this shard, or all). Result: { replayed }. */
export interface ReplayTask extends TaskBase {
  op: 'replay';
  subscription: string;
  offsets: number[] | 'all';
}

/** Pause or resume a subscription's delivery in this shard (durable). Result: void. */
export interface PauseTask extends TaskBase {
  op: 'pause' | 'resume';
  subscription: string;
}

/** Move a subscription to a position in this shard (replay or skip; durable). Result: { offset }. */
export interface SeekTask extends TaskBase {
  op: 'seek';
  subscription: string;
  position: StartPosition;
}

/** An event and its delivery trail, by type and id. Result: TrailResult | null. */
export interface TrailTask extends TaskBase {
  op: 'trail';
  type: string;
  id: string;
}
export interface TrailResult {
  offset: number;
  /** The stored event body (decode with decodeEventBody). */
  body: Uint8Array;
  trail: TrailEntry[];
}

/** Flush and close the shard. Result: void. */
export interface CloseTask extends TaskBase {
  op: 'close';
}

/** What a shard holds now (for status and metrics). Result: ShardStats. */
export interface StatsTask extends TaskBase {
  op: 'stats';
}
export interface ShardStats {
  shard: number;
  /** Offset the next event gets. */
  nextOffset: number;
  subscriptions: number;
  /** Scheduled events and deferred deliveries waiting, and how many of them are in memory. */
  scheduledPending: number;
  scheduledInMemory: number;
  /** Counts by event type, subscriptions' lag and load, disk usage and fsync timings. */
  metrics: SerializedShardMetrics;
  /** Durations of the events log's fsyncs since the previous stats (HDR compressed base64, µs); null if none. */
  fsyncLatency: string | null;
}

/** Choose the shard's next compaction. Result: PreparedCompaction | null. */
export interface CompactionPrepareTask extends TaskBase {
  op: 'compaction-prepare';
  settings: CompactionSettings;
  /** Base offsets already compacted in this round. */
  skip: number[];
  force: boolean;
}

/** Install a finished rewrite (or give it up: `result` null). Result: InstallResult | null. */
export interface CompactionInstallTask extends TaskBase {
  op: 'compaction-install';
  taskId: string;
  result: CompactionResult | null;
}

/** Change how long the shard keeps its events, and apply it now. Result: { segmentsDeleted, bytesDeleted }. */
export interface RetentionTask extends TaskBase {
  op: 'retention';
  retentionMs: number | null;
  retentionBytes: number | null;
}

export type ShardTask =
  | OpenTask
  | PublishTask
  | SubscribeTask
  | ConsumerTask
  | SettleTask
  | PauseTask
  | SeekTask
  | DeadLettersTask
  | ReplayTask
  | TrailTask
  | CloseTask
  | StatsTask
  | RetentionTask
  | CompactionPrepareTask
  | CompactionInstallTask;

/** Worker → engine, on the shard's port: deliveries for live consumers, packed and transferred. */
export interface DeliveryMessage {
  shard: number;
  epoch: number;
  packed: PackedDeliveries;
}
