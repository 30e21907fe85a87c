import crypto from 'node:crypto';
import fs from 'node:fs';
import { CompactedSegmentWriter, type CompactionOutput } from './compaction-output.js';
import { DEFAULT_COMPACTION_IO_BYTES_PER_SECOND, DropRangeCursor, resolveChunkBytes, type CompactionTask, type SegmentSnapshot } from './compaction-plan.js';
import { StorageError, errnoCode } from './errors.js';
import { IoThrottle } from './io-throttle.js';
import { KeyMap, type KeyExtractor } from './key-compaction.js';
import type { LogRecord } from './record.js';
import { SegmentRecordReader, type RecordChunk } from './segment-record-reader.js';

/** Where a compaction is; reported at most every PROGRESS_EVERY_MS and at each segment's end. */
export interface CompactionProgress {
  taskId: string;
  /** keys: building the key map; tombstones: checking older segments for tombstones' keys; rewrite: writing. */
  phase: 'keys' | 'tombstones' | 'rewrite';
  /** Segment files read to the end so far, over all phases, and in all (grows if the tombstone check runs). */
  segmentsDone: number;
  segmentsTotal: number;
  /** Bytes of segment files gone through so far, and in all (same accounting). */
  bytesDone: number;
  bytesTotal: number;
}

export interface RewriteOptions {
  /** Compaction key of a record; needed when the plan asks for key compaction. */
  keyOf?: KeyExtractor;
  /** Extra policy: a record it returns false for is dropped. */
  keep?: (record: LogRecord) => boolean;
  /**
   * Key compaction drops a record it finds superseded or an expired tombstone only if this allows it
   * (e.g. the engine's "every subscriber has settled it"); default: always.
   */
  mayDropByKey?: (record: LogRecord, reason: 'superseded' | 'expired-tombstone') => boolean;
  /**
   * Per-record tombstone expiry, on top of the plan's `tombstoneBeforeTimestamp` (both must agree);
   * default: the plan's bound alone.
   */
  tombstoneExpired?: (record: LogRecord) => boolean;
  onProgress?: (progress: CompactionProgress) => void;
  /** Budget for reads plus writes, bytes per second (default 32 MiB/s; Infinity: unthrottled). */
  ioBytesPerSecond?: number;
  /** Size of each read and write (default 256 KiB, 64 KiB..16 MiB). */
  chunkBytes?: number;
  /** Sync the new file every this many bytes written (default: every chunk; 0: only at the end). */
  syncEveryBytes?: number;
  signal?: AbortSignal;
}

export interface KeyCompactionReport {
  keysTracked: number;
  keyMapBytes: number;
  /** False when the key map filled: records from `coveredBefore` on whose key was not tracked were kept. */
  complete: boolean;
  coveredBefore: number | null;
  /** Expired tombstones kept because an older record of their key is still in the log. */
  tombstonesKept: number;
}

export interface CompactionResult {
  taskId: string;
  dir: string;
  /** The segments rewritten, as planned (an install checks they are still the log's). */
  group: SegmentSnapshot[];
  /** The new segment; null when nothing would change (one segment, nothing dropped): nothing to install. */
  output: CompactionOutput | null;
  bytesBefore: number;
  bytesAfter: number;
  recordsBefore: number;
  recordsKept: number;
  recordsDropped: number;
  dropped: { byRange: number; byKey: number; tombstones: number; byPredicate: number };
  keyCompaction: KeyCompactionReport | null;
  /** All bytes read (the group once or twice, other segments for keys) and written. */
  bytesRead: number;
  bytesWritten: number;
  /** Time spent waiting for the I/O budget. */
  throttledMs: number;
  durationMs: number;
}

const PROGRESS_EVERY_MS = 100;

/** A fresh task id: 16 hex digits. */
export function newCompactionTaskId(): string {
  return crypto.randomBytes(8).toString('hex');
}

/**
 * Rewrite the task's segments into one new segment file under a temporary name (see
 * CompactedSegmentWriter), keeping the records that are in no drop range, pass `keep`, and (with key
 * compaction) are not superseded by a newer record of their key nor expired tombstones. Kept records
 * are copied byte for byte. Touches no file of the log itself: `Log.installCompaction` swaps the
 * result in. Runs anywhere (the compaction worker thread in the engine); throttled by the I/O budget.
 */
export async function rewriteSegments(task: CompactionTask, options: RewriteOptions = {}): Promise<CompactionResult> {
  const started = performance.now();
  const keyPlan = task.plan.keyCompaction;
  if (keyPlan && !options.keyOf) throw new StorageError('INVALID_ARGUMENT', 'the plan asks for key compaction but no key extractor was given');
  const chunkBytes = resolveChunkBytes(options.chunkBytes);
  const run = new RewriteRun(task, options, new IoThrottle(options.ioBytesPerSecond ?? DEFAULT_COMPACTION_IO_BYTES_PER_SECOND, chunkBytes), chunkBytes);
  const groupBytes = task.group.reduce((sum, s) => sum + s.sizeBytes, 0);
  run.plan(task.group.length, groupBytes);
  if (keyPlan) run.plan(task.group.length + task.later.length, groupBytes + task.later.reduce((sum, s) => sum + s.sizeBytes, 0));

  let keys: KeyMap | null = null;
  let tombstonesKept = 0;
  if (keyPlan) {
    const keyOf = options.keyOf!;
    const map = new KeyMap(keyPlan.maxKeys, keyPlan.maxKeyBytes);
    keys = map;
    const expired = (record: LogRecord) =>
      record.timestamp < keyPlan.tombstoneBeforeTimestamp && (options.tombstoneExpired ? options.tombstoneExpired(record) : true);
    for (const segment of task.group) {
      await run.scan(segment, 'keys', true, (chunk, i) => {
        const record = chunk.record(i);
        const key = keyOf(record);
        if (key) map.noteRewritten(key, record.offset, key.tombstone && expired(record));
      });
    }
    for (const segment of task.later) {
      await run.scan(segment, 'keys', true, (chunk, i) => {
        const record = chunk.record(i);
        const key = keyOf(record);
        if (key) map.noteLater(key, record.offset);
      });
    }
    const candidates = map.tombstoneCandidates();
    const before = candidates.size;
    // Older segments are read only while some expired tombstone still waits for the answer.
    for (const segment of task.earlier) {
      if (candidates.size === 0) break;
      run.plan(1, segment.sizeBytes);
      await run.scan(segment, 'tombstones', false, (chunk, i) => {
        const key = keyOf(chunk.record(i));
        if (key && candidates.has(key.key)) map.olderRecordFound(key.key);
      });
    }
    tombstonesKept = before - candidates.size;
  }

  const first = task.group[0]!;
  const last = task.group[task.group.length - 1]!;
  // Index room for the output as the loader computes it (a merge may be larger than segmentBytes).
  const capacityBytes = Math.max(task.segmentBytes, groupBytes);
  const syncEveryBytes = options.syncEveryBytes ?? chunkBytes;
  const writer = new CompactedSegmentWriter(task.dir, task.taskId, first.baseOffset, last.endOffset, capacityBytes, task.indexIntervalBytes, chunkBytes, syncEveryBytes);
  run.writer = writer;
  const dropped = { byRange: 0, byKey: 0, tombstones: 0, byPredicate: 0 };
  let recordsBefore = 0;
  let output: CompactionOutput | null;
  try {
    const ranges = new DropRangeCursor(task.plan.dropRanges);
    for (const segment of task.group) {
      await run.scan(segment, 'rewrite', true, (chunk, i) => {
        recordsBefore++;
        if (ranges.covers(chunk.offset(i))) {
          dropped.byRange++;
          return;
        }
        // Built only for the policy callbacks: copying needs no record object.
        const record = options.keep || keys ? chunk.record(i) : null;
        if (options.keep && !options.keep(record!)) {
          dropped.byPredicate++;
          return;
        }
        if (keys && record) {
          const key = options.keyOf!(record);
          const decision = key ? keys.decide(key, record.offset) : 'keep';
          if (decision !== 'keep') {
            if (!options.mayDropByKey || options.mayDropByKey(record, decision)) {
              if (decision === 'superseded') dropped.byKey++;
              else dropped.tombstones++;
              return;
            }
            // Kept after all: a tombstone of its key later in these segments must stay too.
            keys.olderRecordFound(key!.key);
          }
        }
        writer.add(chunk, i);
      });
    }
    const anyDropped = dropped.byRange + dropped.byKey + dropped.tombstones + dropped.byPredicate > 0;
    if (!anyDropped && task.group.length === 1) {
      writer.discard();
      output = null;
    } else {
      output = writer.finish();
    }
    await run.settleWrites();
  } catch (error) {
    writer.discard();
    throw error;
  }
  const recordsDropped = dropped.byRange + dropped.byKey + dropped.tombstones + dropped.byPredicate;
  return {
    taskId: task.taskId,
    dir: task.dir,
    group: task.group,
    output,
    bytesBefore: groupBytes,
    bytesAfter: output ? output.sizeBytes : groupBytes,
    recordsBefore,
    recordsKept: recordsBefore - recordsDropped,
    recordsDropped,
    dropped,
    keyCompaction: keys
      ? { keysTracked: keys.size, keyMapBytes: keys.bytes, complete: keys.coveredBefore === null, coveredBefore: keys.coveredBefore, tombstonesKept }
      : null,
    bytesRead: run.bytesRead,
    bytesWritten: run.bytesWritten,
    throttledMs: run.throttle.waitedMs,
    durationMs: performance.now() - started,
  };
}

/** The I/O side of one rewrite: chunked, checked, throttled reads, and progress. */
class RewriteRun {
  writer: CompactedSegmentWriter | null = null;
  bytesRead = 0;
  bytesWritten = 0;
  private segmentsDone = 0;
  private segmentsTotal = 0;
  private bytesDone = 0;
  private bytesTotal = 0;
  private lastReport = 0;

  constructor(
    private readonly task: CompactionTask,
    private readonly options: RewriteOptions,
    readonly throttle: IoThrottle,
    private readonly chunkBytes: number,
  ) {}

  plan(segments: number, bytes: number): void {
    this.segmentsTotal += segments;
    this.bytesTotal += bytes;
  }

  /**
   * Read every record of `segment` up to its snapshot size and hand it to `visit`. A segment being
   * rewritten must be exactly as planned; one that is gone (`required` false) counts as empty.
   */
  async scan(segment: SegmentSnapshot, phase: CompactionProgress['phase'], required: boolean, visit: (chunk: RecordChunk, i: number) => void): Promise<void> {
    const label = `segment ${segment.baseOffset}`;
    let fd: number;
    try {
      fd = fs.openSync(segment.logPath, 'r');
    } catch (cause) {
      if (!required && errnoCode(cause) === 'ENOENT') return this.segmentDone(phase);
      throw new StorageError('COMPACTION_STALE', `${label} is gone (${errnoCode(cause)}): removed since the compaction was planned`, { cause });
    }
    try {
      const isGroup = this.task.group.includes(segment);
      if (isGroup && fs.fstatSync(fd).size !== segment.sizeBytes) {
        throw new StorageError('COMPACTION_STALE', `${label} is no longer ${segment.sizeBytes} bytes: it changed since the compaction was planned`);
      }
      const reader = new SegmentRecordReader(fd, segment.sizeBytes, this.chunkBytes, label);
      let previous = segment.baseOffset - 1;
      for (let chunk = reader.nextChunk(); chunk; chunk = reader.nextChunk()) {
        for (let i = 0; i < chunk.count; i++) {
          const offset = chunk.offset(i);
          if (offset <= previous || offset >= segment.endOffset) {
            throw new StorageError('CORRUPT_RECORD', `${label}: record with offset ${offset} out of sequence (after ${previous}, segment ends at ${segment.endOffset}); not compacted`);
          }
          previous = offset;
          visit(chunk, i);
        }
        this.writer?.endRun();
        this.bytesRead += chunk.bytesRead;
        const written = this.writer ? this.writer.takeWrittenBytes() : 0;
        this.bytesWritten += written;
        this.report(phase, chunk.bytesConsumed, false);
        const signal = this.options.signal;
        if (signal) {
          // Let a cancel request (an event) arrive even when the budget never makes us wait.
          await new Promise((resolve) => setImmediate(resolve));
          if (signal.aborted) throw new StorageError('COMPACTION_ABORTED', 'compaction was cancelled');
        }
        await this.throttle.take(chunk.bytesRead + written, signal);
      }
    } finally {
      fs.closeSync(fd);
    }
    this.segmentDone(phase);
  }

  /** Pay for the last writes (the final flush and fsync). */
  async settleWrites(): Promise<void> {
    const written = this.writer ? this.writer.takeWrittenBytes() : 0;
    this.bytesWritten += written;
    await this.throttle.take(written, this.options.signal);
  }

  private segmentDone(phase: CompactionProgress['phase']): void {
    this.segmentsDone++;
    this.report(phase, 0, true);
  }

  private report(phase: CompactionProgress['phase'], bytes: number, force: boolean): void {
    this.bytesDone += bytes;
    const onProgress = this.options.onProgress;
    if (!onProgress) return;
    const now = performance.now();
    if (!force && now - this.lastReport < PROGRESS_EVERY_MS) return;
    this.lastReport = now;
    onProgress({
      taskId: this.task.taskId,
      phase,
      segmentsDone: this.segmentsDone,
      segmentsTotal: this.segmentsTotal,
      bytesDone: this.bytesDone,
      bytesTotal: Math.max(this.bytesTotal, this.bytesDone),
    });
  }
}
