import type { CompactionProgress, CompactionResult, InstallResult } from '../../../native-free-storage/index.js';
import type { Logger } from '../../observability/logger.js';
import type { WorkBoard, WorkProgress } from '../../observability/work-progress.js';
import { CompactionPool } from './compaction-pool.js';
import type { ShardPool } from '../shard-pool.js';
import type { PreparedCompaction } from '../shard/shard-compaction.js';
import type { CompactionSettings } from './compaction-settings.js';

/** One compaction done: what it rewrote and what it reclaimed. */
export interface CompactionReport {
  shard: number;
  reason: PreparedCompaction['reason'];
  /** Base offsets of the segments rewritten (more than one: merged). */
  segments: number[];
  installed: boolean;
  bytesBefore: number;
  bytesAfter: number;
  recordsKept: number;
  recordsDropped: number;
  durationMs: number;
  finishedAt: number;
}

/** Totals since the engine opened (for metrics). */
export interface CompactionTotals {
  runs: number;
  compactions: number;
  failures: number;
  bytesReclaimed: number;
  recordsRemoved: number;
  /** Compactions by reason. */
  merges: number;
  cleans: number;
}

/** Compactions of one round per shard at most: a round is bounded however much there is to do. */
const MAX_PER_SHARD_ROUND = 64;
/** Reports kept for GET /admin/compaction. */
const KEEP_REPORTS = 32;

/**
 * Runs compaction for the engine: every `checkIntervalMs`, and when asked (admin). A round goes
 * through the shards one by one; for each, the shard chooses segments (on its thread), the rewrite runs
 * in the compaction pool (its own thread, throttled by the I/O budget), and the shard installs the
 * result. One round at a time; progress is reported as long work.
 */
export class CompactionRunner {
  private readonly pool: CompactionPool;
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<CompactionReport[]> | null = null;
  private closed = false;
  /** Cancels the rewrite in progress when the engine closes (it would otherwise hold the close up). */
  private readonly cancel = new AbortController();
  readonly totals: CompactionTotals = { runs: 0, compactions: 0, failures: 0, bytesReclaimed: 0, recordsRemoved: 0, merges: 0, cleans: 0 };
  private readonly reports: CompactionReport[] = [];

  constructor(
    private readonly shards: ShardPool,
    private readonly shardCount: number,
    private readonly settings: () => CompactionSettings,
    private readonly work: WorkBoard,
    private readonly logger: Logger | null,
  ) {
    this.pool = new CompactionPool({ threads: 1 });
  }

  /** The latest compactions, newest first. */
  get recent(): readonly CompactionReport[] {
    return this.reports;
  }

  get running(): boolean {
    return this.round !== null;
  }

  /** (Re)arm the periodic check with the current settings. */
  schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const every = this.settings().checkIntervalMs;
    if (this.closed || every === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.run(false)
        .catch((error: unknown) => this.logger?.error('compaction round failed', { error: error instanceof Error ? error.message : String(error) }))
        .finally(() => this.schedule());
    }, every);
    this.timer.unref();
  }

  /**
   * One round over every shard; resolves with what it did. `force` looks at every compactable segment
   * again, not only those whose removable part may have grown. A round already running is waited for
   * and then a new one runs (so what is asked after a change sees it).
   */
  async run(force: boolean): Promise<CompactionReport[]> {
    while (this.round) await this.round.catch(() => undefined);
    if (this.closed) return [];
    this.round = this.runRound(force);
    try {
      return await this.round;
    } finally {
      this.round = null;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.cancel.abort();
    await this.round?.catch(() => undefined);
    await this.pool.close();
  }

  private async runRound(force: boolean): Promise<CompactionReport[]> {
    this.totals.runs++;
    const done: CompactionReport[] = [];
    for (let shard = 0; shard < this.shardCount && !this.closed; shard++) {
      const skip: number[] = [];
      for (let i = 0; i < MAX_PER_SHARD_ROUND && !this.closed; i++) {
        const report = await this.compactOnce(shard, skip, force);
        if (!report) break;
        done.push(report);
        skip.push(report.segments[0]!);
      }
    }
    return done;
  }

  private async compactOnce(shard: number, skip: number[], force: boolean): Promise<CompactionReport | null> {
    const settings = this.settings();
    const prepared = await this.shards.run<PreparedCompaction | null>(shard, { op: 'compaction-prepare', settings, skip, force });
    if (!prepared) return null;
    const { task, context, reason } = prepared;
    const segments = task.group.map((s) => s.baseOffset);
    const started = Date.now();
    const progress: WorkProgress = {
      id: `compaction:shard-${shard}`,
      kind: 'compaction',
      shard,
      detail: `${reason === 'merge' ? 'merging' : 'compacting'} segment${segments.length > 1 ? 's' : ''} ${segments.join(', ')}`,
      done: 0,
      total: task.group.reduce((sum, s) => sum + s.sizeBytes, 0),
      unit: 'bytes',
      startedAt: started,
    };
    this.work.update(progress);
    const onProgress = (p: CompactionProgress) => this.work.update({ ...progress, detail: `${progress.detail} (${p.phase})`, done: p.bytesDone, total: p.bytesTotal });
    let result: CompactionResult;
    let installed: InstallResult | null;
    try {
      result = await this.pool.run(task, { onProgress, ioBytesPerSecond: settings.ioBytesPerSecond, rules: context, signal: this.cancel.signal });
    } catch (error) {
      await this.shards.run(shard, { op: 'compaction-install', taskId: task.taskId, result: null }).catch(() => undefined);
      this.failed(progress, error);
      throw error;
    }
    try {
      installed = await this.shards.run<InstallResult | null>(shard, { op: 'compaction-install', taskId: task.taskId, result });
    } catch (error) {
      this.failed(progress, error);
      throw error;
    }
    const report: CompactionReport = {
      shard,
      reason,
      segments,
      installed: installed?.installed ?? false,
      bytesBefore: result.bytesBefore,
      bytesAfter: installed?.installed ? result.bytesAfter : result.bytesBefore,
      recordsKept: result.recordsKept,
      recordsDropped: installed?.installed ? result.recordsDropped : 0,
      durationMs: Date.now() - started,
      finishedAt: Date.now(),
    };
    this.count(report);
    this.work.update({ ...progress, done: progress.total ?? 0, finishedAt: report.finishedAt });
    if (report.installed) this.logger?.info('compacted', { ...report });
    return report;
  }

  private count(report: CompactionReport): void {
    this.totals.compactions++;
    if (report.reason === 'merge') this.totals.merges++;
    else this.totals.cleans++;
    this.totals.bytesReclaimed += report.bytesBefore - report.bytesAfter;
    this.totals.recordsRemoved += report.recordsDropped;
    this.reports.unshift(report);
    if (this.reports.length > KEEP_REPORTS) this.reports.pop();
  }

  private failed(progress: WorkProgress, error: unknown): void {
    this.totals.failures++;
    this.work.update({ ...progress, finishedAt: Date.now(), error: error instanceof Error ? error.message : String(error) });
  }
}
