import os from 'node:os';
import { unpack } from 'msgpackr';
import { EngineError } from '../errors.js';

/**
 * The stored form of a batch of trail entries: one record of the trail log. Columns, not an object
 * per entry (a delivery and an ack per event made per-entry objects the trail's main cost).
 *
 * Version 2 (little-endian), written now:
 *
 *   u8 version=2 | u32 count | u16 name count, each: u16 length + utf8
 *   kind u8[count] | offset f64[count] | at f64[count] (ms)
 *   subscription u16[count] | consumer u16[count]   (index into the names; 0xffff: none)
 *   attempt u32[count]                               (0xffffffff: none)
 *   reasons: u32 n, each: u32 entry + u32 length + utf8
 *   delays:  u32 n, each: u32 entry + f64 ms
 *   copies:  u32 n, each: u32 entry + f64 offset of the copy appended when due
 *
 * Version 1 (msgpack of the same columns as arrays, `{v: 1, kind, offset, ...}`) is still read.
 */
export interface TrailColumns {
  count: number;
  kinds: ArrayLike<number>;
  offsets: ArrayLike<number>;
  times: ArrayLike<number>;
  /** Index into `names`, -1 for none. */
  subscriptions: ArrayLike<number>;
  consumers: ArrayLike<number>;
  /** -1 for none. */
  attempts: ArrayLike<number>;
  names: readonly string[];
  /** Sparse: entry index -> value. */
  reasons: ReadonlyMap<number, string>;
  delays: ReadonlyMap<number, number>;
  copies: ReadonlyMap<number, number>;
}

const VERSION = 2;
const NO_NAME = 0xffff;
const NO_ATTEMPT = 0xffff_ffff;
/** Names a batch may hold: their indexes are u16, one value kept for none. */
export const MAX_TRAIL_NAMES = NO_NAME;

export function encodeTrailBatch(batch: TrailColumns): Buffer {
  const { count, names } = batch;
  if (names.length > MAX_TRAIL_NAMES) throw new EngineError('INTERNAL', `a trail batch names ${names.length} subscriptions and consumers, at most ${MAX_TRAIL_NAMES}`);
  let size = 1 + 4 + 2 + count * (1 + 8 + 8 + 2 + 2 + 4) + 12;
  const nameBytes = names.map((name) => Buffer.byteLength(name, 'utf8'));
  for (const bytes of nameBytes) {
    // Subscription and consumer names are far shorter (their own limits); a longer one is a bug.
    if (bytes > 0xffff) throw new EngineError('INTERNAL', `a trail name of ${bytes} bytes, at most 65535`);
    size += 2 + bytes;
  }
  const reasonBytes = new Map<number, number>();
  for (const [index, reason] of batch.reasons) {
    const bytes = Buffer.byteLength(reason, 'utf8');
    reasonBytes.set(index, bytes);
    size += 4 + 4 + bytes;
  }
  size += (batch.delays.size + batch.copies.size) * (4 + 8);
  const out = Buffer.allocUnsafe(size);
  const view = new DataView(out.buffer, out.byteOffset, out.length);
  let p = 0;
  out[p++] = VERSION;
  view.setUint32(p, count, true);
  p += 4;
  view.setUint16(p, names.length, true);
  p += 2;
  names.forEach((name, i) => {
    view.setUint16(p, nameBytes[i]!, true);
    p += 2 + out.write(name, p + 2, 'utf8');
  });
  p = writeColumn(out, p, count, batch.kinds, 1, (at, value) => (out[at] = value));
  p = writeColumn(out, p, count, batch.offsets, 8, (at, value) => view.setFloat64(at, value, true));
  p = writeColumn(out, p, count, batch.times, 8, (at, value) => view.setFloat64(at, value, true));
  p = writeColumn(out, p, count, batch.subscriptions, 2, (at, value) => view.setUint16(at, value < 0 ? NO_NAME : value, true));
  p = writeColumn(out, p, count, batch.consumers, 2, (at, value) => view.setUint16(at, value < 0 ? NO_NAME : value, true));
  p = writeColumn(out, p, count, batch.attempts, 4, (at, value) => view.setUint32(at, value < 0 ? NO_ATTEMPT : value, true));
  view.setUint32(p, batch.reasons.size, true);
  p += 4;
  for (const [index, reason] of batch.reasons) {
    view.setUint32(p, index, true);
    view.setUint32(p + 4, reasonBytes.get(index)!, true);
    p += 8 + out.write(reason, p + 8, 'utf8');
  }
  for (const sparse of [batch.delays, batch.copies]) {
    view.setUint32(p, sparse.size, true);
    p += 4;
    for (const [index, value] of sparse) {
      view.setUint32(p, index, true);
      view.setFloat64(p + 4, value, true);
      p += 12;
    }
  }
  return out;
}

const LITTLE_ENDIAN = os.endianness() === 'LE';
const COLUMN_TYPES = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array, 8: Float64Array } as const;

/**
 * Write `count` values of a column as `width`-byte little-endian numbers at `p`: on a little-endian
 * machine as one copy of a typed array of that width (a negative index or attempt, -1, converts to
 * the all-ones "none" value of its width, as the format wants), else value by value.
 */
function writeColumn(out: Buffer, p: number, count: number, values: ArrayLike<number>, width: 1 | 2 | 4 | 8, write: (at: number, value: number) => void): number {
  if (LITTLE_ENDIAN && count > 0) {
    const Column = COLUMN_TYPES[width] as unknown as new (length: number) => Uint8Array | Uint16Array | Uint32Array | Float64Array;
    let column: Uint8Array | Uint16Array | Uint32Array | Float64Array;
    if (values instanceof Column) column = values.subarray(0, count);
    else {
      column = new Column(count);
      for (let i = 0; i < count; i++) column[i] = values[i]!;
    }
    out.set(new Uint8Array(column.buffer, column.byteOffset, count * width), p);
  } else {
    for (let i = 0; i < count; i++) write(p + i * width, values[i]!);
  }
  return p + count * width;
}

export function decodeTrailBatch(body: Uint8Array): TrailColumns {
  if (body.length === 0) throw new EngineError('INTERNAL', 'malformed trail batch: empty');
  if (body[0] !== VERSION) return decodeVersion1(body);
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let p = 1;
  const need = (bytes: number): void => {
    if (p + bytes > body.byteLength) throw new EngineError('INTERNAL', `malformed trail batch: truncated at byte ${p}`);
  };
  need(6);
  const count = view.getUint32(p, true);
  const nameCount = view.getUint16(p + 4, true);
  p += 6;
  const names: string[] = [];
  for (let i = 0; i < nameCount; i++) {
    need(2);
    const length = view.getUint16(p, true);
    need(2 + length);
    names.push(buf.toString('utf8', p + 2, p + 2 + length));
    p += 2 + length;
  }
  need(count * 25);
  const kinds = new Uint8Array(count);
  const offsets = new Float64Array(count);
  const times = new Float64Array(count);
  const subscriptions = new Int32Array(count);
  const consumers = new Int32Array(count);
  const attempts = new Float64Array(count);
  for (let i = 0; i < count; i++) kinds[i] = body[p++]!;
  for (let i = 0; i < count; i++, p += 8) offsets[i] = view.getFloat64(p, true);
  for (let i = 0; i < count; i++, p += 8) times[i] = view.getFloat64(p, true);
  for (let i = 0; i < count; i++, p += 2) subscriptions[i] = nameOrNone(view.getUint16(p, true), nameCount);
  for (let i = 0; i < count; i++, p += 2) consumers[i] = nameOrNone(view.getUint16(p, true), nameCount);
  for (let i = 0; i < count; i++, p += 4) {
    const attempt = view.getUint32(p, true);
    attempts[i] = attempt === NO_ATTEMPT ? -1 : attempt;
  }
  const reasons = new Map<number, string>();
  need(4);
  const reasonCount = view.getUint32(p, true);
  p += 4;
  for (let i = 0; i < reasonCount; i++) {
    need(8);
    const index = view.getUint32(p, true);
    const length = view.getUint32(p + 4, true);
    need(8 + length);
    reasons.set(index, buf.toString('utf8', p + 8, p + 8 + length));
    p += 8 + length;
  }
  const sparse = (): Map<number, number> => {
    need(4);
    const n = view.getUint32(p, true);
    p += 4;
    need(n * 12);
    const values = new Map<number, number>();
    for (let i = 0; i < n; i++, p += 12) values.set(view.getUint32(p, true), view.getFloat64(p + 4, true));
    return values;
  };
  const delays = sparse();
  const copies = sparse();
  if (p !== body.byteLength) throw new EngineError('INTERNAL', `malformed trail batch: ${body.byteLength - p} bytes after its end`);
  return { count, kinds, offsets, times, subscriptions, consumers, attempts, names, reasons, delays, copies };
}

function nameOrNone(index: number, nameCount: number): number {
  if (index === NO_NAME) return -1;
  if (index >= nameCount) throw new EngineError('INTERNAL', `malformed trail batch: name ${index} of ${nameCount}`);
  return index;
}

/** Batches written before version 2: msgpack of plain arrays, sparse fields as objects. */
interface Version1Batch {
  v: 1;
  kind: number[];
  offset: number[];
  at: number[];
  subscription: number[];
  consumer: number[];
  attempt: number[];
  names: string[];
  reason: Record<number, string>;
  delay: Record<number, number>;
  copy?: Record<number, number>;
}

function decodeVersion1(body: Uint8Array): TrailColumns {
  const batch = unpack(body) as Version1Batch;
  if (batch?.v !== 1) throw new EngineError('INTERNAL', 'malformed trail batch: unknown version');
  const sparse = <T>(values: Record<number, T> | undefined): Map<number, T> => new Map(Object.entries(values ?? {}).map(([index, value]) => [Number(index), value]));
  return {
    count: batch.offset.length,
    kinds: batch.kind,
    offsets: batch.offset,
    times: batch.at,
    subscriptions: batch.subscription,
    consumers: batch.consumer,
    attempts: batch.attempt,
    names: batch.names,
    reasons: sparse(batch.reason),
    delays: sparse(batch.delay),
    copies: sparse(batch.copy),
  };
}
