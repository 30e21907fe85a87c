import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import {
  DEFAULT_COMPACTION_CHUNK_BYTES,
  DEFAULT_COMPACTION_IO_BYTES_PER_SECOND,
  StorageError,
  type CompactionPlan,
  type CompactionProgress,
  type CompactionResult,
  type CompactionTask,
  type InstallResult,
  type Log,
  type StorageErrorCode,
  type SwapHook,
} from '../../../native-free-storage/index.js';
import type { CompactionContext } from './removal-rules.js';

/**
 * What the compaction worker (workers/compaction-worker.ts) is given, in a pool of its own so a
 * rewrite never delays a shard's tasks. It rewrites the segments of one prepared compaction under
 * temporary names; the log's owner installs the result. Progress goes out on `port`; a message
 * `{ cancel: true }` on it stops the rewrite between chunks (its files are removed).
 */
export interface CompactionJob {
  task: CompactionTask;
  ioBytesPerSecond: number;
  chunkBytes: number;
  port: MessagePort | null;
  /**
   * The shard's removal rules as data (engine/compaction/removal-rules.ts): records settled and old
   * enough go, key compaction covers the key-compacted types and drops only settled records. Without
   * them only the plan's drop ranges apply, and key compaction covers every keyed event.
   */
  rules: CompactionContext | null;
}

/** A failure as it crosses the thread: structured cloning keeps only an Error's message. */
export interface CompactionErrorJSON {
  code: string;
  message: string;
}

export interface CompactionPoolOptions {
  /** Worker threads (default 1: compaction is background work, the shards own the other cores). */
  threads?: number;
  /** Default I/O budget of each rewrite, bytes per second of reads plus writes (default 32 MiB/s). */
  ioBytesPerSecond?: number;
  /** Size of each read and write (default 256 KiB; the new file is synced after each). */
  chunkBytes?: number;
  /** Rewrites waiting for a thread at most; more are refused (default 64). */
  maxQueue?: number;
  /** A thread idle this long exits; the next rewrite starts another (default 60 s). */
  idleTimeoutMs?: number;
}

export interface CompactionRunOptions {
  onProgress?: (progress: CompactionProgress) => void;
  /** This rewrite's I/O budget (Infinity: unthrottled). */
  ioBytesPerSecond?: number;
  /** Cancels the rewrite between two chunks; it rejects with COMPACTION_ABORTED. */
  signal?: AbortSignal;
  /** The engine's removal rules for this log (see CompactionJob.rules); none: the plan alone decides. */
  rules?: CompactionContext | null;
}

export interface CompactLogOptions extends CompactionRunOptions {
  onSwapStep?: SwapHook;
}

/** A rewrite and its install. */
export interface CompactionReport extends CompactionResult {
  install: InstallResult;
}

/** The compiled worker entry: beside this file in dist/, or in dist/ when running from source. */
function workerEntry(): string {
  const here = fileURLToPath(import.meta.url);
  const compiled = path.resolve(path.dirname(here), '../../../workers/compaction-worker.js');
  if (!here.endsWith('.ts') && existsSync(compiled)) return compiled;
  const root = path.resolve(path.dirname(here), '../../..');
  return path.join(root, 'dist', 'workers', 'compaction-worker.js');
}

/**
 * The compaction workers: a piscina pool of their own (1 thread by default), separate from the shard
 * workers, running `rewriteSegments` on prepared tasks. Each rewrite is throttled by its I/O budget and
 * reads and writes in bounded chunks, so the append path keeps its latency.
 */
export class CompactionPool {
  private readonly piscina: Piscina;
  private readonly ioBytesPerSecond: number;
  private readonly chunkBytes: number;
  private inFlight = 0;

  constructor(options: CompactionPoolOptions = {}) {
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw new StorageError('INVALID_ARGUMENT', `compaction threads must be a positive integer, got ${threads}`);
    this.ioBytesPerSecond = options.ioBytesPerSecond ?? DEFAULT_COMPACTION_IO_BYTES_PER_SECOND;
    this.chunkBytes = options.chunkBytes ?? DEFAULT_COMPACTION_CHUNK_BYTES;
    this.piscina = new Piscina({
      filename: workerEntry(),
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: options.idleTimeoutMs ?? 60_000,
      maxQueue: options.maxQueue ?? 64,
      // A rewrite waits on timers (the I/O budget): the thread must not block while idle.
      atomics: 'disabled',
    });
  }

  /** Rewrites queued or running. */
  get pending(): number {
    return this.inFlight;
  }

  /** Run one prepared rewrite in a compaction thread. Rejections are StorageErrors. */
  async run(task: CompactionTask, options: CompactionRunOptions = {}): Promise<CompactionResult> {
    if (options.signal?.aborted) throw new StorageError('COMPACTION_ABORTED', 'compaction was cancelled before it started');
    const channel = new MessageChannel();
    channel.port1.on('message', (message: { progress?: CompactionProgress }) => {
      if (message.progress) options.onProgress?.(message.progress);
    });
    const cancel = () => channel.port1.postMessage({ cancel: true });
    options.signal?.addEventListener('abort', cancel, { once: true });
    const job: CompactionJob = {
      task,
      ioBytesPerSecond: options.ioBytesPerSecond ?? this.ioBytesPerSecond,
      chunkBytes: this.chunkBytes,
      port: channel.port2,
      rules: options.rules ?? null,
    };
    this.inFlight++;
    try {
      return (await this.piscina.run(job, { transferList: [channel.port2] })) as CompactionResult;
    } catch (error) {
      throw toStorageError(error);
    } finally {
      this.inFlight--;
      options.signal?.removeEventListener('abort', cancel);
      channel.port1.close();
    }
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}

/**
 * Compact `log` by `plan`: prepare on the log's thread, rewrite in the pool, install on the log's
 * thread. Whatever fails before the install gives the compaction up (its files are removed); an install
 * that finds the segments changed (retention meanwhile) rejects with COMPACTION_STALE.
 */
export async function compactLog(log: Log, plan: CompactionPlan, pool: CompactionPool, options: CompactLogOptions = {}): Promise<CompactionReport> {
  const task = log.prepareCompaction(plan);
  let result: CompactionResult;
  try {
    result = await pool.run(task, options);
  } catch (error) {
    log.abortCompaction(task.taskId);
    throw error;
  }
  const install = await log.installCompaction(result, options.onSwapStep ? { onSwapStep: options.onSwapStep } : {});
  return { ...result, install };
}

function toStorageError(error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const json = error as Partial<CompactionErrorJSON> | null;
  if (json && typeof json === 'object' && !(error instanceof Error) && typeof json.code === 'string' && typeof json.message === 'string') {
    return new StorageError(json.code as StorageErrorCode, json.message);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError('COMPACTION_FAILED', `the compaction worker failed: ${message}`, { cause: error });
}
