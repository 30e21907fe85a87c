import { StorageError } from './errors.js';
import { decodeRecordAt, type LogRecord } from './record.js';
import type { Segment } from './segment.js';

export interface ReadOptions {
  /** At most this many records (default 1000). */
  maxRecords?: number;
  /** At most about this many bytes of records; at least one record is returned (default 1 MiB). */
  maxBytes?: number;
  /** Only records carrying this stream tag. */
  stream?: number;
}

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
    const records: LogRecord[] = [];
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
        const budget = Math.min(maxBytes - bytes, (maxRecords - records.length) * averageRecord * 1.25);
        // A read of a few records (a lookup by offset) reads just them and the index gap before them.
        const floor = maxRecords - records.length <= FEW_RECORDS ? 0 : MIN_READ_BYTES;
        const want = Math.min(segment.size - position, Math.max(budget, floor) + segment.indexIntervalBytes);
        let chunk = segment.readBytes(position, want);
        let at = 0;
        while (at < chunk.length) {
          const decoded = decodeRecordAt(chunk, at, true);
          if (decoded.status === 'incomplete') {
            if (at > 0) break;
            chunk = segment.readBytes(position, decoded.needed); // one record larger than the chunk
            if (chunk.length < decoded.needed) throw corrupt(segment, position, 'record runs past the end of the segment');
            continue;
          }
          if (decoded.status === 'corrupt') throw corrupt(segment, position + at, decoded.reason);
          const { record, length } = decoded;
          if (record.offset >= end) {
            full = true;
            break;
          }
          if (record.offset >= next) {
            if (options.stream !== undefined && record.stream !== options.stream) {
              skipped += length;
              next = record.offset + 1;
              if (skipped >= MAX_SKIPPED_BYTES) full = true;
            } else if (records.length > 0 && bytes + length > maxBytes) {
              full = true;
              break;
            } else {
              records.push(record);
              bytes += length;
              next = record.offset + 1;
              if (records.length >= maxRecords) full = true;
            }
            if (full) break;
          }
          at += length;
        }
        position += at;
      }
      if (!full && position >= segment.size && segment.sealed) next = Math.max(next, Math.min(segment.nextOffset, end));
    }
    return { records, nextOffset: next };
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
