import fs from 'node:fs';
import { writeCheckpoint, writeCheckpointAsync, type Checkpoint } from './checkpoint.js';
import { CompactionCoordinator, type InstallOptions, type InstallResult, type SealedSegmentInfo } from './compaction-install.js';
import type { CompactionPlan, CompactionTask } from './compaction-plan.js';
import { StorageError, errnoCode } from './errors.js';
import { acquireDirLock } from './dir-lock.js';
import { fsyncDirectory } from './file-io.js';
import { GroupCommit, type FsyncTimings } from './group-commit.js';
import { loadSegments, type RecoveryReport } from './log-loader.js';
import { LogReader, type ReadBatch, type ReadOptions, type RecordVisitor } from './log-reader.js';
import { resolveLogOptions, type LogOptions } from './options.js';
import type { LogRecord } from './record.js';
import { prepareRecords, preparePacked, type AppendRecord, type PackedRecords } from './append-batch.js';
import { applyRetention, type RetentionResult } from './retention.js';
import { Segment, writeRecordBytes, type SegmentWrite } from './segment.js';
import type { CompactionResult } from './segment-rewriter.js';

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
}

export type LogState = 'open' | 'failed' | 'closed';

export interface SharedIndexImages {
  baseOffset: number;
  logPath: string;
  offsetIndex: SharedArrayBuffer;
  timeIndex: SharedArrayBuffer;
}

/**
 * An append-only log: a directory of segments written by one writer, read by any number of readers.
 * Appends come in batches, get consecutive offsets, and resolve once durable under the fsync policy;
 * readers see only durable records. See docs/storage.md for the formats and crash semantics.
 */
export class Log {
  readonly dir: string;
  readonly options: LogOptions;
  readonly recovery: RecoveryReport;
  private segments: Segment[];
  private readonly reader: LogReader;
  private readonly commit: GroupCommit<Segment, Checkpoint>;
  private stateValue: LogState = 'open';
  private failureCause: StorageError | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private checkpointWrite: Promise<void> | null = null;
  private checkpointedOffset: number;
  /** Segment named by the last checkpoint written: compaction only takes segments before it. */
  private checkpointedSegment: number;
  private readonly compaction: CompactionCoordinator;
  private readonly releaseLock: () => void;

  private constructor(dir: string, options: LogOptions, segments: Segment[], recovery: RecoveryReport, releaseLock: () => void) {
    this.releaseLock = releaseLock;
    this.dir = dir;
    this.options = options;
    this.segments = segments;
    this.recovery = recovery;
    const active = this.active;
    const point = this.pointOf(active);
    this.commit = new GroupCommit<Segment, Checkpoint>(
      options.fsync,
      options.fsyncIntervalMs,
      options.io,
      options.maxPendingAppends,
      active.nextOffset,
      point,
      (error) => this.fail(error),
    );
    this.checkpointedOffset = active.nextOffset;
    this.checkpointedSegment = active.baseOffset; // open() writes a checkpoint naming it
    this.compaction = new CompactionCoordinator({
      dir,
      options,
      assertUsable: () => {
        if (this.stateValue !== 'open') throw this.refusal();
      },
      segments: () => this.segments,
      replaceSegments: (index, count, replacement) => this.segments.splice(index, count, replacement),
      compactable: (s) => s.sealed && s.baseOffset < this.checkpointedSegment && this.commit.canRelease(s),
      durableEnd: () => this.commit.durableEnd,
      forget: (s) => this.commit.forget(s),
    });
    this.reader = new LogReader(
      () => this.segments,
      () => this.commit.durableOffset,
    );
  }

  /** Open (or create) the log in `dir`, recovering from a crash if the last close was not clean. */
  static async open(dir: string, options: Partial<LogOptions> = {}): Promise<Log> {
    const resolved = resolveLogOptions(options);
    fs.mkdirSync(dir, { recursive: true });
    const releaseLock = acquireDirLock(dir);
    let loaded: ReturnType<typeof loadSegments>;
    try {
      loaded = loadSegments(dir, resolved);
    } catch (error) {
      releaseLock();
      throw error;
    }
    const log = new Log(dir, resolved, loaded.segments, loaded.report, releaseLock);
    const segments = loaded.segments;
    // A recovered tail may still be only in the page cache (the process died, the machine did not):
    // make it durable before the checkpoint below vouches for it.
    for (const segment of segments.slice(-2)) fs.fsyncSync(segment.descriptor());
    // Mark the checkpoint not clean: from now on a crash must scan the tail again.
    writeCheckpoint(dir, { ...log.pointOf(log.active), clean: false });
    fsyncDirectory(dir);
    log.checkpointTimer = setInterval(() => log.maybeCheckpoint(), resolved.checkpointIntervalMs);
    log.checkpointTimer.unref();
    return log;
  }

  get state(): LogState {
    return this.stateValue;
  }

  get startOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  get nextOffset(): number {
    return this.active.nextOffset;
  }

  get durableOffset(): number {
    return this.commit.durableOffset;
  }

  get sizeBytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.size;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** The group-commit fsyncs since the log opened, and their durations. */
  get fsyncTimings(): FsyncTimings {
    return this.commit.fsyncTimings;
  }

  /** Appends written and waiting for durability. */
  get pendingAppends(): number {
    return this.commit.pendingAppends;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /**
   * Append a batch. Resolves with the batch's offsets once it is durable under the fsync policy. A
   * rejected batch was not confirmed; after a write or fsync failure the log refuses appends until reopened.
   */
  append(records: readonly AppendRecord[]): Promise<AppendResult> {
    return this.appendPrepared(() => prepareRecords(records, this.active.nextOffset, this.active.lastTimestamp, this.options.maxRecordBytes));
  }

  /** `append` of records whose bodies lie in one buffer (columns instead of an object per record). */
  appendPacked(packed: PackedRecords): Promise<AppendResult> {
    return this.appendPrepared(() => preparePacked(packed, this.active.nextOffset, this.active.lastTimestamp, this.options.maxRecordBytes));
  }

  private appendPrepared(prepare: () => SegmentWrite): Promise<AppendResult> {
    if (this.stateValue !== 'open') return Promise.reject(this.refusal());
    if (!this.commit.hasRoom) {
      return Promise.reject(new StorageError('APPEND_QUEUE_FULL', `${this.commit.pendingAppends} appends are already waiting for durability`));
    }
    let batch: SegmentWrite;
    try {
      batch = prepare();
    } catch (error) {
      return Promise.reject(error);
    }
    const baseOffset = batch.firstOffset;
    const lastOffset = baseOffset + batch.count - 1;
    try {
      this.writeBatch(batch);
    } catch (cause) {
      const error = new StorageError('WRITE_FAILED', `write to ${this.dir} failed (${errnoCode(cause)}); the batch was not stored`, { cause });
      this.fail(error);
      return Promise.reject(error);
    }
    return this.commit.waitFor(lastOffset + 1).then(() => ({ baseOffset, lastOffset }));
  }

  /** Write the batch, rolling segments by size and age between records. */
  private writeBatch(batch: SegmentWrite): void {
    const count = batch.count;
    let from = 0;
    while (from < count) {
      let segment = this.active;
      if (!segment.isEmpty && batch.timestamps[from]! - segment.firstTimestamp >= this.options.segmentMs) {
        segment = this.roll();
      }
      let bytes = segment.size;
      let to = from;
      while (to < count) {
        const next = bytes + writeRecordBytes(batch, to);
        if (next > this.options.segmentBytes && (to > from || !segment.isEmpty)) break;
        if (to > from && batch.timestamps[to]! - (segment.isEmpty ? batch.timestamps[from]! : segment.firstTimestamp) >= this.options.segmentMs) break;
        bytes = next;
        to++;
      }
      if (to === from) {
        this.roll();
        continue;
      }
      segment.write(this.options.io, batch, from, to);
      this.commit.noteWrite(segment, segment.nextOffset, this.pointOf(segment));
      from = to;
    }
  }

  /** Seal the active segment and start a new one at the next offset. */
  private roll(): Segment {
    const previous = this.active;
    previous.seal();
    const next = new Segment(this.dir, previous.nextOffset, this.options.segmentBytes, this.options.indexIntervalBytes);
    next.descriptor(); // create the file now, so the directory entry below is durable
    this.segments.push(next);
    fsyncDirectory(this.dir);
    if (this.options.retentionBytes !== null || this.options.retentionMs !== null) this.applyRetention();
    return next;
  }

  readBatch(fromOffset: number, options?: ReadOptions): ReadBatch {
    return this.reader.readBatch(fromOffset, options);
  }

  /**
   * Visit records from `fromOffset` without an object per record; each record's bytes are valid
   * only during its visit (see LogReader.scan). Returns where the next read should start.
   */
  scan(fromOffset: number, options: ReadOptions, visit: RecordVisitor): number {
    return this.reader.scan(fromOffset, options, visit);
  }

  read(fromOffset: number, options?: ReadOptions): LogRecord[] {
    return this.reader.read(fromOffset, options);
  }

  records(fromOffset: number, options?: ReadOptions): Iterable<LogRecord> {
    return this.reader.records(fromOffset, options);
  }

  offsetForTime(timestampMs: number): number | null {
    return this.reader.offsetForTime(timestampMs);
  }

  /**
   * Change retention while open (null: keep) and apply it at once. Validated like the open options.
   */
  setRetention(retention: { retentionMs: number | null; retentionBytes: number | null }): RetentionResult {
    resolveLogOptions({ ...this.options, ...retention });
    this.options.retentionMs = retention.retentionMs;
    this.options.retentionBytes = retention.retentionBytes;
    return this.applyRetention();
  }

  /**
   * Delete whole sealed segments past retention (by age of their newest record, then by total size).
   * Never the active segment, nor one whose data is still waiting for an fsync.
   */
  applyRetention(nowMs: number = Date.now()): RetentionResult {
    const result = applyRetention(this.segments, {
      nowMs,
      retentionMs: this.options.retentionMs,
      retentionBytes: this.options.retentionBytes,
      deletable: (segment) => segment.sealed && this.commit.canRelease(segment) && !this.compaction.isInstalling(segment),
    });
    if (result.segmentsDeleted > 0) {
      for (const segment of this.segments.slice(0, result.segmentsDeleted)) this.commit.forget(segment);
      this.segments = this.segments.slice(result.segmentsDeleted);
      fsyncDirectory(this.dir);
    }
    return result;
  }

  /**
   * The index images of every segment, to hand to another thread with postMessage: the buffers are
   * shared, not copied, and a view made there with OffsetIndex.attach / TimeIndex.attach sees entries
   * as this log adds them.
   */
  sharedIndexImages(): SharedIndexImages[] {
    return this.segments.map((segment) => ({
      baseOffset: segment.baseOffset,
      logPath: segment.paths.log,
      offsetIndex: segment.offsetIndex.buffer,
      timeIndex: segment.timeIndex.buffer,
    }));
  }

  /**
   * Delete whole sealed segments whose records all lie below `offset` (a journal whose head was
   * folded into a snapshot). Like retention, only a prefix goes, never the active segment.
   */
  deleteBefore(offset: number): RetentionResult {
    let count = 0;
    let bytes = 0;
    while (count < this.segments.length - 1) {
      const segment = this.segments[count]!;
      if (segment.nextOffset > offset || !segment.sealed || !this.commit.canRelease(segment) || this.compaction.isInstalling(segment)) break;
      this.commit.forget(segment);
      bytes += segment.size;
      segment.delete();
      count++;
    }
    if (count > 0) {
      this.segments = this.segments.slice(count);
      fsyncDirectory(this.dir);
    }
    return { segmentsDeleted: count, bytesDeleted: bytes };
  }

  /** The sealed segments (all but the active one), to choose compactions from. */
  sealedSegments(): SealedSegmentInfo[] {
    return this.compaction.sealedSegments();
  }

  /** Check a plan and describe the rewrite (`rewriteSegments`); one at a time, until installed or aborted. */
  prepareCompaction(plan: CompactionPlan): CompactionTask {
    return this.compaction.prepare(plan);
  }

  /** Swap a finished rewrite in atomically (docs/storage.md, "Compaction"); COMPACTION_STALE if its segments changed. */
  installCompaction(result: CompactionResult, options?: InstallOptions): Promise<InstallResult> {
    return this.compaction.install(result, options);
  }

  /** Give up a prepared compaction (its rewrite failed or was cancelled) and remove its files. */
  abortCompaction(taskId: string): void {
    this.compaction.abort(taskId);
  }

  /** Make everything appended so far durable now. */
  async flush(): Promise<void> {
    if (this.stateValue === 'closed') throw this.refusal();
    await this.commit.flush();
  }

  /**
   * Flush, write a clean checkpoint, close every file. After a failure the checkpoint is left unclean,
   * so the next open verifies the tail.
   */
  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    await this.compaction.settled(); // a swap in progress finishes first
    if ((this.stateValue as LogState) === 'closed') return; // closed by a concurrent call meanwhile
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    const wasFailed = this.stateValue === 'failed';
    let flushError: unknown = null;
    try {
      // Also after a write failure: appends written before it can still be confirmed.
      await this.commit.flush();
    } catch (error) {
      flushError = error;
    }
    this.commit.stop();
    await this.checkpointWrite;
    const closedError = new StorageError('LOG_CLOSED', `log ${this.dir} was closed before this append was confirmed`);
    this.commit.abandon(closedError);
    const clean = this.stateValue === 'open' && flushError === null;
    this.stateValue = 'closed';
    const active = this.active;
    active.offsetIndex.writeThrough();
    active.timeIndex.writeThrough();
    active.offsetIndex.seal();
    active.timeIndex.seal();
    if (clean) writeCheckpoint(this.dir, { ...this.pointOf(active), clean: true });
    for (const segment of this.segments) segment.close();
    this.releaseLock();
    // A failure that already put the log in 'failed' was reported to the appends it failed.
    if (flushError && !wasFailed) throw flushError;
  }

  /** The recovery checkpoint that describes the end of `segment` as written now. */
  private pointOf(segment: Segment): Checkpoint {
    return {
      clean: false,
      segmentBaseOffset: segment.baseOffset,
      position: segment.size,
      nextOffset: segment.nextOffset,
      firstTimestamp: segment.firstTimestamp,
      lastTimestamp: segment.lastTimestamp,
      lastRecordPosition: segment.lastRecordPosition,
    };
  }

  /** Rewrite the checkpoint when the durable end moved, off the append path. */
  private maybeCheckpoint(): void {
    if (this.stateValue !== 'open' || this.checkpointWrite) return;
    const point = this.commit.durableEnd;
    if (point.nextOffset === this.checkpointedOffset) return;
    this.checkpointWrite = writeCheckpointAsync(this.dir, point)
      .then(
        () => {
          this.checkpointedOffset = point.nextOffset;
          this.checkpointedSegment = point.segmentBaseOffset;
        },
        () => {
          // The old checkpoint stays valid (it is replaced by rename); recovery only scans more.
        },
      )
      .finally(() => {
        this.checkpointWrite = null;
      });
  }

  private fail(error: StorageError): void {
    if (this.stateValue !== 'open') return;
    this.stateValue = 'failed';
    this.failureCause = error;
    // Best effort: cut any partial write so the file ends at a record boundary again.
    try {
      fs.ftruncateSync(this.active.descriptor(), this.active.size);
    } catch {
      // Recovery on the next open truncates the torn tail instead.
    }
  }

  private refusal(): StorageError {
    if (this.stateValue === 'closed') return new StorageError('LOG_CLOSED', `log ${this.dir} is closed`);
    return new StorageError('LOG_FAILED', `log ${this.dir} refuses appends after an earlier failure: ${this.failureCause?.message ?? 'unknown'}; reopen it to recover`, {
      cause: this.failureCause,
    });
  }
}
