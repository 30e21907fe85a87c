import fs from 'node:fs';
import { segmentPaths } from './file-names.js';
import { readAt, writeFully, type FileIO } from './file-io.js';
import { OffsetIndex } from './offset-index.js';
import { TimeIndex } from './time-index.js';
import { decodeRecordAt, encodeRecordFrom, encodedRecordBytes, RECORD_HEADER_BYTES, viewOf } from './record.js';

/**
 * What a segment needs to know about the records it is asked to write: columns, one entry per
 * record. Body i is bytes [starts[i], ends[i]) of `source` when the bodies lie in one buffer (a
 * packed batch), else of `bodies[i]`.
 */
export interface SegmentWrite {
  count: number;
  /** Offset of record 0. */
  firstOffset: number;
  source: Uint8Array | null;
  bodies: readonly Uint8Array[] | null;
  starts: ArrayLike<number>;
  ends: ArrayLike<number>;
  attributes: ArrayLike<number>;
  streams: ArrayLike<number>;
  timestamps: ArrayLike<number>;
}

/**
 * Batches are encoded into one buffer per thread, reused from write to write (a write is
 * synchronous): a fresh buffer per batch cost more in allocation, page faults and collection than
 * the encoding. It grows to the largest batch up to WRITE_BUFFER_MAX_BYTES; larger batches get a
 * buffer of their own.
 */
const WRITE_BUFFER_MAX_BYTES = 8 * 1024 * 1024;
let writeBuffer = Buffer.allocUnsafeSlow(64 * 1024);
let writeView = viewOf(writeBuffer);

function writeBufferFor(bytes: number): { buffer: Buffer; view: DataView } {
  if (bytes > WRITE_BUFFER_MAX_BYTES) {
    const own = Buffer.allocUnsafe(bytes);
    return { buffer: own, view: viewOf(own) };
  }
  if (bytes > writeBuffer.length) {
    writeBuffer = Buffer.allocUnsafeSlow(Math.min(WRITE_BUFFER_MAX_BYTES, 2 ** Math.ceil(Math.log2(bytes))));
    writeView = viewOf(writeBuffer);
  }
  return { buffer: writeBuffer, view: writeView };
}

/** Encoded size of record `i` of `batch`. */
export function writeRecordBytes(batch: SegmentWrite, i: number): number {
  return encodedRecordBytes(batch.ends[i]! - batch.starts[i]!);
}

export interface ScanResult {
  /** Byte position just after the last valid record scanned. */
  validEnd: number;
  /** Offset after the last valid record (the scan's starting offset if none). */
  nextOffset: number;
  lastTimestamp: number;
  lastRecordPosition: number;
  records: number;
  /** Why the scan stopped before the end of the file, if it did. */
  stoppedBy: 'end' | 'torn' | 'corrupt';
  detail?: string;
}

const SCAN_CHUNK_BYTES = 1 << 20;

/** Index entries a segment of `segmentBytes` needs: one per interval plus the final entry. */
export function indexCapacity(segmentBytes: number, indexIntervalBytes: number): number {
  return Math.ceil(segmentBytes / indexIntervalBytes) + 2;
}

/** Process-wide identities of Segment objects (a compaction checks its segments were not replaced). */
let nextSegmentId = 1;

/**
 * One segment of a log: a .log file of records, with its offset and time indexes. Only the active
 * (last) segment is written; sealed segments are read-only. A segment's files are named by its base
 * offset, the offset of its first record.
 */
export class Segment {
  /** Unique in the process: a compaction installs only over the very segments it read. */
  readonly id = nextSegmentId++;
  readonly baseOffset: number;
  readonly paths: ReturnType<typeof segmentPaths>;
  readonly offsetIndex: OffsetIndex;
  readonly timeIndex: TimeIndex;
  readonly indexIntervalBytes: number;
  /** Bytes of whole records in the .log file. */
  size = 0;
  /**
   * The offset after the segment's range. For a sealed segment that is the next segment's base offset
   * (set by the log): after compaction the last offsets of the range may hold no record.
   */
  nextOffset: number;
  firstTimestamp = -1;
  lastTimestamp = -1;
  lastRecordPosition = -1;
  sealed = false;
  private fd: number | null = null;
  private bytesSinceIndexEntry = 0;

  constructor(dir: string, baseOffset: number, segmentBytes: number, indexIntervalBytes: number) {
    this.baseOffset = baseOffset;
    this.nextOffset = baseOffset;
    this.indexIntervalBytes = indexIntervalBytes;
    this.paths = segmentPaths(dir, baseOffset);
    // One entry per interval plus the final entry; a segment that outgrows this keeps a sparser tail.
    const maxEntries = indexCapacity(segmentBytes, indexIntervalBytes);
    this.offsetIndex = new OffsetIndex(this.paths.offsetIndex, baseOffset, maxEntries);
    this.timeIndex = new TimeIndex(this.paths.timeIndex, baseOffset, maxEntries);
  }

  /** Offsets the segment covers; fewer records once compaction left gaps. */
  get recordCount(): number {
    return this.nextOffset - this.baseOffset;
  }

  get isEmpty(): boolean {
    return this.size === 0;
  }

  /** The file descriptor, opened on first use (sealed segments are opened read-only). */
  descriptor(): number {
    if (this.fd === null) {
      this.fd = this.sealed
        ? fs.openSync(this.paths.log, 'r')
        : fs.openSync(this.paths.log, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    }
    return this.fd;
  }

  fileSize(): number {
    try {
      return fs.statSync(this.paths.log).size;
    } catch {
      return 0;
    }
  }

  /**
   * Encode and write records [from, to) of `batch` at the end of the segment, in one write, then add
   * their index entries. Throws (with the segment unchanged) when the write fails.
   */
  write(io: FileIO, batch: SegmentWrite, from: number, to: number): void {
    let bytes = 0;
    for (let i = from; i < to; i++) bytes += writeRecordBytes(batch, i);
    const { buffer, view } = writeBufferFor(bytes);
    const { source, bodies, starts, ends } = batch;
    let at = 0;
    for (let i = from; i < to; i++) {
      at = encodeRecordFrom(
        buffer,
        view,
        at,
        batch.firstOffset + i,
        batch.timestamps[i]!,
        batch.attributes[i]!,
        batch.streams[i]!,
        source ?? bodies![i]!,
        starts[i]!,
        ends[i]!,
      );
    }
    writeFully(io, this.descriptor(), bytes === buffer.length ? buffer : buffer.subarray(0, bytes), this.size);
    let position = this.size;
    for (let i = from; i < to; i++) {
      const length = writeRecordBytes(batch, i);
      this.noteRecord(batch.firstOffset + i, batch.timestamps[i]!, position, length);
      position += length;
    }
    this.size += bytes;
    this.offsetIndex.writeThrough();
    this.timeIndex.writeThrough();
  }

  /** Account for a record now in the file at `position`: indexes, counters, timestamps. */
  private noteRecord(offset: number, timestamp: number, position: number, length: number): void {
    if (this.bytesSinceIndexEntry >= this.indexIntervalBytes) {
      this.offsetIndex.append(offset, position);
      this.timeIndex.append(timestamp, offset);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += length;
    if (this.firstTimestamp < 0) this.firstTimestamp = timestamp;
    this.lastTimestamp = timestamp;
    this.lastRecordPosition = position;
    this.nextOffset = offset + 1;
  }

  /** Read `length` bytes at `position` (fewer at the end of the file), into `into` when it is large enough. */
  readBytes(position: number, length: number, into?: Buffer): Buffer {
    return readAt(this.descriptor(), position, length, into);
  }

  /**
   * Scan records from `position` (whose first record should have offset >= `fromOffset`), checking each
   * checksum, until the end of the file or the first torn or corrupt record. With `reindex`, index
   * entries are added for the scanned records and the segment's counters advance (recovery).
   */
  scan(position: number, fromOffset: number, reindex: boolean): ScanResult {
    const fileSize = this.fileSize();
    const result: ScanResult = {
      validEnd: position,
      nextOffset: fromOffset,
      lastTimestamp: this.lastTimestamp,
      lastRecordPosition: this.lastRecordPosition,
      records: 0,
      stoppedBy: 'end',
    };
    let chunkStart = position;
    while (chunkStart < fileSize) {
      let chunk = this.readBytes(chunkStart, Math.min(SCAN_CHUNK_BYTES, fileSize - chunkStart));
      let at = 0;
      while (at < chunk.length) {
        const decoded = decodeRecordAt(chunk, at, true);
        if (decoded.status === 'incomplete') {
          if (chunkStart + at + decoded.needed > fileSize) {
            result.stoppedBy = 'torn';
            result.detail = `record at byte ${chunkStart + at} needs ${decoded.needed} bytes, file ends first`;
            return result;
          }
          if (at === 0) chunk = this.readBytes(chunkStart, decoded.needed); // a record larger than a chunk
          else break;
          continue;
        }
        if (decoded.status === 'corrupt') {
          result.stoppedBy = 'corrupt';
          result.detail = `record at byte ${chunkStart + at}: ${decoded.reason}`;
          return result;
        }
        const { record, length } = decoded;
        if (record.offset < result.nextOffset || record.timestamp < result.lastTimestamp) {
          result.stoppedBy = 'corrupt';
          result.detail = `record at byte ${chunkStart + at} has offset ${record.offset} out of sequence`;
          return result;
        }
        const recordPosition = chunkStart + at;
        if (reindex) this.noteRecord(record.offset, record.timestamp, recordPosition, length);
        result.records++;
        result.nextOffset = record.offset + 1;
        result.lastTimestamp = record.timestamp;
        result.lastRecordPosition = recordPosition;
        at += length;
        result.validEnd = chunkStart + at;
      }
      chunkStart += at;
    }
    return result;
  }

  /**
   * Make `position` the end of the segment: truncate the file there and drop index entries past it.
   * Used by recovery to cut a torn or corrupt tail.
   */
  truncateTo(position: number): void {
    fs.ftruncateSync(this.descriptor(), position);
    this.offsetIndex.truncateToPosition(position);
    this.timeIndex.truncateToOffset(this.nextOffset);
  }

  /** Start the index over from the beginning (before a full rescan). */
  resetForRescan(): void {
    this.offsetIndex.reset();
    this.timeIndex.reset();
    this.size = 0;
    this.nextOffset = this.baseOffset;
    this.firstTimestamp = -1;
    this.lastTimestamp = -1;
    this.lastRecordPosition = -1;
    this.bytesSinceIndexEntry = 0;
  }

  /** Resume counters for a segment whose index is trusted (clean open, or after a scan). */
  restoreState(state: { size: number; nextOffset: number; firstTimestamp: number; lastTimestamp: number; lastRecordPosition: number }): void {
    this.size = state.size;
    this.nextOffset = state.nextOffset;
    this.firstTimestamp = state.firstTimestamp;
    this.lastTimestamp = state.lastTimestamp;
    this.lastRecordPosition = state.lastRecordPosition;
    const lastEntry = this.offsetIndex.count - 1;
    const indexedUpTo = lastEntry < 0 ? 0 : this.offsetIndex.positionAt(lastEntry);
    this.bytesSinceIndexEntry = Math.max(0, state.size - indexedUpTo);
  }

  /** Decode the record at `position` (checksum verified), or null if there is none valid. */
  recordAt(position: number) {
    const header = this.readBytes(position, RECORD_HEADER_BYTES);
    if (header.length < RECORD_HEADER_BYTES) return null;
    const length = header.readUInt32LE(4);
    if (length < RECORD_HEADER_BYTES || length > 1 << 30) return null;
    const decoded = decodeRecordAt(this.readBytes(position, length), 0, true);
    return decoded.status === 'ok' ? { record: decoded.record, length: decoded.length } : null;
  }

  /**
   * Seal the segment when the log rolls past it: index entries for its last record (so a sealed
   * segment's last offset and newest timestamp are in its indexes), indexes written and flushed.
   */
  seal(): void {
    if (this.lastRecordPosition >= 0) {
      this.offsetIndex.append(this.nextOffset - 1, this.lastRecordPosition);
      this.timeIndex.append(this.lastTimestamp, this.nextOffset - 1);
    }
    this.offsetIndex.seal();
    this.timeIndex.seal();
    // The data file stays open: a group-commit fsync may still be running on it. It is closed with
    // the segment (close or delete), which the log only does once no fsync holds it.
    this.sealed = true;
  }

  closeFile(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  close(): void {
    this.closeFile();
    this.offsetIndex.closeFile();
    this.timeIndex.closeFile();
  }

  /**
   * Close, with the data file's descriptor closed on the thread pool: when it is the last reference to a
   * file already replaced or deleted (compaction), the close frees the file's blocks, which can wait on
   * the filesystem journal; that must not stall the log's thread.
   */
  closeInBackground(): void {
    const fd = this.fd;
    this.fd = null;
    this.close();
    if (fd !== null) fs.close(fd, () => {});
  }

  /** Remove the segment's files (retention). The .log goes first: an orphan index is cleaned on open. */
  delete(): void {
    this.close();
    for (const file of [this.paths.log, this.paths.offsetIndex, this.paths.timeIndex]) {
      fs.rmSync(file, { force: true });
    }
  }
}
