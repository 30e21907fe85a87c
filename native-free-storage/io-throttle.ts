import { setTimeout as sleep } from 'node:timers/promises';
import { StorageError } from './errors.js';

/**
 * A byte budget per second for background I/O (compaction), so it leaves the disk to the append
 * path: a token bucket refilled at `bytesPerSecond`, holding at most `burstBytes`. `take` waits
 * until the bytes just moved are paid for. `Infinity` turns it off.
 */
export class IoThrottle {
  private available: number;
  private last = performance.now();
  /** Milliseconds spent waiting for the budget. */
  waitedMs = 0;

  constructor(
    readonly bytesPerSecond: number,
    private readonly burstBytes: number,
  ) {
    if (!(bytesPerSecond > 0)) {
      throw new StorageError('INVALID_ARGUMENT', `I/O budget must be a positive number of bytes per second (or Infinity), got ${bytesPerSecond}`);
    }
    this.available = burstBytes;
  }

  /** Account for `bytes` read or written; resolves once the budget allows going on. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.bytesPerSecond === Infinity || bytes <= 0) return;
    const now = performance.now();
    this.available = Math.min(this.burstBytes, this.available + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.available -= bytes;
    if (this.available >= 0) return;
    const waitMs = (-this.available * 1000) / this.bytesPerSecond;
    const started = performance.now();
    try {
      await sleep(waitMs, undefined, signal ? { signal } : undefined);
    } catch {
      throw new StorageError('COMPACTION_ABORTED', 'compaction was cancelled');
    }
    this.waitedMs += performance.now() - started;
  }
}
