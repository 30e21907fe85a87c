import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AppendRecord, AppendResult, Log } from '../../native-free-storage/index.js';

/**
 * Random bodies (incompressible) drawn from a fixed pool: generating a fresh random buffer per record
 * would make the benchmark measure the random generator, and 3M distinct bodies would cost ~800 MB.
 */
export function makePayloadPool(count: number, bodyBytes: number): Buffer[] {
  const slab = crypto.randomBytes(count * bodyBytes);
  return Array.from({ length: count }, (_, i) => slab.subarray(i * bodyBytes, (i + 1) * bodyBytes));
}

export function makeBatch(pool: readonly Buffer[], firstIndex: number, size: number): AppendRecord[] {
  const batch: AppendRecord[] = new Array(size);
  for (let i = 0; i < size; i++) batch[i] = { body: pool[(firstIndex + i) % pool.length]! };
  return batch;
}

export interface WindowedAppendOptions {
  batchSize: number;
  /** Unconfirmed batches allowed at once: the producer's bound, like a client's send window. */
  maxInFlight: number;
  /** Stop submitting after this many records (Infinity: until shouldStop). */
  totalRecords: number;
  shouldStop?: () => boolean;
  onConfirmed?: (result: AppendResult) => void;
}

export interface AppendRun {
  records: number;
  elapsedMs: number;
}

/**
 * Keeps up to maxInFlight append batches outstanding; waits for the oldest before submitting more.
 * Elapsed time runs from the first submit until the last batch is confirmed.
 */
export async function appendWindowed(log: Log, pool: readonly Buffer[], opts: WindowedAppendOptions): Promise<AppendRun> {
  const inFlight: Promise<AppendResult>[] = [];
  let submitted = 0;
  let confirmed = 0;
  const confirm = (result: AppendResult): void => {
    confirmed += result.lastOffset - result.baseOffset + 1;
    opts.onConfirmed?.(result);
  };
  const start = performance.now();
  while (submitted < opts.totalRecords && !(opts.shouldStop?.() ?? false)) {
    if (inFlight.length >= opts.maxInFlight) confirm(await inFlight.shift()!);
    const size = Math.min(opts.batchSize, opts.totalRecords - submitted);
    const pending = log.append(makeBatch(pool, submitted, size));
    // Awaited in order below; this only keeps an early rejection from counting as unhandled.
    pending.catch(() => undefined);
    inFlight.push(pending);
    submitted += size;
  }
  while (inFlight.length > 0) confirm(await inFlight.shift()!);
  return { records: confirmed, elapsedMs: performance.now() - start };
}
