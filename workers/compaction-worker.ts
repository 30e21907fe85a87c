import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { rewriteSegments, StorageError, type CompactionKey, type CompactionResult, type LogRecord, type RewriteOptions } from '../native-free-storage/index.js';
import type { CompactionErrorJSON, CompactionJob } from '../src/engine/compaction/compaction-pool.js';
import { RemovalRules } from '../src/engine/compaction/removal-rules.js';
import { decodeEventBody } from '../src/engine/event-codec.js';
import { RecordKind, recordKind } from '../src/engine/shard/record-kind.js';


/**
 * The compaction key of an engine record: (type, key) of an EVENT record whose event has a key; a
 * tombstone when its payload is empty. Null for every other record (scheduled events, fired copies,
 * defer markers, events without a key, and bodies that do not decode): those are never dropped by key.
 */
export function engineCompactionKey(record: LogRecord): CompactionKey | null {
  let event: ReturnType<typeof decodeEventBody>;
  try {
    if (recordKind(record.attributes) !== RecordKind.EVENT) return null;
    event = decodeEventBody(record.body);
  } catch {
    return null;
  }
  if (event.key === null) return null;
  // Length-prefixed type, so no (type, key) pair can spell another's string.
  return { key: `${event.type.length}:${event.type}${event.key}`, tombstone: event.payload.byteLength === 0 };
}

/** Nice value of a compaction thread: under CPU contention the scheduler favours the shards' threads. */
export const COMPACTION_THREAD_NICE = 10;
let priorityLowered = false;

/**
 * Lower this thread's CPU priority (Linux: nice values are per thread, and /proc/thread-self names the
 * thread). On 2 busy cores, a worker burning as much CPU as a rewrite raised the append p99, one doing
 * its disk I/O did not: the shards' threads should win the CPU. Elsewhere, or if refused, the thread
 * keeps its priority.
 */
function lowerThreadPriority(): void {
  if (priorityLowered || isMainThread) return;
  priorityLowered = true;
  try {
    const tid = Number(path.basename(fs.readlinkSync('/proc/thread-self')));
    if (Number.isSafeInteger(tid) && tid > 0) os.setPriority(tid, COMPACTION_THREAD_NICE);
  } catch {
    // Not Linux, or not allowed: compaction still runs, at normal priority.
  }
}

/**
 * Piscina entry of the compaction worker (its pool: src/engine/compaction/compaction-pool.ts). It
 * rewrites the segments of one prepared compaction under temporary names; the log's owner installs
 * the result. Progress goes out on the job's port; `{ cancel: true }` on it stops the rewrite between
 * chunks (its files are removed).
 */
export default async function runCompactionJob(job: CompactionJob): Promise<CompactionResult> {
  lowerThreadPriority();
  const cancel = new AbortController();
  job.port?.on('message', (message: { cancel?: boolean }) => {
    if (message?.cancel) cancel.abort();
  });
  try {
    return await rewriteSegments(job.task, {
      ...policyOf(job),
      ioBytesPerSecond: job.ioBytesPerSecond,
      chunkBytes: job.chunkBytes,
      onProgress: (progress) => job.port?.postMessage({ progress }),
      signal: cancel.signal,
    });
  } catch (error) {
    const json: CompactionErrorJSON =
      error instanceof StorageError ? { code: error.code, message: error.message } : { code: 'COMPACTION_FAILED', message: error instanceof Error ? error.message : String(error) };
    throw json;
  } finally {
    job.port?.close();
  }
}

/** What decides which records go, besides the plan's drop ranges. */
function policyOf(job: CompactionJob): Pick<RewriteOptions, 'keyOf' | 'keep' | 'mayDropByKey' | 'tombstoneExpired'> {
  const keyed = job.task.plan.keyCompaction !== null;
  if (!job.rules) return keyed ? { keyOf: engineCompactionKey } : {};
  const rules = new RemovalRules(job.rules);
  // A record the rules cannot read (a malformed body) is kept: it never goes, nor fails the compaction.
  return {
    keep: (record) => !orElse(() => rules.removableByAge(record), false),
    ...(keyed
      ? {
          keyOf: (record: LogRecord) => orElse(() => rules.compactionKey(record), null),
          mayDropByKey: (record: LogRecord) => orElse(() => rules.removableByKey(record), false),
          tombstoneExpired: (record: LogRecord) => orElse(() => record.timestamp < rules.tombstoneExpiredBefore(record), false),
        }
      : {}),
  };
}

function orElse<T>(compute: () => T, fallback: T): T {
  try {
    return compute();
  } catch {
    return fallback;
  }
}
