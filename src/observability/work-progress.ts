/**
 * Progress of long work (recovery of a shard's log, a replay, a compaction), reported by whoever
 * does it and shown in the log and in /health. Work that ends within `quietMs` leaves no log line:
 * a quick start or a small replay is not news; a slow one is, while it runs and when it ends.
 */
import type { Logger } from './logger.js';

export type WorkKind = 'recovery' | 'replay' | 'compaction';

/** One report about one piece of work; later reports of the same `id` replace earlier ones. */
export interface WorkProgress {
  /** Stable for the life of the work (`recovery:shard-0`, `replay:<subscription>:0`…). */
  id: string;
  kind: WorkKind;
  /** Shard doing it, or -1 for work outside the shards. */
  shard: number;
  /** What is being done now, in words (`scanning the log for scheduled events`). */
  detail: string;
  /** Units done so far, and in all when known (null: not known in advance). */
  done: number;
  total: number | null;
  unit: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** Set on the last report: the work is over. */
  finishedAt?: number;
  /** Set when it ended in failure. */
  error?: string;
}

export interface WorkBoardOptions {
  /** Work running longer than this is logged (started, progress, finished). */
  quietMs?: number;
  /** At most one progress line per work this often. */
  logEveryMs?: number;
  /** Finished work kept for /health. */
  keepFinished?: number;
  /** Bound on work followed at once; past it the oldest is dropped from view (not stopped). */
  maxActive?: number;
  now?: () => number;
}

interface Followed {
  progress: WorkProgress;
  logged: boolean;
  lastLogAt: number;
}

export interface WorkBoardView {
  active: WorkProgress[];
  /** The most recent finished work, newest first. */
  finished: WorkProgress[];
}

export class WorkBoard {
  private readonly active = new Map<string, Followed>();
  private readonly finished: WorkProgress[] = [];
  private readonly quietMs: number;
  private readonly logEveryMs: number;
  private readonly keepFinished: number;
  private readonly maxActive: number;
  private readonly now: () => number;

  constructor(
    private readonly logger: Logger | null,
    options: WorkBoardOptions = {},
  ) {
    this.quietMs = options.quietMs ?? 1000;
    this.logEveryMs = options.logEveryMs ?? 5000;
    this.keepFinished = options.keepFinished ?? 16;
    this.maxActive = options.maxActive ?? 256;
    this.now = options.now ?? Date.now;
  }

  /**
   * Take a report. Reports of one piece of work may come by two routes (a message and a result):
   * one about work already finished is ignored.
   */
  update(progress: WorkProgress): void {
    if (this.finished.some((f) => f.id === progress.id && f.startedAt === progress.startedAt)) return;
    const now = this.now();
    let followed = this.active.get(progress.id);
    if (!followed) {
      if (this.active.size >= this.maxActive) this.active.delete(this.active.keys().next().value!);
      followed = { progress, logged: false, lastLogAt: now };
      this.active.set(progress.id, followed);
    }
    followed.progress = progress;
    if (progress.finishedAt !== undefined) {
      this.active.delete(progress.id);
      this.finished.unshift(progress);
      if (this.finished.length > this.keepFinished) this.finished.pop();
      if (followed.logged || progress.finishedAt - progress.startedAt >= this.quietMs || progress.error) this.logEnd(progress);
      return;
    }
    if (now - progress.startedAt < this.quietMs) return;
    if (!followed.logged) {
      followed.logged = true;
      followed.lastLogAt = now;
      this.logger?.info('long work running', fieldsOf(progress, now));
    } else if (now - followed.lastLogAt >= this.logEveryMs) {
      followed.lastLogAt = now;
      this.logger?.info('long work progress', fieldsOf(progress, now));
    }
  }

  view(): WorkBoardView {
    return { active: [...this.active.values()].map((f) => f.progress), finished: [...this.finished] };
  }

  /** Work of `shard` still running ends unfinished: the thread doing it is gone. */
  abandonShard(shard: number, reason: string): void {
    const now = this.now();
    for (const { progress } of [...this.active.values()]) {
      if (progress.shard === shard) this.update({ ...progress, finishedAt: now, error: reason });
    }
  }

  /** Whether any work of `kind` is running (recovery: the engine is not open yet). */
  running(kind: WorkKind): boolean {
    for (const { progress } of this.active.values()) if (progress.kind === kind) return true;
    return false;
  }

  private logEnd(progress: WorkProgress): void {
    const fields = fieldsOf(progress, progress.finishedAt!);
    if (progress.error) this.logger?.warn('long work failed', fields);
    else this.logger?.info('long work finished', fields);
  }
}

function fieldsOf(progress: WorkProgress, now: number): Record<string, unknown> {
  const { id, kind, shard, detail, done, total, unit, error } = progress;
  return {
    work: id,
    kind,
    shard,
    detail,
    done,
    ...(total !== null ? { total, percent: total > 0 ? Math.min(100, Math.round((done / total) * 1000) / 10) : 100 } : {}),
    unit,
    elapsedMs: now - progress.startedAt,
    ...(error ? { error } : {}),
  };
}
