import { StorageError, errnoCode } from './errors.js';
import type { FileIO } from './file-io.js';
import type { FsyncPolicy } from './options.js';

/** Something whose written data an fsync makes durable (a segment). */
export interface Syncable {
  descriptor(): number;
}

/** Upper bounds (seconds) of the fsync duration histogram's buckets. */
export const FSYNC_BUCKET_BOUNDS_SECONDS: readonly number[] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** The group-commit fsyncs a log has completed since it opened, and how long they took. */
export interface FsyncTimings {
  count: number;
  totalSeconds: number;
  /** Upper bounds of the buckets (FSYNC_BUCKET_BOUNDS_SECONDS). */
  bounds: readonly number[];
  /** fsyncs per bucket (not cumulative); one more entry than `bounds`: those longer than the last bound. */
  buckets: number[];
}

interface Waiter {
  /** Resolve once every offset below this is durable. */
  upTo: number;
  resolve: () => void;
  reject: (error: StorageError) => void;
}

/**
 * Turns written records into durable ones under the fsync policy, and tells each append when.
 *
 * - `always`: an fsync starts as soon as data is written; appends written while one is in flight are
 *   covered by the next, so concurrent appends share fsyncs (group commit) without waiting a window.
 * - `interval`: at most one fsync per window: everything written in the last `intervalMs` is made
 *   durable together.
 * - `never`: written counts as durable at once (the OS page cache decides when it reaches the disk);
 *   for data that can be rebuilt. `flush` and `close` still fsync it.
 *
 * One fsync runs at a time; it covers every file written since the previous one. An fsync failure
 * rejects every unconfirmed append: after a failed fsync the kernel may have dropped the dirty pages,
 * so nothing written before it can be promised.
 */
export class GroupCommit<S extends Syncable, P> {
  private waiters: Waiter[] = [];
  private waitersHead = 0;
  private dirty = new Set<S>();
  /** Files an fsync is running on now: they must stay open until it returns. */
  private syncing = new Set<S>();
  private written = 0;
  private writtenPoint: P;
  private durable = 0;
  private durablePoint: P;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastFlushStartedMs = 0;
  private failure: StorageError | null = null;
  private fsyncCount = 0;
  private fsyncSeconds = 0;
  private readonly fsyncBuckets = new Array<number>(FSYNC_BUCKET_BOUNDS_SECONDS.length + 1).fill(0);

  constructor(
    private readonly policy: FsyncPolicy,
    private readonly intervalMs: number,
    private readonly io: FileIO,
    private readonly maxWaiters: number,
    initialOffset: number,
    initialPoint: P,
    /** Called once when an fsync fails, after the waiters are rejected. */
    private readonly onFailure: (error: StorageError) => void,
  ) {
    this.written = initialOffset;
    this.durable = initialOffset;
    this.writtenPoint = initialPoint;
    this.durablePoint = initialPoint;
  }

  /** Every offset below this is durable. */
  get durableOffset(): number {
    return this.durable;
  }

  /** The caller's description (file and position) of the durable end, for the recovery checkpoint. */
  get durableEnd(): P {
    return this.durablePoint;
  }

  /** A copy of the fsync timings (for metrics). */
  get fsyncTimings(): FsyncTimings {
    return { count: this.fsyncCount, totalSeconds: this.fsyncSeconds, bounds: FSYNC_BUCKET_BOUNDS_SECONDS, buckets: [...this.fsyncBuckets] };
  }

  get pendingAppends(): number {
    return this.waiters.length - this.waitersHead;
  }

  get hasRoom(): boolean {
    return this.pendingAppends < this.maxWaiters;
  }

  /** Record that `file` now holds data up to offset `nextOffset` (exclusive), described by `point`. */
  noteWrite(file: S, nextOffset: number, point: P): void {
    this.written = nextOffset;
    this.writtenPoint = point;
    this.dirty.add(file);
    if (this.policy === 'never') {
      // Confirmed at once; the data is still fsynced by flush() and close().
      this.durable = nextOffset;
      this.durablePoint = point;
      return;
    }
    this.schedule();
  }

  /** True while `file` has data not yet covered by an fsync, or an fsync is running on it. */
  isDirty(file: S): boolean {
    return this.dirty.has(file) || this.syncing.has(file);
  }

  /**
   * Whether `file` may be deleted now. Under `never` its unsynced data is already confirmed and
   * only `flush` would sync it, so only a running fsync holds it; otherwise any pending data does.
   */
  canRelease(file: S): boolean {
    return this.policy === 'never' ? !this.syncing.has(file) : !this.isDirty(file);
  }

  /** `file` is being deleted: no later fsync may touch it. */
  forget(file: S): void {
    this.dirty.delete(file);
  }

  /** A promise that resolves once every offset below `upTo` is durable. */
  waitFor(upTo: number): Promise<void> {
    if (this.durable >= upTo) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
  }

  /** Make everything written so far durable now, whatever the policy's window. */
  async flush(): Promise<void> {
    this.clearTimer();
    while (this.durable < this.written || this.running || this.dirty.size > 0) {
      if (this.failure) throw this.failure;
      await (this.running ?? this.start());
    }
    if (this.failure) throw this.failure;
  }

  /** Stop scheduling fsyncs (close). Pending waiters stay until `flush` or `abandon`. */
  stop(): void {
    this.clearTimer();
  }

  /** Reject every unconfirmed append with `error` (closing a failed log). */
  abandon(error: StorageError): void {
    this.clearTimer();
    this.rejectAll(error);
  }

  private schedule(): void {
    if (this.running || this.timer || this.failure) return;
    if (this.policy === 'always') {
      void this.start();
      return;
    }
    const wait = Math.max(0, this.lastFlushStartedMs + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.start();
    }, wait);
  }

  private start(): Promise<void> {
    this.running = this.fsyncOnce().finally(() => {
      this.running = null;
      if (this.durable < this.written) this.schedule();
    });
    return this.running;
  }

  private async fsyncOnce(): Promise<void> {
    if (this.failure) return;
    const target = this.written;
    const point = this.writtenPoint;
    const files = [...this.dirty];
    this.dirty.clear();
    this.syncing = new Set(files);
    this.lastFlushStartedMs = Date.now();
    try {
      const started = performance.now();
      await Promise.all(files.map((file) => this.io.fsync(file.descriptor())));
      if (files.length > 0) this.recordFsync((performance.now() - started) / 1000);
      this.syncing.clear();
    } catch (cause) {
      this.syncing.clear();
      const error = new StorageError('FSYNC_FAILED', `fsync failed (${errnoCode(cause)}); unconfirmed appends were not stored durably`, { cause });
      this.failure = error;
      this.rejectAll(error);
      this.onFailure(error);
      return;
    }
    if (target > this.durable) {
      this.durable = target;
      this.durablePoint = point;
    }
    this.resolveUpTo(this.durable);
  }

  /** One fsync of the files written since the previous one (run in parallel: timed as one). */
  private recordFsync(seconds: number): void {
    this.fsyncCount++;
    this.fsyncSeconds += seconds;
    let bucket = 0;
    while (bucket < FSYNC_BUCKET_BOUNDS_SECONDS.length && seconds > FSYNC_BUCKET_BOUNDS_SECONDS[bucket]!) bucket++;
    this.fsyncBuckets[bucket]!++;
  }

  private resolveUpTo(durable: number): void {
    while (this.waitersHead < this.waiters.length && this.waiters[this.waitersHead]!.upTo <= durable) {
      this.waiters[this.waitersHead++]!.resolve();
    }
    if (this.waitersHead === this.waiters.length) {
      this.waiters = [];
      this.waitersHead = 0;
    } else if (this.waitersHead > 1024 && this.waitersHead * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.waitersHead);
      this.waitersHead = 0;
    }
  }

  private rejectAll(error: StorageError): void {
    const pending = this.waiters.slice(this.waitersHead);
    this.waiters = [];
    this.waitersHead = 0;
    for (const waiter of pending) waiter.reject(error);
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
