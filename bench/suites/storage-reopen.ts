import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Log } from '../../native-free-storage/index.js';
import { trackChild } from '../harness/child-processes.js';
import type { CrashWriterMessage } from '../fixtures/crash-writer.js';
import { appendWindowed } from './storage-workload.js';

const CRASH_WRITER = fileURLToPath(new URL('../fixtures/crash-writer.js', import.meta.url));

/** Fills a log as fast as possible (fsync 'never', big batches) and closes it cleanly. */
export async function buildLog(
  dir: string,
  pool: readonly Buffer[],
  records: number,
): Promise<{ appendRecordsPerS: number; closeMs: number; sizeBytes: number }> {
  const log = await Log.open(dir, { fsync: 'never' });
  let sizeBytes = 0;
  try {
    const run = await appendWindowed(log, pool, { totalRecords: records, batchSize: 10_000, maxInFlight: 4 });
    sizeBytes = log.sizeBytes;
    const closeStart = performance.now();
    await log.close();
    return { appendRecordsPerS: run.records / (run.elapsedMs / 1000), closeMs: performance.now() - closeStart, sizeBytes };
  } finally {
    if (log.state !== 'closed') await log.close().catch(() => undefined);
  }
}

/** Time of Log.open alone; the caller closes the returned log. */
export async function timeOpen(dir: string): Promise<{ ms: number; log: Log }> {
  const start = performance.now();
  const log = await Log.open(dir);
  return { ms: performance.now() - start, log };
}

export interface CrashWriterRun {
  /** Offset the writer's log started appending at (its nextOffset after open). */
  openedAt: number;
  /** Lower bound of what the writer saw confirmed before it was killed. */
  confirmedEnd: number;
}

/** Forks the crash writer on `dir`, lets it append for `appendMs`, then SIGKILLs it. */
export function runCrashWriter(dir: string, appendMs: number): Promise<CrashWriterRun> {
  const maxRunMs = appendMs + 30_000;
  return new Promise((resolve, reject) => {
    const child = fork(CRASH_WRITER, [dir, String(maxRunMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    trackChild(child);
    let openedAt = -1;
    let confirmedEnd = -1;
    let killTimer: NodeJS.Timeout | undefined;
    let failure: Error | undefined;
    // Bounds the wait for 'opened' (a clean open of a large log should take well under this).
    const openTimer = setTimeout(() => {
      failure = new Error('crash writer did not open the log within 60 s');
      child.kill('SIGKILL');
    }, 60_000);
    child.on('message', (message: CrashWriterMessage) => {
      if (message.type === 'opened') {
        clearTimeout(openTimer);
        openedAt = message.nextOffset;
        confirmedEnd = message.nextOffset;
        killTimer = setTimeout(() => child.kill('SIGKILL'), appendMs);
      } else if (message.type === 'confirmed') {
        confirmedEnd = Math.max(confirmedEnd, message.durableOffset);
      } else {
        failure = new Error(`crash writer failed: ${message.message}`);
      }
    });
    child.on('error', (err) => {
      failure = err;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(openTimer);
      clearTimeout(killTimer);
      if (failure) reject(failure);
      else if (signal !== 'SIGKILL' || openedAt < 0) reject(new Error(`crash writer exited on its own (code ${code}, signal ${signal})`));
      else resolve({ openedAt, confirmedEnd });
    });
  });
}
