import fs from 'node:fs';
import zlib from 'node:zlib';
import { readAt } from './file-io.js';
import { StorageError } from './errors.js';
import { MIN_RECORD_BYTES, RECORD_HEADER_BYTES, RECORD_MAGIC, type LogRecord } from './record.js';

const TWO_32 = 0x1_0000_0000;
/** Records longer than this are corruption (as Segment.recordAt judges). */
const MAX_RECORD_BYTES = 1 << 30;

/**
 * Whole, checksum-verified records read from a segment file in one chunk: their places in `buffer`.
 * Header fields are read in place; a LogRecord is built only for a caller that needs one (a policy
 * callback), so copying records costs no allocation per record beyond the checksum's view.
 */
export class RecordChunk {
  readonly positions: number[] = [];
  readonly lengths: number[] = [];
  bytesConsumed = 0;
  bytesRead = 0;

  constructor(readonly buffer: Buffer) {}

  get count(): number {
    return this.positions.length;
  }

  offset(i: number): number {
    const at = this.positions[i]! + 16;
    return this.buffer.readUInt32LE(at) + this.buffer.readUInt32LE(at + 4) * TWO_32;
  }

  timestamp(i: number): number {
    const at = this.positions[i]! + 24;
    return this.buffer.readUInt32LE(at) + this.buffer.readUInt32LE(at + 4) * TWO_32;
  }

  /** The record as readers see it; its body is a view of the chunk. */
  record(i: number): LogRecord {
    const at = this.positions[i]!;
    return {
      offset: this.offset(i),
      timestamp: this.timestamp(i),
      attributes: this.buffer.readUInt16LE(at + 10),
      stream: this.buffer.readUInt32LE(at + 12),
      body: this.buffer.subarray(at + this.buffer[at + 9]!, at + this.lengths[i]!),
    };
  }
}

/**
 * Reads the records of a segment file from byte 0 to `endPosition`, in chunks of about `chunkBytes`
 * (a record larger than a chunk is read alone), checksum-verifying each. Used by compaction, which
 * must never copy or drop a record it could not read: anything torn or corrupt is an error.
 */
export class SegmentRecordReader {
  private position = 0;
  /** Reused for every chunk: a chunk's records are done with before the next is read. */
  private readonly scratch: Buffer;

  constructor(
    private readonly fd: number,
    private readonly endPosition: number,
    chunkBytes: number,
    /** Names the file in errors. */
    private readonly label: string,
  ) {
    this.scratch = Buffer.allocUnsafe(Math.min(chunkBytes, Math.max(endPosition, 1)));
  }

  get done(): boolean {
    return this.position >= this.endPosition;
  }

  /** The next chunk of whole records; null at the end. It is valid until the next call. */
  nextChunk(): RecordChunk | null {
    if (this.done) return null;
    const start = this.position;
    let buffer = this.readChunk(start, Math.min(this.scratch.length, this.endPosition - start));
    let bytesRead = buffer.length;
    if (buffer.length === 0) throw new StorageError('COMPACTION_STALE', `${this.label}: file ends at byte ${start}, expected ${this.endPosition} (the file changed)`);
    let chunk = new RecordChunk(buffer);
    let at = 0;
    while (at < buffer.length) {
      const lengthKnown = buffer.length - at >= 8;
      const length = lengthKnown ? buffer.readUInt32LE(at + 4) : 0;
      if (lengthKnown && (length < MIN_RECORD_BYTES || length > MAX_RECORD_BYTES)) throw this.corrupt(start + at, `length ${length}`);
      if (!lengthKnown || at + length > buffer.length) {
        const needed = lengthKnown ? length : 8;
        if (start + at + needed > this.endPosition) {
          throw new StorageError('COMPACTION_STALE', `${this.label}: record at byte ${start + at} runs past byte ${this.endPosition} (the file changed)`);
        }
        if (at > 0) break;
        // One record larger than a chunk: read it alone.
        buffer = readAt(this.fd, start, needed);
        bytesRead += buffer.length;
        if (buffer.length < needed) throw new StorageError('COMPACTION_STALE', `${this.label}: file ends inside the record at byte ${start}`);
        chunk = new RecordChunk(buffer);
        continue;
      }
      if (buffer.readUInt32LE(at) !== zlib.crc32(buffer.subarray(at + 4, at + length))) throw this.corrupt(start + at, 'checksum mismatch');
      if (buffer[at + 8] !== RECORD_MAGIC) throw this.corrupt(start + at, `unknown magic ${buffer[at + 8]}`);
      const headerLength = buffer[at + 9]!;
      if (headerLength < RECORD_HEADER_BYTES || headerLength > length) throw this.corrupt(start + at, `header length ${headerLength}`);
      chunk.positions.push(at);
      chunk.lengths.push(length);
      at += length;
    }
    this.position = start + at;
    chunk.bytesConsumed = at;
    chunk.bytesRead = bytesRead;
    return chunk;
  }

  private readChunk(position: number, length: number): Buffer {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, this.scratch, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return this.scratch.subarray(0, done);
  }

  private corrupt(position: number, reason: string): StorageError {
    return new StorageError('CORRUPT_RECORD', `${this.label} byte ${position}: ${reason}; not compacted`);
  }
}
