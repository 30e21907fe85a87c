import { EngineError } from './errors.js';
import os from 'node:os';
import type { FsyncPolicy } from '../../native-free-storage/index.js';
import { DEFAULT_EVENT_LIMITS } from './event.js';
import type { Logger } from '../observability/logger.js';
import type { WorkBoard } from '../observability/work-progress.js';
import { validateCompactionSettings, type CompactionSettings, type CompactionSettingsInput } from './compaction/compaction-settings.js';

export interface EngineOptions {
  dataDir: string;
  /** Shards the event types are hashed over; fixed when the data directory is created (default 4). */
  shards?: number;
  /** Shard worker threads (default: cores - 1, at least 1). */
  workers?: number;
  fsync?: FsyncPolicy;
  fsyncIntervalMs?: number;
  segmentBytes?: number;
  /** A repeated event id within this window returns the first receipt (default 2 minutes). */
  dedupWindowMs?: number;
  /** Ids remembered per shard at most; the oldest go first (default 1,000,000). */
  maxDedupEntries?: number;
  maxPayloadBytes?: number;
  /** Furthest ahead an event may be scheduled or a delivery deferred (default 30 days). */
  maxScheduleMs?: number;
  /** Unconfirmed publishes per producer; more are refused with a retryable OVERLOADED (default 1000). */
  publishWindow?: number;
  /** Events per publish task sent to a shard at most (default 1000). */
  maxPublishBatch?: number;
  /** Keep the audit trail of every delivery and settlement (default true). */
  trail?: boolean;
  /** Trail bytes kept per shard; the oldest go first (default 1 GiB). */
  trailRetentionBytes?: number;
  /** Events kept per shard by age, ms (default null: keep); a value set with setRetention wins. */
  retentionMs?: number | null;
  /** Events kept per shard by size, bytes (default null: keep); a value set with setRetention wins. */
  retentionBytes?: number | null;
  /** Compaction settings when the data directory has none saved (see compaction-settings.ts). */
  compaction?: CompactionSettingsInput;
  logger?: Logger;
  /** Where long work (recovery, replays) reports progress; given so it can be read while the engine opens. */
  workBoard?: WorkBoard;
}

export type ResolvedEngineOptions = Required<Omit<EngineOptions, 'logger' | 'workBoard' | 'compaction'>> & {
  logger: Logger | null;
  workBoard: WorkBoard | null;
  compaction: CompactionSettings;
};

export function resolveEngineOptions(options: EngineOptions): ResolvedEngineOptions {
  return {
    dataDir: options.dataDir,
    shards: options.shards ?? 4,
    workers: options.workers ?? Math.max(1, os.availableParallelism() - 1),
    fsync: options.fsync ?? 'interval',
    fsyncIntervalMs: options.fsyncIntervalMs ?? 5,
    segmentBytes: options.segmentBytes ?? 64 * 1024 * 1024,
    dedupWindowMs: options.dedupWindowMs ?? 120_000,
    maxDedupEntries: options.maxDedupEntries ?? 1_000_000,
    maxPayloadBytes: options.maxPayloadBytes ?? DEFAULT_EVENT_LIMITS.maxPayloadBytes,
    maxScheduleMs: options.maxScheduleMs ?? DEFAULT_EVENT_LIMITS.maxScheduleMs,
    publishWindow: options.publishWindow ?? 1000,
    maxPublishBatch: publishBatchOption(options.maxPublishBatch ?? 1000),
    trail: options.trail ?? true,
    trailRetentionBytes: options.trailRetentionBytes ?? 1024 * 1024 * 1024,
    retentionMs: options.retentionMs ?? null,
    retentionBytes: options.retentionBytes ?? null,
    logger: options.logger ?? null,
    workBoard: options.workBoard ?? null,
    compaction: validateCompactionSettings(options.compaction ?? {}),
  };
}

/** Events per publish batch at most: its producers and types are indexed by u16. */
const MAX_PUBLISH_BATCH = 0xffff;

function publishBatchOption(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_PUBLISH_BATCH) {
    throw new EngineError('INVALID_ARGUMENT', `maxPublishBatch must be an integer from 1 to ${MAX_PUBLISH_BATCH}, got ${value}`, { field: 'maxPublishBatch' });
  }
  return value;
}
