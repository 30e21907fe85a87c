import fs from 'node:fs';
import path from 'node:path';
import { MAX_SEGMENT_FILE_BYTES, MAX_SEGMENT_OFFSET_SPAN, normalizePlan, type CompactionPlan, type CompactionTask, type SegmentSnapshot } from './compaction-plan.js';
import { removeIntent, removeIntentAsync, removeMergedSegments, removeTempFiles, renameIntoPlace, writeIntentAsync, type CompactionIntent, type SwapHook } from './compaction-swap.js';
import { StorageError } from './errors.js';
import { compactionTempPaths } from './file-names.js';
import { fsyncDirectoryAsync } from './file-io.js';
import { loadSealedSegment, newRecoveryReport } from './log-loader.js';
import type { LogOptions } from './options.js';
import { Segment } from './segment.js';
import { newCompactionTaskId, type CompactionResult } from './segment-rewriter.js';

/** A sealed segment as `Log.sealedSegments()` describes it, for choosing what to compact. */
export interface SealedSegmentInfo {
  baseOffset: number;
  /** The offset after its range (the next segment's base); records may be fewer after compaction. */
  nextOffset: number;
  sizeBytes: number;
  /** Timestamp of the first indexed record and of the newest record; -1 when empty. */
  firstTimestamp: number;
  lastTimestamp: number;
  /** Whether a compaction may take it now: durable, behind the checkpoint, and no compaction prepared. */
  compactable: boolean;
}

export interface InstallResult {
  installed: boolean;
  /** Why nothing was installed (the rewrite dropped nothing from a single segment). */
  reason?: string;
  segmentsReplaced: number;
  bytesBefore: number;
  bytesAfter: number;
  durationMs: number;
}

export interface InstallOptions {
  /** Called after each step of the swap (fault injection in tests; progress). */
  onSwapStep?: SwapHook;
}

/** What the coordinator needs of its log (implemented by Log). */
export interface CompactionHost {
  readonly dir: string;
  readonly options: LogOptions;
  /** Throws the log's refusal (closed or failed) if it cannot take a compaction now. */
  assertUsable(): void;
  segments(): readonly Segment[];
  replaceSegments(index: number, count: number, replacement: Segment): void;
  /** Sealed, no fsync pending on it, and behind the segment the last written checkpoint names. */
  compactable(segment: Segment): boolean;
  /** Durable end: the segment holding it and the bytes of it that are durable. */
  durableEnd(): { segmentBaseOffset: number; position: number; nextOffset: number };
  forget(segment: Segment): void;
}

/**
 * The storage side of compaction for one log: prepares tasks from plans, installs their results with
 * the atomic swap of compaction-swap.ts, and keeps the rules:
 * - one compaction prepared at a time (until installed or aborted);
 * - only sealed segments whose data is durable and which lie before the segment the last written
 *   checkpoint names (recovery trusts the checkpointed segment's byte positions; a compacted segment is
 *   never that one);
 * - an install goes through only over the very segment objects the task read (retention or a reopen
 *   in between makes it stale), and retention leaves those segments alone while the swap runs.
 */
export class CompactionCoordinator {
  private lease: string | null = null;
  private installing = new Set<Segment>();
  private running: Promise<unknown> | null = null;
  private broken: StorageError | null = null;

  constructor(private readonly host: CompactionHost) {}

  sealedSegments(): SealedSegmentInfo[] {
    const segments = this.host.segments();
    return segments.slice(0, -1).map((segment) => ({
      baseOffset: segment.baseOffset,
      nextOffset: segment.nextOffset,
      sizeBytes: segment.size,
      firstTimestamp: segment.firstTimestamp,
      lastTimestamp: segment.lastTimestamp,
      compactable: this.broken === null && this.lease === null && this.host.compactable(segment),
    }));
  }

  /** Whether retention must leave `segment` alone (a swap over it is running). */
  isInstalling(segment: Segment): boolean {
    return this.installing.has(segment);
  }

  /** Resolves once no install is running (close waits for it). */
  async settled(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  prepare(plan: CompactionPlan): CompactionTask {
    this.host.assertUsable();
    if (this.broken) throw this.broken;
    if (this.lease !== null) throw new StorageError('COMPACTION_BUSY', `a compaction of ${this.host.dir} is already prepared (task ${this.lease})`);
    const normalized = normalizePlan(plan);
    const segments = this.host.segments();
    const start = segments.findIndex((s) => s.baseOffset === normalized.segments[0]);
    if (start < 0) throw new StorageError('INVALID_ARGUMENT', `compaction plan: no segment has base offset ${normalized.segments[0]}`);
    const group = normalized.segments.map((base, i) => {
      const segment = segments[start + i];
      if (!segment || segment.baseOffset !== base) throw new StorageError('INVALID_ARGUMENT', `compaction plan: segments must be adjacent; ${base} does not follow ${normalized.segments[i - 1]}`);
      if (start + i === segments.length - 1) throw new StorageError('INVALID_ARGUMENT', `compaction plan: segment ${base} is the active segment`);
      if (!this.host.compactable(segment)) {
        throw new StorageError('INVALID_ARGUMENT', `compaction plan: segment ${base} cannot be compacted yet (not sealed, not yet durable, or not yet behind the recovery checkpoint)`);
      }
      return segment;
    });
    const end = segments[start + group.length]!.baseOffset;
    if (end - group[0]!.baseOffset - 1 > MAX_SEGMENT_OFFSET_SPAN) throw new StorageError('INVALID_ARGUMENT', 'compaction plan: merged segment would span more than 2^32 offsets');
    const bytes = group.reduce((sum, s) => sum + s.size, 0);
    if (bytes > MAX_SEGMENT_FILE_BYTES) throw new StorageError('INVALID_ARGUMENT', `compaction plan: merging ${bytes} bytes exceeds the largest segment file (${MAX_SEGMENT_FILE_BYTES} bytes)`);
    const snapshot = (segment: Segment, index: number, sizeBytes = segment.size): SegmentSnapshot => ({
      id: segment.id,
      baseOffset: segment.baseOffset,
      endOffset: index + 1 < segments.length ? segments[index + 1]!.baseOffset : this.host.durableEnd().nextOffset,
      sizeBytes,
      logPath: segment.paths.log,
    });
    const later: SegmentSnapshot[] = [];
    const earlier: SegmentSnapshot[] = [];
    if (normalized.keyCompaction) {
      const durable = this.host.durableEnd();
      for (let i = start + group.length; i < segments.length && segments[i]!.baseOffset <= durable.segmentBaseOffset; i++) {
        const segment = segments[i]!;
        later.push(snapshot(segment, i, segment.baseOffset === durable.segmentBaseOffset ? durable.position : segment.size));
      }
      for (let i = 0; i < start; i++) earlier.push(snapshot(segments[i]!, i));
    }
    const taskId = newCompactionTaskId();
    this.lease = taskId;
    return {
      taskId,
      dir: this.host.dir,
      plan: normalized,
      group: group.map((segment, i) => snapshot(segment, start + i)),
      earlier,
      later,
      segmentBytes: this.host.options.segmentBytes,
      indexIntervalBytes: this.host.options.indexIntervalBytes,
    };
  }

  /** Give up a prepared compaction: release it and remove whatever it wrote (not while it is being installed). */
  abort(taskId: string): void {
    if (this.lease === taskId) {
      if (this.running) return;
      this.lease = null;
    }
    // The temporary files are named after the group's first segment, which a task id alone does not say.
    for (const name of fs.readdirSync(this.host.dir)) {
      if (name.endsWith(`.compacting-${taskId}`)) fs.rmSync(path.join(this.host.dir, name), { force: true });
    }
  }

  install(result: CompactionResult, options: InstallOptions = {}): Promise<InstallResult> {
    const started = performance.now();
    const hook = options.onSwapStep ?? (() => {});
    const base = result.group[0]?.baseOffset ?? 0;
    const stale = (why: string) => {
      if (this.lease === result.taskId) this.lease = null;
      removeTempFiles(this.host.dir, base, result.taskId);
      return new StorageError('COMPACTION_STALE', `compaction ${result.taskId} of segment ${base} cannot be installed: ${why}`);
    };
    if (this.running) return Promise.reject(new StorageError('COMPACTION_BUSY', 'another compaction is being installed'));
    if (this.lease !== result.taskId) return Promise.reject(stale('it is not the compaction prepared on this log (reopened, or aborted)'));
    try {
      this.host.assertUsable();
      if (this.broken) throw this.broken;
    } catch (error) {
      this.lease = null;
      removeTempFiles(this.host.dir, base, result.taskId);
      return Promise.reject(error);
    }
    const problem = this.checkGroup(result);
    if (problem) return Promise.reject(stale(problem));
    const output = result.output;
    const summary = { segmentsReplaced: result.group.length, bytesBefore: result.bytesBefore };
    if (!output) {
      this.lease = null;
      return Promise.resolve({ installed: false, reason: 'nothing to drop', ...summary, bytesAfter: result.bytesBefore, durationMs: performance.now() - started });
    }
    const temp = compactionTempPaths(this.host.dir, base, result.taskId);
    if (fileSize(temp.log) !== output.sizeBytes || fileSize(temp.offsetIndex) < 0 || fileSize(temp.timeIndex) < 0) {
      return Promise.reject(stale('its rewritten files are missing or incomplete'));
    }
    const group = this.currentGroup(result)!;
    // Reads during the awaits below go to the old files through descriptors opened now, before any rename.
    for (const segment of group) segment.descriptor();
    this.installing = new Set(group);
    const intent: CompactionIntent = {
      taskId: result.taskId,
      baseOffset: base,
      mergedBases: result.group.slice(1).map((s) => s.baseOffset),
      logBytes: output.sizeBytes,
      logCrc: output.logCrc,
    };
    const running = this.swap(result, intent, hook).then(
      () => ({ installed: true, ...summary, bytesAfter: output.sizeBytes, durationMs: performance.now() - started }),
    );
    this.running = running.finally(() => {
      this.running = null;
      this.lease = null;
    });
    return running;
  }

  private async swap(result: CompactionResult, intent: CompactionIntent, hook: SwapHook): Promise<void> {
    const dir = this.host.dir;
    let renamed = false;
    try {
      await writeIntentAsync(dir, intent);
      hook('intent-written');
      const problem = this.checkUsable() ?? this.checkGroup(result);
      if (problem) {
        // Nothing renamed yet: undo (intent first, so a crash now leaves only leftovers to remove).
        removeIntent(dir);
        removeTempFiles(dir, intent.baseOffset, intent.taskId);
        throw new StorageError('COMPACTION_STALE', `compaction ${intent.taskId} of segment ${intent.baseOffset} cannot be installed: ${problem}`);
      }
      const index = this.host.segments().findIndex((s) => s.id === result.group[0]!.id);
      const old = this.host.segments().slice(index, index + result.group.length);
      renamed = true;
      renameIntoPlace(dir, intent, hook);
      removeMergedSegments(dir, intent, hook);
      // Index room as the loader gives it on the next open: a merge may be larger than segmentBytes.
      const replacement = new Segment(dir, intent.baseOffset, Math.max(this.host.options.segmentBytes, intent.logBytes), this.host.options.indexIntervalBytes);
      loadSealedSegment(replacement, newRecoveryReport());
      replacement.nextOffset = result.group[result.group.length - 1]!.endOffset;
      this.host.replaceSegments(index, old.length, replacement);
      for (const segment of old) {
        this.host.forget(segment);
        segment.closeInBackground(); // its renamed-over or deleted file is freed off this thread
      }
      this.installing = new Set();
      // Off the owner's thread: the swap is already final (the intent makes recovery finish it).
      await fsyncDirectoryAsync(dir);
      hook('directory-synced');
      await removeIntentAsync(dir);
      hook('intent-removed');
    } catch (error) {
      if (renamed) {
        // Past the point of no return: the intent stays and the next open finishes the swap. Until then
        // this log reads what it has open (the old files if the list was not swapped yet) and takes no
        // further compaction.
        this.broken = new StorageError('COMPACTION_FAILED', `a compaction swap in ${dir} failed after its point of no return (${(error as Error).message}); reopen the log to finish it`, { cause: error });
        throw this.broken;
      }
      this.installing = new Set();
      throw error;
    }
  }

  private checkUsable(): string | null {
    try {
      this.host.assertUsable();
      return null;
    } catch (error) {
      return (error as Error).message;
    }
  }

  /** The log's current segments that the result was computed from, or null if they changed. */
  private currentGroup(result: CompactionResult): Segment[] | null {
    const segments = this.host.segments();
    const index = segments.findIndex((s) => s.id === result.group[0]?.id);
    if (index < 0 || index + result.group.length >= segments.length) return null;
    const group = segments.slice(index, index + result.group.length);
    return group.every((segment, i) => segment.id === result.group[i]!.id && segment.size === result.group[i]!.sizeBytes) ? group : null;
  }

  private checkGroup(result: CompactionResult): string | null {
    const group = this.currentGroup(result);
    if (!group) return 'its segments were removed or replaced since it was planned';
    if (!group.every((segment) => this.host.compactable(segment))) return 'its segments are no longer compactable';
    return null;
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return -1;
  }
}
