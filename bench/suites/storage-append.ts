import { performance } from 'node:perf_hooks';
import { Log } from '../../native-free-storage/index.js';
import { appendWindowed, makeBatch } from './storage-workload.js';

export interface ThroughputResult {
  records: number;
  elapsedMs: number;
  recordsPerS: number;
  /** Growth of the .log files during the run. */
  logBytes: number;
}

/** fsync 'interval' with the default group-commit window; returns the still-open log for the read test. */
export async function measureIntervalAppend(
  dir: string,
  pool: readonly Buffer[],
  opts: { records: number; batchSize: number; maxInFlight: number },
): Promise<{ log: Log; result: ThroughputResult }> {
  const log = await Log.open(dir, { fsync: 'interval' });
  try {
    const before = log.sizeBytes;
    const run = await appendWindowed(log, pool, {
      totalRecords: opts.records,
      batchSize: opts.batchSize,
      maxInFlight: opts.maxInFlight,
    });
    const result = {
      records: run.records,
      elapsedMs: run.elapsedMs,
      recordsPerS: run.records / (run.elapsedMs / 1000),
      logBytes: log.sizeBytes - before,
    };
    return { log, result };
  } catch (err) {
    await log.close().catch(() => undefined);
    throw err;
  }
}

const ALWAYS_WARMUP_BATCHES = 20;

/** fsync 'always', one batch awaited at a time; every batch's append latency (write + fsync) in µs. */
export async function measureAlwaysSerial(
  dir: string,
  pool: readonly Buffer[],
  opts: { batchSize: number; durationMs: number },
): Promise<ThroughputResult & { latenciesUs: number[] }> {
  const log = await Log.open(dir, { fsync: 'always' });
  try {
    for (let i = 0; i < ALWAYS_WARMUP_BATCHES; i++) await log.append(makeBatch(pool, i * opts.batchSize, opts.batchSize));
    const before = log.sizeBytes;
    const latenciesUs: number[] = [];
    let records = 0;
    const start = performance.now();
    const deadline = start + opts.durationMs;
    let now = start;
    while (now < deadline) {
      const batch = makeBatch(pool, records, opts.batchSize);
      const sent = performance.now();
      await log.append(batch);
      now = performance.now();
      latenciesUs.push((now - sent) * 1000);
      records += opts.batchSize;
    }
    const elapsedMs = now - start;
    return { records, elapsedMs, recordsPerS: records / (elapsedMs / 1000), logBytes: log.sizeBytes - before, latenciesUs };
  } finally {
    await log.close();
  }
}

/** fsync 'always' with `concurrency` batches outstanding (lets the log group their fsyncs, if it does). */
export async function measureAlwaysConcurrent(
  dir: string,
  pool: readonly Buffer[],
  opts: { batchSize: number; concurrency: number; durationMs: number },
): Promise<ThroughputResult> {
  const log = await Log.open(dir, { fsync: 'always' });
  try {
    for (let i = 0; i < ALWAYS_WARMUP_BATCHES; i++) await log.append(makeBatch(pool, i * opts.batchSize, opts.batchSize));
    const before = log.sizeBytes;
    let deadline = 0;
    const run = await appendWindowed(log, pool, {
      totalRecords: Infinity,
      batchSize: opts.batchSize,
      maxInFlight: opts.concurrency,
      shouldStop: () => {
        const now = performance.now();
        if (deadline === 0) deadline = now + opts.durationMs;
        return now >= deadline;
      },
    });
    return { ...run, recordsPerS: run.records / (run.elapsedMs / 1000), logBytes: log.sizeBytes - before };
  } finally {
    await log.close();
  }
}

/**
 * Reads the whole visible log forward in pages of up to `pageRecords`; checks that offsets are
 * consecutive and every record is there, so a fast but wrong read cannot pass as a figure.
 */
export function measureSequentialRead(log: Log, pageRecords: number): { records: number; bytes: number; elapsedMs: number; recordsPerS: number } {
  const end = log.durableOffset;
  let next = log.startOffset;
  let records = 0;
  let bytes = 0;
  const start = performance.now();
  while (next < end) {
    const page = log.read(next, { maxRecords: pageRecords });
    if (page.length === 0) break;
    for (const record of page) {
      if (record.offset !== next) {
        throw new Error(`read returned offset ${record.offset} where ${next} was expected`);
      }
      bytes += record.body.length;
      next++;
    }
    records += page.length;
  }
  const elapsedMs = performance.now() - start;
  if (next !== end) throw new Error(`read stopped at offset ${next}, log durable end is ${end}`);
  return { records, bytes, elapsedMs, recordsPerS: records / (elapsedMs / 1000) };
}
