import { StorageError } from './errors.js';
import { decodeRecordAt, probeRecordAt, RECORD_CORRUPT, RECORD_INCOMPLETE, recordAttributes, recordBodyStart, recordOffset, recordStream, recordTimestamp, type LogRecord } from './record.js';
import type { Segment } from './segment.js';

export interface ReadOptions {
  /** At most this many records (default 1000). */
  maxRecords?: number;
  /** At most about this many bytes of records; at least one record is returned (default 1 MiB). */
  maxBytes?: number;
  /** Only records carrying this stream tag. */
  stream?: number;
}

/**
 * Sees one record of a scan: bytes [position, position + length) of `chunk`, valid only during the
 * call. Returns false to stop before this record.
 */
export type RecordVisitor = (chunk: Buffer, position: number, length: number, offset: number) => boolean;

export interface ReadBatch {
  records: LogRecord[];
  /** Where the next read should start: after the last record returned or skipped. */
  nextOffset: number;
}

const DEFAULT_MAX_RECORDS = 1000;
const DEFAULT_MAX_BYTES = 1 << 20;
const MIN_READ_BYTES = 64 * 1024;
/** Reads of at most this many records are sized by the records, without the MIN_READ_BYTES floor. */
const FEW_RECORDS = 16;
/** The buffer `scan` reuses grows to at most this; larger reads get a buffer of their own. */
const SCAN_BUFFER_MAX_BYTES = 8 << 20;
/** A filtered read skips at most this many bytes before returning, so one call stays bounded. */
const MAX_SKIPPED_BYTES = 32 << 20;

/**
 * Reads over a log's segments, bounded by the visible end (the durable offset): a reader never sees a
 * record whose append has not been confirmed. Runs on the caller's thread beside the single writer;
 * the segment list and sizes it reads are only changed between reads.
 */
export class LogReader {
  constructor(
    private readonly segments: () => readonly Segment[],
    private readonly visibleEnd: () => number,
  ) {}

  startOffset(): number {
    return this.segments()[0]!.baseOffset;
  }

  readBatch(fromOffset: number, options: ReadOptions = {}): ReadBatch {
    const records: LogRecord[] = [];
    const nextOffset = this.scanRecords(
      fromOffset,
      options,
      (chunk, position, length, offset) => {
        records.push({
          offset,
          timestamp: recordTimestamp(chunk, position),
          attributes: recordAttributes(chunk, position),
          stream: recordStream(chunk, position),
          body: chunk.subarray(recordBodyStart(chunk, position), position + length),
        });
        return true;
      },
      null,
    );
    return { records, nextOffset };
  }

  /**
   * readBatch without a record object per record: `visit` is called with each record's bytes
   * ([position, position + length) of `chunk`; fields through the record* readers of record.ts),
   * valid only during the call, since every read of the scan goes into one buffer this reader
   * keeps. `visit` returns false to stop before that record (it is not counted). Returns where the
   * next read should start.
   */
  scan(fromOffset: number, options: ReadOptions, visit: RecordVisitor): number {
    // A scan started from inside a visit reads into buffers of its own: the outer one's is in use.
    if (this.scanning) return this.scanRecords(fromOffset, options, visit, null);
    this.scanning = true;
    try {
      return this.scanRecords(fromOffset, options, visit, this);
    } finally {
      this.scanning = false;
    }
  }

  private scanning = false;

  /** The buffer `scan` reads into, at least `size` bytes (up to SCAN_BUFFER_MAX_BYTES; beyond, null: read fresh). */
  private scanBuffer(size: number): Buffer | undefined {
    if (size > SCAN_BUFFER_MAX_BYTES) return undefined;
    if (this.readBuffer === null || this.readBuffer.length < size) this.readBuffer = Buffer.allocUnsafeSlow(Math.max(size, MIN_READ_BYTES * 2));
    return this.readBuffer;
  }

  private readBuffer: Buffer | null = null;

  private scanRecords(fromOffset: number, options: ReadOptions, visit: RecordVisitor, reuse: LogReader | null): number {
    if (!Number.isSafeInteger(fromOffset) || fromOffset < 0) {
      throw new StorageError('INVALID_ARGUMENT', `read offset must be a non-negative integer, got ${fromOffset}`);
    }
    const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!(maxRecords > 0) || !(maxBytes > 0)) {
      throw new StorageError('INVALID_ARGUMENT', 'maxRecords and maxBytes must be positive');
    }
    const segments = this.segments();
    const start = segments[0]!.baseOffset;
    if (fromOffset < start) {
      throw new StorageError('OFFSET_OUT_OF_RANGE', `offset ${fromOffset} is below the log start ${start} (removed by retention)`);
    }
    const end = this.visibleEnd();
    let count = 0;
    let next = fromOffset;
    let bytes = 0;
    let skipped = 0;
    let full = false;
    for (let s = this.segmentIndexFor(segments, fromOffset); s < segments.length && !full && next < end; s++) {
      const segment = segments[s]!;
      if (next >= segment.nextOffset) continue; // also steps over gaps between segments
      let position = segment.offsetIndex.lookup(next).position;
      while (!full && position < segment.size && next < end) {
        // Size the read by what the caller can take: the byte budget, or the record budget at the
        // segment's average record size (reading a full MiB for 1000 small records wastes 3x).
        const averageRecord = segment.recordCount > 0 ? Math.ceil(segment.size / segment.recordCount) : MIN_READ_BYTES;
        const budget = Math.min(maxBytes - bytes, (maxRecords - count) * averageRecord * 1.25);
        // A read of a few records (a lookup by offset) reads just them and the index gap before them.
        const floor = maxRecords - count <= FEW_RECORDS ? 0 : MIN_READ_BYTES;
        const want = Math.ceil(Math.min(segment.size - position, Math.max(budget, floor) + segment.indexIntervalBytes));
        let chunk = segment.readBytes(position, want, reuse?.scanBuffer(want));
        let at = 0;
        while (at < chunk.length) {
          const length = probeRecordAt(chunk, at, true);
          if (length === RECORD_INCOMPLETE) {
            if (at > 0) break;
            const needed = (decodeRecordAt(chunk, at, true) as { needed: number }).needed;
            chunk = segment.readBytes(position, needed, reuse?.scanBuffer(needed)); // one record larger than the chunk
            if (chunk.length < needed) throw corrupt(segment, position, 'record runs past the end of the segment');
            continue;
          }
          if (length === RECORD_CORRUPT) {
            const decoded = decodeRecordAt(chunk, at, true);
            throw corrupt(segment, position + at, decoded.status === 'corrupt' ? decoded.reason : 'unreadable record');
          }
          const offset = recordOffset(chunk, at);
          if (offset >= end) {
            full = true;
            break;
          }
          if (offset >= next) {
            if (options.stream !== undefined && recordStream(chunk, at) !== options.stream) {
              skipped += length;
              next = offset + 1;
              if (skipped >= MAX_SKIPPED_BYTES) full = true;
            } else if (count > 0 && bytes + length > maxBytes) {
              full = true;
              break;
            } else if (!visit(chunk, at, length, offset)) {
              next = offset;
              full = true;
              break;
            } else {
              count++;
              bytes += length;
              next = offset + 1;
              if (count >= maxRecords) full = true;
            }
            if (full) break;
          }
          at += length;
        }
        position += at;
      }
      if (!full && position >= segment.size && segment.sealed) next = Math.max(next, Math.min(segment.nextOffset, end));
    }
    return next;
  }

  read(fromOffset: number, options?: ReadOptions): LogRecord[] {
    return this.readBatch(fromOffset, options).records;
  }

  *records(fromOffset: number, options?: ReadOptions): Iterable<LogRecord> {
    let next = fromOffset;
    for (;;) {
      const batch = this.readBatch(next, options);
      yield* batch.records;
      if (batch.records.length === 0 && batch.nextOffset === next) return;
      next = batch.nextOffset;
    }
  }

  /** First visible offset whose timestamp is >= `timestamp`, or null when there is none. */
  offsetForTime(timestamp: number): number | null {
    const segments = this.segments();
    // Timestamps are non-decreasing across the log, so the first segment whose newest record is recent
    // enough holds the answer. A segment compaction emptied has no newest record: it answers as the next
    // segment with records does, which keeps the search monotonic.
    let low = 0;
    let high = segments.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      let withRecords = mid;
      while (withRecords < segments.length && segments[withRecords]!.size === 0) withRecords++;
      const segment = segments[withRecords];
      if (segment !== undefined && segment.lastTimestamp >= timestamp) {
        found = withRecords;
        high = mid - 1;
      } else {
        low = mid + 1;
      }
    }
    if (found < 0) return null;
    const segment = segments[found]!;
    let next = Math.max(segment.timeIndex.lastOffsetBefore(timestamp) ?? segment.baseOffset, this.startOffset());
    const end = this.visibleEnd();
    while (next < end) {
      // Small reads: the answer is usually within one index interval of the entry found.
      const batch = this.readBatch(next, { maxRecords: 128, maxBytes: 16 * 1024 });
      for (const record of batch.records) if (record.timestamp >= timestamp) return record.offset;
      if (batch.records.length === 0) return null;
      next = batch.nextOffset;
    }
    return null;
  }

  /** Index of the last segment whose base offset is <= `offset` (0 when none is). */
  private segmentIndexFor(segments: readonly Segment[], offset: number): number {
    let low = 0;
    let high = segments.length - 1;
    let found = 0;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (segments[mid]!.baseOffset <= offset) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }
}

function corrupt(segment: Segment, position: number, reason: string): StorageError {
  return new StorageError('CORRUPT_RECORD', `segment ${segment.baseOffset} byte ${position}: ${reason}`);
}
