import type { WorkKind, WorkProgress } from '../../observability/work-progress.js';

/** Where a shard's progress reports go (the worker posts them to the engine's thread). */
export type WorkSink = (progress: WorkProgress) => void;

/** Progress reports cross threads at most this often per work, however often `advance` is called. */
const REPORT_EVERY_MS = 500;

/** One piece of long work in a shard, reporting as it goes. */
export class WorkHandle {
  private lastSentAt = 0;
  private ended = false;
  private readonly progress: WorkProgress;

  constructor(
    private readonly sink: WorkSink,
    id: string,
    kind: WorkKind,
    shard: number,
    detail: string,
    total: number | null,
    unit: string,
  ) {
    this.progress = { id, kind, shard, detail, done: 0, total, unit, startedAt: Date.now() };
    this.send(Date.now());
  }

  /** A new step of the same work (recovery goes through several scans). */
  step(detail: string, total: number | null, unit: string): void {
    Object.assign(this.progress, { detail, total, unit, done: 0 });
    this.send(Date.now());
  }

  advance(done: number): void {
    this.progress.done = done;
    const now = Date.now();
    if (now - this.lastSentAt >= REPORT_EVERY_MS) this.send(now);
  }

  finish(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.progress.finishedAt = Date.now();
    // A scan's last records go by between two reports: finished is all of it.
    if (error === undefined && this.progress.total !== null) this.progress.done = this.progress.total;
    if (error !== undefined) this.progress.error = error instanceof Error ? error.message : String(error);
    this.send(this.progress.finishedAt);
  }

  get finished(): boolean {
    return this.ended;
  }

  /** The latest report (a copy). */
  get latest(): WorkProgress {
    return { ...this.progress };
  }

  private send(now: number): void {
    this.lastSentAt = now;
    this.sink({ ...this.progress });
  }
}

/** Told the offsets `[from, to)` a scan covers; returns what to call with each record's offset. */
export type ScanProgress = (from: number, to: number) => (offset: number) => void;

/** For scans nobody follows. */
export const UNFOLLOWED_SCAN: ScanProgress = () => () => {};

/**
 * A scan over log offsets `[from, to)` reporting as records go by; a function so scanning loops
 * stay plain. Checks the clock only every few thousand records.
 */
export function offsetScanProgress(work: WorkHandle, detail: string): ScanProgress {
  return (from, to) => {
    work.step(detail, Math.max(0, to - from), 'offsets');
    let seen = 0;
    return (offset) => {
      if ((++seen & 4095) === 0) work.advance(Math.max(0, offset - from));
    };
  };
}
