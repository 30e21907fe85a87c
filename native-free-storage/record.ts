import zlib from 'node:zlib';

/**
 * Record format, version 1 (all integers little-endian):
 *
 *   0  u32 crc          CRC32 (zlib polynomial) of bytes [4, length): everything after this field
 *   4  u32 length       total record length in bytes, this header included
 *   8  u8  magic        format version, 1
 *   9  u8  headerLength bytes before the body (32 in v1); later versions may grow the header and
 *                       older readers still find the body
 *  10  u16 attributes   engine-defined flags (priority, schedule, tombstone…); opaque to storage
 *  12  u32 stream       engine-defined tag (a hash of the event type); lets readers skip records
 *  16  u64 offset       the record's offset in its log
 *  24  u64 timestamp    milliseconds since the epoch, non-decreasing within a log
 *  32  …   body         the event's fields, encoded by the engine
 *
 * The checksum covers the length, so a torn or corrupted length field cannot make a reader accept
 * a record of the wrong size.
 */
export const RECORD_MAGIC = 1;
export const RECORD_HEADER_BYTES = 32;
/** Smallest valid length field; anything smaller is corruption. */
export const MIN_RECORD_BYTES = RECORD_HEADER_BYTES;
const TWO_32 = 0x1_0000_0000;

export interface LogRecord {
  offset: number;
  timestamp: number;
  attributes: number;
  stream: number;
  body: Buffer;
}

export interface RecordFields {
  offset: number;
  timestamp: number;
  attributes: number;
  stream: number;
  body: Uint8Array;
}

export function encodedRecordBytes(bodyLength: number): number {
  return RECORD_HEADER_BYTES + bodyLength;
}

/**
 * Encode one record into `target` at `position`; returns the position after it. `view` is a DataView
 * over the same bytes as `target` (header fields go through it: cheaper than Buffer's checked writers).
 */
export function encodeRecordInto(target: Buffer, view: DataView, position: number, fields: RecordFields): number {
  return encodeRecordFrom(target, view, position, fields.offset, fields.timestamp, fields.attributes, fields.stream, fields.body, 0, fields.body.length);
}

/**
 * encodeRecordInto with the fields as arguments and the body as bytes [start, end) of `source`:
 * the append path encodes whole batches this way, without an object or a view per record.
 */
export function encodeRecordFrom(
  target: Buffer,
  view: DataView,
  position: number,
  offset: number,
  timestamp: number,
  attributes: number,
  stream: number,
  source: Uint8Array,
  start: number,
  end: number,
): number {
  const length = RECORD_HEADER_BYTES + end - start;
  view.setUint32(position + 4, length, true);
  view.setUint8(position + 8, RECORD_MAGIC);
  view.setUint8(position + 9, RECORD_HEADER_BYTES);
  view.setUint16(position + 10, attributes, true);
  view.setUint32(position + 12, stream >>> 0, true);
  // `x >>> 0` is x mod 2^32 for the safe integers offsets and timestamps are (cheaper than %).
  const offsetLow = offset >>> 0;
  view.setUint32(position + 16, offsetLow, true);
  view.setUint32(position + 20, (offset - offsetLow) / TWO_32, true);
  const timeLow = timestamp >>> 0;
  view.setUint32(position + 24, timeLow, true);
  view.setUint32(position + 28, (timestamp - timeLow) / TWO_32, true);
  target.set(start === 0 && end === source.length ? source : source.subarray(start, end), position + RECORD_HEADER_BYTES);
  view.setUint32(position, zlib.crc32(target.subarray(position + 4, position + length)), true);
  return position + length;
}

/** A DataView over exactly the bytes of `buffer`. */
export function viewOf(buffer: Buffer): DataView {
  return new DataView(buffer.buffer, buffer.byteOffset, buffer.length);
}

export type DecodeResult =
  | { status: 'ok'; record: LogRecord; length: number }
  | { status: 'incomplete'; needed: number } // the buffer ends inside the record
  | { status: 'corrupt'; reason: string };

/**
 * Decode the record at `position` of `buffer`. `incomplete` means more bytes are needed (at the end of
 * a file that is a torn write); `corrupt` means the bytes can never form a valid record.
 */
export function decodeRecordAt(buffer: Buffer, position: number, verifyChecksum: boolean): DecodeResult {
  const available = buffer.length - position;
  if (available < 8) return { status: 'incomplete', needed: 8 };
  const length = buffer.readUInt32LE(position + 4);
  if (length < MIN_RECORD_BYTES) return { status: 'corrupt', reason: `length ${length} below header size` };
  if (available < length) return { status: 'incomplete', needed: length };
  if (verifyChecksum) {
    const stored = buffer.readUInt32LE(position);
    const actual = zlib.crc32(buffer.subarray(position + 4, position + length));
    if (stored !== actual) return { status: 'corrupt', reason: 'checksum mismatch' };
  }
  if (buffer[position + 8] !== RECORD_MAGIC) return { status: 'corrupt', reason: `unknown magic ${buffer[position + 8]}` };
  const headerLength = buffer[position + 9]!;
  if (headerLength < RECORD_HEADER_BYTES || headerLength > length) {
    return { status: 'corrupt', reason: `header length ${headerLength}` };
  }
  return {
    status: 'ok',
    length,
    record: {
      offset: readU64(buffer, position + 16),
      timestamp: readU64(buffer, position + 24),
      attributes: buffer.readUInt16LE(position + 10),
      stream: buffer.readUInt32LE(position + 12),
      body: buffer.subarray(position + headerLength, position + length),
    },
  };
}

/** What probeRecordAt answers for a record that is not (yet) whole, and for one that can never be valid. */
export const RECORD_INCOMPLETE = 0;
export const RECORD_CORRUPT = -1;

/**
 * decodeRecordAt without building a result: the record's length when the record at `position` is
 * valid (its fields are then read with the record* readers below), else RECORD_INCOMPLETE or
 * RECORD_CORRUPT (decodeRecordAt tells how much is needed, or why).
 */
export function probeRecordAt(buffer: Buffer, position: number, verifyChecksum: boolean): number {
  const available = buffer.length - position;
  if (available < 8) return RECORD_INCOMPLETE;
  const length = buffer.readUInt32LE(position + 4);
  if (length < MIN_RECORD_BYTES) return RECORD_CORRUPT;
  if (available < length) return RECORD_INCOMPLETE;
  if (verifyChecksum && buffer.readUInt32LE(position) !== zlib.crc32(buffer.subarray(position + 4, position + length))) return RECORD_CORRUPT;
  if (buffer[position + 8] !== RECORD_MAGIC) return RECORD_CORRUPT;
  const headerLength = buffer[position + 9]!;
  if (headerLength < RECORD_HEADER_BYTES || headerLength > length) return RECORD_CORRUPT;
  return length;
}

export function recordOffset(buffer: Buffer, position: number): number {
  return readU64(buffer, position + 16);
}

export function recordTimestamp(buffer: Buffer, position: number): number {
  return readU64(buffer, position + 24);
}

export function recordAttributes(buffer: Buffer, position: number): number {
  return buffer.readUInt16LE(position + 10);
}

export function recordStream(buffer: Buffer, position: number): number {
  return buffer.readUInt32LE(position + 12);
}

/** Where the body of the (valid) record at `position` starts. */
export function recordBodyStart(buffer: Buffer, position: number): number {
  return position + buffer[position + 9]!;
}

/** Length field of the record at `position`, without validation (for sizing reads). */
export function peekRecordLength(buffer: Buffer, position: number): number {
  return buffer.readUInt32LE(position + 4);
}

function readU64(source: Buffer, position: number): number {
  return source.readUInt32LE(position) + source.readUInt32LE(position + 4) * TWO_32;
}
