import fs from 'node:fs';
import path from 'node:path';
import { readCheckpoint, type Checkpoint } from './checkpoint.js';
import { recoverCompaction } from './compaction-recovery.js';
import { CHECKPOINT_TEMP_FILE, LOG_SUFFIX, parseSegmentFileName, segmentFileStem } from './file-names.js';
import { Segment } from './segment.js';

/** What opening a log did, for logs and metrics. */
export interface RecoveryReport {
  /** The log was closed cleanly: nothing was scanned. */
  clean: boolean;
  /** Bytes of log read and checksum-verified during recovery. */
  scannedBytes: number;
  /** Bytes cut off torn or corrupt tails. */
  truncatedBytes: number;
  /** Segments whose index files were rebuilt from the log. */
  indexesRebuilt: number;
  /** Segments dropped because they followed a torn or corrupt record. */
  segmentsDropped: number;
  durationMs: number;
  /** Human-readable notes on anything that was repaired. */
  repairs: string[];
}

export interface SegmentGeometry {
  segmentBytes: number;
  indexIntervalBytes: number;
}

/**
 * Recovery on open (the counterpart of Kafka's LogLoader):
 * - sealed segments before the checkpoint are trusted; their indexes are checked (structure, and that
 *   the final entry names the segment's last record) and rebuilt by a scan when they do not match;
 * - from the checkpointed durable position on, records are scanned and CRC-checked one by one, the
 *   indexes rebuilt for them, and the log truncated at the first torn or corrupt record (segments after
 *   that point are dropped: they were written after a write that never completed);
 * - after a clean close nothing is scanned; only the last record is verified.
 */
export function loadSegments(dir: string, geometry: SegmentGeometry): { segments: Segment[]; report: RecoveryReport } {
  const started = performance.now();
  const report = newRecoveryReport();
  fs.mkdirSync(dir, { recursive: true });
  // A compaction interrupted by the crash is finished or undone before the segment files are listed.
  report.repairs.push(...recoverCompaction(dir).repairs);
  const segments = discoverSegments(dir, geometry, report);
  const checkpoint = readCheckpoint(dir);
  const last = segments.length - 1;

  let recoveryIndex = 0;
  let recoveryCheckpoint: Checkpoint | null = null;
  if (checkpoint) {
    const found = segments.findIndex((s) => s.baseOffset === checkpoint.segmentBaseOffset);
    if (found >= 0) {
      recoveryIndex = found;
      recoveryCheckpoint = checkpoint;
    } else if (segments[0]!.baseOffset > checkpoint.segmentBaseOffset) {
      recoveryIndex = 0; // the checkpointed segment was removed by retention: everything left is newer
    }
  }

  for (let i = 0; i < recoveryIndex; i++) loadSealedSegment(segments[i]!, report);

  let dropFrom = -1;
  for (let i = recoveryIndex; i <= last; i++) {
    const segment = segments[i]!;
    const fromCheckpoint = i === recoveryIndex ? recoveryCheckpoint : null;
    const cleanTail = fromCheckpoint !== null && fromCheckpoint.clean && i === last && segment.fileSize() === fromCheckpoint.position;
    if (cleanTail && resumeCleanSegment(segment, fromCheckpoint)) {
      report.clean = true;
    } else if (!recoverSegment(segment, cleanTail ? null : fromCheckpoint, report)) {
      // (A clean checkpoint whose last record fails verification vouches for nothing in its segment.)
      dropFrom = i + 1;
      break;
    }
    if (i < last) segment.seal();
  }
  if (dropFrom > 0 && dropFrom <= last) {
    for (const dropped of segments.splice(dropFrom)) {
      report.repairs.push(`dropped segment ${dropped.baseOffset}: it follows a torn or corrupt record`);
      report.truncatedBytes += dropped.fileSize();
      report.segmentsDropped++;
      dropped.delete();
    }
  }
  linkSegmentEnds(segments);
  report.durationMs = performance.now() - started;
  return { segments, report };
}

export function newRecoveryReport(): RecoveryReport {
  return { clean: false, scannedBytes: 0, truncatedBytes: 0, indexesRebuilt: 0, segmentsDropped: 0, durationMs: 0, repairs: [] };
}

/**
 * A sealed segment's range ends where the next segment begins. Its last record may lie before that:
 * compaction dropped the records at the end of the range (or emptied it), so the end is taken from the
 * next segment's name rather than from the last record.
 */
function linkSegmentEnds(segments: readonly Segment[]): void {
  for (let i = 0; i + 1 < segments.length; i++) {
    const next = segments[i + 1]!.baseOffset;
    if (segments[i]!.nextOffset < next) segments[i]!.nextOffset = next;
  }
}

/** List segment files, drop leftovers (temp checkpoint, indexes without a log), create the first segment. */
function discoverSegments(dir: string, geometry: SegmentGeometry, report: RecoveryReport): Segment[] {
  const logs = new Set<number>();
  const indexes: Array<{ name: string; baseOffset: number }> = [];
  for (const name of fs.readdirSync(dir)) {
    if (name === CHECKPOINT_TEMP_FILE) {
      fs.rmSync(path.join(dir, name), { force: true });
      continue;
    }
    const parsed = parseSegmentFileName(name);
    if (!parsed) continue;
    if (parsed.kind === 'log') logs.add(parsed.baseOffset);
    else indexes.push({ name, baseOffset: parsed.baseOffset });
  }
  for (const index of indexes) {
    if (!logs.has(index.baseOffset)) {
      fs.rmSync(path.join(dir, index.name), { force: true });
      report.repairs.push(`removed orphan index ${index.name}`);
    }
  }
  const bases = [...logs].sort((a, b) => a - b);
  if (bases.length === 0) bases.push(0);
  // Index room for the file as it is: a segment merged by compaction may be larger than segmentBytes.
  return bases.map((base) => {
    const size = fileSizeOf(path.join(dir, segmentFileStem(base) + LOG_SUFFIX));
    return new Segment(dir, base, Math.max(geometry.segmentBytes, size), geometry.indexIntervalBytes);
  });
}

/**
 * A sealed segment before the recovery point: trust its data, check its indexes cheaply, and rebuild
 * them if they do not describe the file. (Also used to open a segment a compaction just installed.)
 */
export function loadSealedSegment(segment: Segment, report: RecoveryReport): void {
  const fileSize = segment.fileSize();
  if (fileSize === 0) {
    // Emptied by compaction: no record, so empty indexes; the file keeps the log's offsets continuous.
    segment.resetForRescan();
    segment.sealed = true;
    segment.offsetIndex.closeFile();
    segment.timeIndex.closeFile();
    return;
  }
  if (segment.offsetIndex.loadFromFile() && segment.timeIndex.loadFromFile() && segment.offsetIndex.isConsistent(fileSize)) {
    const lastEntry = segment.offsetIndex.count - 1;
    const lastPosition = lastEntry >= 0 ? segment.offsetIndex.positionAt(lastEntry) : 0;
    const last = lastEntry >= 0 ? segment.recordAt(lastPosition) : null;
    const timeEntries = segment.timeIndex.count;
    if (
      last &&
      lastPosition + last.length === fileSize &&
      last.record.offset === segment.offsetIndex.offsetAt(lastEntry) &&
      segment.timeIndex.isConsistent(last.record.offset + 1) &&
      timeEntries > 0 &&
      segment.timeIndex.offsetAt(timeEntries - 1) === last.record.offset &&
      segment.timeIndex.timestampAt(timeEntries - 1) === last.record.timestamp
    ) {
      segment.restoreState({
        size: fileSize,
        nextOffset: last.record.offset + 1,
        firstTimestamp: segment.timeIndex.timestampAt(0),
        lastTimestamp: last.record.timestamp,
        lastRecordPosition: lastPosition,
      });
      segment.sealed = true;
      segment.offsetIndex.closeFile();
      segment.timeIndex.closeFile();
      return;
    }
  }
  report.indexesRebuilt++;
  report.repairs.push(`rebuilt indexes of segment ${segment.baseOffset}`);
  segment.resetForRescan();
  const scan = segment.scan(0, segment.baseOffset, true);
  report.scannedBytes += scan.validEnd;
  if (scan.stoppedBy !== 'end') {
    // Corruption inside a sealed segment is not a crash artefact; keep what precedes it readable.
    report.truncatedBytes += fileSize - scan.validEnd;
    report.repairs.push(`truncated sealed segment ${segment.baseOffset} at byte ${scan.validEnd}: ${scan.detail}`);
    segment.size = scan.validEnd;
    segment.truncateTo(scan.validEnd);
  }
  segment.size = scan.validEnd;
  segment.seal();
}

/** The last segment after a clean close: trust it, but verify its last record. */
function resumeCleanSegment(segment: Segment, checkpoint: Checkpoint): boolean {
  if (!segment.offsetIndex.loadFromFile() || !segment.timeIndex.loadFromFile()) return false;
  if (!segment.offsetIndex.isConsistent(checkpoint.position) || !segment.timeIndex.isConsistent(checkpoint.nextOffset)) return false;
  if (checkpoint.lastRecordPosition >= 0) {
    const last = segment.recordAt(checkpoint.lastRecordPosition);
    if (!last || checkpoint.lastRecordPosition + last.length !== checkpoint.position || last.record.offset !== checkpoint.nextOffset - 1) {
      return false;
    }
  } else if (checkpoint.position !== 0) {
    return false;
  }
  segment.restoreState({
    size: checkpoint.position,
    nextOffset: checkpoint.nextOffset,
    firstTimestamp: checkpoint.firstTimestamp,
    lastTimestamp: checkpoint.lastTimestamp,
    lastRecordPosition: checkpoint.lastRecordPosition,
  });
  return true;
}

/**
 * Scan a segment from the checkpointed position (or from its start), CRC-checking every record and
 * reindexing it; truncate at the first torn or corrupt record. Returns false when it truncated, so the
 * caller drops every later segment.
 */
function recoverSegment(segment: Segment, checkpoint: Checkpoint | null, report: RecoveryReport): boolean {
  const fileSize = segment.fileSize();
  let start = 0;
  const indexesLoaded = segment.offsetIndex.loadFromFile() && segment.timeIndex.loadFromFile();
  if (checkpoint && indexesLoaded && checkpoint.position <= fileSize) {
    segment.offsetIndex.truncateToPosition(checkpoint.position);
    segment.timeIndex.truncateToOffset(checkpoint.nextOffset);
    if (segment.offsetIndex.isConsistent(checkpoint.position) && segment.timeIndex.isConsistent(checkpoint.nextOffset)) {
      segment.restoreState({
        size: checkpoint.position,
        nextOffset: checkpoint.nextOffset,
        firstTimestamp: checkpoint.firstTimestamp,
        lastTimestamp: checkpoint.lastTimestamp,
        lastRecordPosition: checkpoint.lastRecordPosition,
      });
      start = checkpoint.position;
    }
  }
  if (start === 0) {
    if (fileSize > 0) {
      report.indexesRebuilt++;
      report.repairs.push(`rebuilt indexes of segment ${segment.baseOffset}`);
    }
    segment.resetForRescan();
  }
  const scan = segment.scan(start, segment.nextOffset, true);
  report.scannedBytes += scan.validEnd - start;
  segment.size = scan.validEnd;
  if (scan.stoppedBy === 'end') {
    segment.offsetIndex.writeThrough();
    segment.timeIndex.writeThrough();
    return true;
  }
  report.truncatedBytes += fileSize - scan.validEnd;
  report.repairs.push(`truncated segment ${segment.baseOffset} at byte ${scan.validEnd}: ${scan.detail}`);
  segment.truncateTo(scan.validEnd);
  segment.offsetIndex.writeThrough();
  segment.timeIndex.writeThrough();
  return false;
}

function fileSizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}
