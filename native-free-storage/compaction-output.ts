import fs from 'node:fs';
import zlib from 'node:zlib';
import { compactionTempPaths } from './file-names.js';
import { defaultFileIO, writeFully } from './file-io.js';
import { OffsetIndex } from './offset-index.js';
import { indexCapacity } from './segment.js';
import type { RecordChunk } from './segment-record-reader.js';
import { TimeIndex } from './time-index.js';

/** The rewritten segment, complete and fsynced under its temporary names. */
export interface CompactionOutput {
  baseOffset: number;
  /** The offset after the segment's range: unchanged by compaction (the next segment's base). */
  endOffset: number;
  /** Temporary paths; `Log.installCompaction` renames them into place. */
  logPath: string;
  offsetIndexPath: string;
  timeIndexPath: string;
  sizeBytes: number;
  /** CRC-32 of the whole .log file (lets recovery recognise it after the rename). */
  logCrc: number;
  records: number;
  /** -1 when no record was kept. */
  firstOffset: number;
  lastOffset: number;
  firstTimestamp: number;
  lastTimestamp: number;
  lastRecordPosition: number;
}

/**
 * Writes the records a compaction keeps, byte for byte, into a new segment file under a temporary
 * name, with its sparse offset and time indexes built exactly as an appended segment's are (an
 * entry every `indexIntervalBytes`, plus the final entry of a sealed segment). Consecutive kept records
 * are copied as one run; writes go out in chunks of `chunkBytes` (a record larger than that on its
 * own), synced every `syncEveryBytes`; `finish` fsyncs everything.
 */
export class CompactedSegmentWriter {
  readonly paths: ReturnType<typeof compactionTempPaths>;
  private readonly fd: number;
  private readonly buffer: Buffer;
  private readonly offsetIndex: OffsetIndex;
  private readonly timeIndex: TimeIndex;
  private filled = 0;
  private fileSize = 0;
  private unreported = 0;
  private unsynced = 0;
  private crc = 0;
  private bytesSinceIndexEntry = 0;
  private records = 0;
  private firstOffset = -1;
  private lastOffset = -1;
  private firstTimestamp = -1;
  private lastTimestamp = -1;
  private lastRecordPosition = -1;
  private closed = false;
  /** The run of consecutive kept records not yet copied: bytes [runStart, runEnd) of runBuffer. */
  private runBuffer: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;

  constructor(
    dir: string,
    taskId: string,
    private readonly baseOffset: number,
    private readonly endOffset: number,
    /** Sizes the index images: the larger of segmentBytes and the bytes rewritten. */
    capacityBytes: number,
    private readonly indexIntervalBytes: number,
    chunkBytes: number,
    /** fdatasync the .log each time this many bytes were written since the last (0: only at the end). */
    private readonly syncEveryBytes: number,
  ) {
    this.paths = compactionTempPaths(dir, baseOffset, taskId);
    // 'wx': a task id is used once; an existing file would be someone else's.
    this.fd = fs.openSync(this.paths.log, 'wx', 0o644);
    this.buffer = Buffer.allocUnsafe(chunkBytes);
    const capacity = indexCapacity(capacityBytes, indexIntervalBytes);
    this.offsetIndex = new OffsetIndex(this.paths.offsetIndex, baseOffset, capacity);
    this.timeIndex = new TimeIndex(this.paths.timeIndex, baseOffset, capacity);
  }

  /**
   * Append record `i` of `chunk` (offsets must increase; the reader verified it). Consecutive records of
   * one chunk are copied as one run.
   */
  add(chunk: RecordChunk, i: number): void {
    const start = chunk.positions[i]!;
    const length = chunk.lengths[i]!;
    if (this.runBuffer !== chunk.buffer || this.runEnd !== start) {
      this.endRun();
      this.runBuffer = chunk.buffer;
      this.runStart = start;
      this.runEnd = start;
    }
    const position = this.fileSize + this.filled + (this.runEnd - this.runStart);
    const offset = chunk.offset(i);
    const timestamp = chunk.timestamp(i);
    if (this.bytesSinceIndexEntry >= this.indexIntervalBytes) {
      this.offsetIndex.append(offset, position);
      this.timeIndex.append(timestamp, offset);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += length;
    this.runEnd += length;
    if (this.firstOffset < 0) {
      this.firstOffset = offset;
      this.firstTimestamp = timestamp;
    }
    this.lastOffset = offset;
    this.lastTimestamp = timestamp;
    this.lastRecordPosition = position;
    this.records++;
  }

  /** Copy the current run of records into the output buffer (the chunk it views is about to go). */
  endRun(): void {
    const buffer = this.runBuffer;
    if (buffer === null || this.runEnd === this.runStart) {
      this.runBuffer = null;
      return;
    }
    const length = this.runEnd - this.runStart;
    if (this.filled + length > this.buffer.length) this.flush();
    if (length > this.buffer.length) {
      this.writeOut(buffer.subarray(this.runStart, this.runEnd)); // a run larger than the buffer goes out on its own
    } else {
      buffer.copy(this.buffer, this.filled, this.runStart, this.runEnd);
      this.filled += length;
    }
    this.runBuffer = null;
    this.runStart = 0;
    this.runEnd = 0;
  }

  /** Bytes written to the files since the last call (for the I/O budget). */
  takeWrittenBytes(): number {
    const bytes = this.unreported;
    this.unreported = 0;
    return bytes;
  }

  /** Write what is buffered, the final index entries; fsync and close the three files. */
  finish(): CompactionOutput {
    this.endRun();
    this.flush();
    if (this.lastRecordPosition >= 0) {
      this.offsetIndex.append(this.lastOffset, this.lastRecordPosition);
      this.timeIndex.append(this.lastTimestamp, this.lastOffset);
    }
    this.offsetIndex.seal(); // write through, fsync, close
    this.timeIndex.seal();
    fs.fsyncSync(this.fd);
    this.close();
    return {
      baseOffset: this.baseOffset,
      endOffset: this.endOffset,
      logPath: this.paths.log,
      offsetIndexPath: this.paths.offsetIndex,
      timeIndexPath: this.paths.timeIndex,
      sizeBytes: this.fileSize,
      logCrc: this.crc,
      records: this.records,
      firstOffset: this.firstOffset,
      lastOffset: this.lastOffset,
      firstTimestamp: this.firstTimestamp,
      lastTimestamp: this.lastTimestamp,
      lastRecordPosition: this.lastRecordPosition,
    };
  }

  /** Give up: close and remove the temporary files. */
  discard(): void {
    this.close();
    for (const file of [this.paths.log, this.paths.offsetIndex, this.paths.timeIndex]) fs.rmSync(file, { force: true });
  }

  private flush(): void {
    if (this.filled === 0) return;
    this.writeOut(this.buffer.subarray(0, this.filled));
    this.filled = 0;
    this.offsetIndex.writeThrough();
    this.timeIndex.writeThrough();
    if (this.syncEveryBytes > 0 && this.unsynced >= this.syncEveryBytes) {
      // Small syncs as we go, not one large one at the end: a large write-back queued on the disk would
      // hold up the log's group-commit fsync behind it (RocksDB's bytes_per_sync, without sync_file_range).
      fs.fdatasyncSync(this.fd);
      this.unsynced = 0;
    }
  }

  private writeOut(bytes: Buffer): void {
    writeFully(defaultFileIO, this.fd, bytes, this.fileSize);
    this.crc = zlib.crc32(bytes, this.crc);
    this.fileSize += bytes.length;
    this.unreported += bytes.length;
    this.unsynced += bytes.length;
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
    this.offsetIndex.closeFile();
    this.timeIndex.closeFile();
  }
}
