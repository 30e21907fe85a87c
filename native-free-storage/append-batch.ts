import { StorageError } from './errors.js';
import { encodedRecordBytes } from './record.js';
import type { SegmentWrite } from './segment.js';

/** One record to append, as an object (the general form). */
export interface AppendRecord {
  body: Uint8Array;
  /** Milliseconds since the epoch; default now. Raised to the previous record's if older. */
  timestamp?: number;
  /** u16, engine-defined. */
  attributes?: number;
  /** u32 tag, engine-defined (records of one event type share one). */
  stream?: number;
}

/**
 * Records whose bodies lie back to back in one buffer, as columns: body i is bytes
 * [starts[i], ends[i]) of `bytes`. The hot append path (a batch of published events) uses this
 * form, so appending costs no object and no view per record.
 */
export interface PackedRecords {
  count: number;
  bytes: Uint8Array;
  starts: Uint32Array;
  ends: Uint32Array;
  /** Milliseconds since the epoch; each is raised to the previous record's if older. */
  timestamps: Float64Array;
  attributes: Uint16Array;
  streams: Uint32Array;
}

const MAX_U32 = 0xffff_ffff;

/**
 * Check a batch of record objects and lay it out for the segment; throws (StorageError) before
 * anything is written. `previousTimestamp`: the log's newest, which timestamps never go below.
 */
export function prepareRecords(records: readonly AppendRecord[], firstOffset: number, previousTimestamp: number, maxRecordBytes: number): SegmentWrite {
  if (!Array.isArray(records) || records.length === 0) {
    throw new StorageError('INVALID_ARGUMENT', 'append needs a non-empty array of records');
  }
  const count = records.length;
  const bodies = new Array<Uint8Array>(count);
  const ends = new Array<number>(count);
  const attributes = new Array<number>(count);
  const streams = new Array<number>(count);
  const timestamps = new Array<number>(count);
  let previous = Math.max(previousTimestamp, 0);
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const record = records[i]!;
    if (!(record?.body instanceof Uint8Array)) throw new StorageError('INVALID_ARGUMENT', `record ${i}: body must be a Uint8Array`);
    checkSize(i, record.body.length, maxRecordBytes);
    const attribute = record.attributes ?? 0;
    if (!Number.isInteger(attribute) || attribute < 0 || attribute > 0xffff) throw new StorageError('INVALID_ARGUMENT', `record ${i}: attributes must be a u16`);
    const stream = record.stream ?? 0;
    if (!Number.isInteger(stream) || stream < 0 || stream > MAX_U32) throw new StorageError('INVALID_ARGUMENT', `record ${i}: stream must be a u32`);
    previous = Math.max(previous, checkTimestamp(i, record.timestamp ?? now));
    bodies[i] = record.body;
    ends[i] = record.body.length;
    attributes[i] = attribute;
    streams[i] = stream;
    timestamps[i] = previous;
  }
  return { count, firstOffset, source: null, bodies, starts: new Uint32Array(count), ends, attributes, streams, timestamps };
}

/** Check a packed batch and lay it out for the segment (its columns are used as they are, timestamps copied). */
export function preparePacked(packed: PackedRecords, firstOffset: number, previousTimestamp: number, maxRecordBytes: number): SegmentWrite {
  const { count, bytes, starts, ends } = packed;
  if (!Number.isInteger(count) || count <= 0) throw new StorageError('INVALID_ARGUMENT', 'append needs at least one record');
  if (!(bytes instanceof Uint8Array)) throw new StorageError('INVALID_ARGUMENT', 'packed records need their bytes as a Uint8Array');
  for (const [name, column] of [['starts', starts], ['ends', ends], ['timestamps', packed.timestamps], ['attributes', packed.attributes], ['streams', packed.streams]] as const) {
    if (!(column.length >= count)) throw new StorageError('INVALID_ARGUMENT', `packed records: ${name} has ${column.length} entries for ${count} records`);
  }
  const timestamps = new Float64Array(count);
  let previous = Math.max(previousTimestamp, 0);
  for (let i = 0; i < count; i++) {
    const start = starts[i]!;
    const end = ends[i]!;
    if (start > end || end > bytes.length) throw new StorageError('INVALID_ARGUMENT', `record ${i}: body [${start}, ${end}) is outside the ${bytes.length} bytes`);
    checkSize(i, end - start, maxRecordBytes);
    previous = Math.max(previous, checkTimestamp(i, packed.timestamps[i]!));
    timestamps[i] = previous;
  }
  return { count, firstOffset, source: bytes, bodies: null, starts, ends, attributes: packed.attributes, streams: packed.streams, timestamps };
}

function checkSize(i: number, bodyLength: number, maxRecordBytes: number): void {
  if (encodedRecordBytes(bodyLength) > maxRecordBytes) {
    throw new StorageError('RECORD_TOO_LARGE', `record ${i} is ${encodedRecordBytes(bodyLength)} bytes, above the limit of ${maxRecordBytes}`);
  }
}

function checkTimestamp(i: number, timestamp: number): number {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new StorageError('INVALID_ARGUMENT', `record ${i}: timestamp must be a non-negative integer`);
  return timestamp;
}
