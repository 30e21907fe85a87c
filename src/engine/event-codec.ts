import { EngineError } from './errors.js';
import { MAX_EVENT_PRIORITY, SIGNATURE_BYTES, type StoredEvent } from './event.js';
import { EVENT_BODY_VERSION, FLAG_KEY, FLAG_RECIPIENTS, FLAG_SIGNATURE } from './event-decoding.js';

/**
 * The record body the engine stores in the log: a versioned binary encoding of a StoredEvent.
 * Layout v1 (little-endian; docs/events.md has the full table):
 *
 *   u8 version=1 | u8 len + type utf8 | u8 len + id ascii | u8 priority | u8 flags
 *   u64 publishedAt | u64 deliverAt | u64 expiresAt | u16 len + sender utf8
 *   [flags bit0] u16 len + key utf8
 *   u16 header count, each: u16 len + name utf8, u32 len + value utf8
 *   [flags bit1] u16 recipient count, each: u16 len + client id utf8
 *   [flags bit2] 64 bytes signature
 *   u32 len + payload
 *
 * Type and id come first so readers can route and deduplicate without decoding the rest.
 * Encoding computes the size first and fills one buffer: this runs once per published event
 * and once per delivery, so no per-field allocations.
 */
export {
  decodeEventBody,
  decodeEventBodyAt,
  readEventId,
  readEventRouting,
  readEventSchedule,
  readEventType,
  EVENT_BODY_VERSION,
  type EventRouting,
} from './event-decoding.js';

const U8_MAX = 0xff;
const U16_MAX = 0xffff;
const U32_MAX = 0xffff_ffff;
const TWO_32 = 0x1_0000_0000;
/** version, type length, id length, priority, flags, three u64 times, sender length, header count, payload length */
const FIXED_BYTES = 1 + 1 + 1 + 1 + 1 + 24 + 2 + 2 + 4;
/** Strings up to this many UTF-16 units are copied byte by byte in JS: cheaper than a native call. */
const SHORT_STRING = 48;

/**
 * Room for encoded bodies: `reserve(size)` makes room for `size` bytes and answers where they go in
 * `buffer` (a batch being assembled reserves at its end).
 */
export interface BodyTarget {
  reserve(size: number): number;
  readonly buffer: Buffer;
}

/** The fields of an event a body holds besides those passed beside them (id, sender, times, priority). */
export interface EventFields {
  type: string;
  payload: Uint8Array;
  headers?: Readonly<Record<string, string>> | undefined;
  key?: string | null | undefined;
  recipients?: readonly string[] | null | undefined;
  signature?: Uint8Array | null | undefined;
}

/**
 * Encode `event` into a buffer of its own. Returns the encoded bytes.
 */
export function encodeEventBody(event: StoredEvent): Buffer {
  const target = { buffer: Buffer.alloc(0), reserve: (size: number) => ((target.buffer = Buffer.allocUnsafe(size)), 0) };
  const size = encodeEventBodyInto(target, event, event.id, event.sender, event.publishedAt, event.priority, event.deliverAt, event.expiresAt);
  return target.buffer.length === size ? target.buffer : target.buffer.subarray(0, size);
}

/**
 * Encode an event straight into `target` (a batch being assembled), saving an allocation and a copy
 * per event: `fields` (a validated publish input, say) with the engine-set fields beside them, so no
 * event object is built for it. Returns the body's size; it starts where `target.reserve` said.
 */
export function encodeEventBodyInto(
  target: BodyTarget,
  fields: EventFields,
  id: string,
  sender: string,
  publishedAt: number,
  priority: number,
  deliverAt: number,
  expiresAt: number,
): number {
  const { type, payload } = fields;
  const headers = fields.headers;
  const key = fields.key ?? null;
  const recipients = fields.recipients ?? null;
  const signature = fields.signature ?? null;
  const typeBytes = utf8Length(type);
  if (typeBytes === 0 || typeBytes > U8_MAX) throw unencodable('type', `type must be 1-${U8_MAX} bytes, got ${typeBytes}`);
  const idLength = id.length;
  if (idLength === 0 || idLength > U8_MAX) throw unencodable('id', `id must be 1-${U8_MAX} characters, got ${idLength}`);
  if (!Number.isInteger(priority) || priority < 0 || priority > MAX_EVENT_PRIORITY) {
    throw unencodable('priority', `priority must be an integer 0-${MAX_EVENT_PRIORITY}, got ${priority}`);
  }
  checkTime('publishedAt', publishedAt);
  checkTime('deliverAt', deliverAt);
  checkTime('expiresAt', expiresAt);
  const senderBytes = u16Length('sender', sender);

  let size = FIXED_BYTES + typeBytes + idLength + senderBytes + payload.byteLength;
  let flags = 0;
  let keyBytes = 0;
  if (key !== null) {
    flags |= FLAG_KEY;
    keyBytes = u16Length('key', key);
    size += 2 + keyBytes;
  }
  let headerCount = 0;
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    headerCount++;
    const valueBytes = utf8Length(headers[name]!);
    if (valueBytes > U32_MAX) throw unencodable('headers', `header ${JSON.stringify(name)} value is too large`);
    size += 2 + u16Length('headers', name) + 4 + valueBytes;
  }
  if (headerCount > U16_MAX) throw unencodable('headers', `at most ${U16_MAX} headers, got ${headerCount}`);
  if (recipients !== null) {
    flags |= FLAG_RECIPIENTS;
    if (recipients.length > U16_MAX) throw unencodable('recipients', `at most ${U16_MAX} recipients, got ${recipients.length}`);
    size += 2;
    for (const recipient of recipients) size += 2 + u16Length('recipients', recipient);
  }
  if (signature !== null) {
    if (signature.byteLength !== SIGNATURE_BYTES) {
      throw unencodable('signature', `signature must be ${SIGNATURE_BYTES} bytes, got ${signature.byteLength}`);
    }
    flags |= FLAG_SIGNATURE;
    size += SIGNATURE_BYTES;
  }
  if (payload.byteLength > U32_MAX) throw unencodable('payload', 'payload is too large');

  const start = target.reserve(size);
  const out = target.buffer;
  out[start] = EVENT_BODY_VERSION;
  out[start + 1] = typeBytes;
  let p = writeString(out, start + 2, type);
  out[p++] = idLength;
  p = writeAscii(out, p, id, 'id');
  out[p++] = priority;
  out[p++] = flags;
  p = writeU64(out, p, publishedAt);
  p = writeU64(out, p, deliverAt);
  p = writeU64(out, p, expiresAt);
  p = writeU16String(out, p, sender, senderBytes);
  if (key !== null) p = writeU16String(out, p, key, keyBytes);
  p = writeU16(out, p, headerCount);
  if (headerCount > 0) {
    for (const name in headers) {
      if (!Object.hasOwn(headers, name)) continue;
      const nameEnd = writeString(out, p + 2, name);
      writeU16(out, p, nameEnd - p - 2);
      const valueEnd = writeString(out, nameEnd + 4, headers[name]!);
      writeU32(out, nameEnd, valueEnd - nameEnd - 4);
      p = valueEnd;
    }
  }
  if (recipients !== null) {
    p = writeU16(out, p, recipients.length);
    for (const recipient of recipients) {
      const end = writeString(out, p + 2, recipient);
      writeU16(out, p, end - p - 2);
      p = end;
    }
  }
  if (signature !== null) {
    out.set(signature, p);
    p += SIGNATURE_BYTES;
  }
  p = writeU32(out, p, payload.byteLength);
  out.set(payload, p);
  return size;
}

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Bounds the memory of the tag cache; the oldest entry is dropped when full. */
export const STREAM_TAG_CACHE_ENTRIES = 100_000;
const streamTagCache = new Map<string, number>();

/** u32 FNV-1a of the UTF-8 type: the record's stream tag, so log readers can skip other types. */
export function eventStreamTag(type: string): number {
  const cached = streamTagCache.get(type);
  if (cached !== undefined) return cached;
  let hash = FNV_OFFSET_BASIS;
  const ascii = Buffer.byteLength(type, 'utf8') === type.length;
  const bytes: ArrayLike<number> | null = ascii ? null : Buffer.from(type, 'utf8');
  const length = bytes === null ? type.length : bytes.length;
  for (let i = 0; i < length; i++) {
    hash ^= bytes === null ? type.charCodeAt(i) : bytes[i]!;
    hash = Math.imul(hash, FNV_PRIME);
  }
  hash >>>= 0;
  if (streamTagCache.size >= STREAM_TAG_CACHE_ENTRIES) {
    streamTagCache.delete(streamTagCache.keys().next().value!);
  }
  streamTagCache.set(type, hash);
  return hash;
}

function unencodable(field: string, message: string): EngineError {
  return new EngineError('INVALID_EVENT', `cannot encode event: ${message}`, { field });
}

function checkTime(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw unencodable(field, `${field} must be a non-negative integer of milliseconds, got ${value}`);
  }
}

/** UTF-8 bytes of `value`: counted in JS for short ASCII strings (most are), cheaper than a native call. */
function utf8Length(value: string): number {
  const length = value.length;
  if (length > SHORT_STRING) return Buffer.byteLength(value, 'utf8');
  for (let i = 0; i < length; i++) if (value.charCodeAt(i) >= 0x80) return Buffer.byteLength(value, 'utf8');
  return length;
}

function u16Length(field: string, value: string): number {
  const bytes = utf8Length(value);
  if (bytes > U16_MAX) throw unencodable(field, `${field} strings must be at most ${U16_MAX} bytes, got ${bytes}`);
  return bytes;
}

/** Write `value` as UTF-8 at `p`; returns the position after it. */
function writeString(out: Buffer, p: number, value: string): number {
  const length = value.length;
  if (length <= SHORT_STRING) {
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) return p + out.write(value, p, 'utf8');
      out[p + i] = code;
    }
    return p + length;
  }
  return p + out.write(value, p, 'utf8');
}

/** Write `value`, which must be ASCII (checked as it is written: nothing is kept of a body that throws). */
function writeAscii(out: Buffer, p: number, value: string, field: string): number {
  const length = value.length;
  for (let i = 0; i < length; i++) {
    const code = value.charCodeAt(i);
    if (code >= 0x80) throw unencodable(field, `${field} must be ASCII`);
    out[p + i] = code;
  }
  return p + length;
}

function writeU16String(out: Buffer, p: number, value: string, bytes: number): number {
  writeU16(out, p, bytes);
  return writeString(out, p + 2, value);
}

function writeU16(out: Buffer, p: number, value: number): number {
  out[p] = value;
  out[p + 1] = value >>> 8;
  return p + 2;
}

function writeU32(out: Buffer, p: number, value: number): number {
  out[p] = value;
  out[p + 1] = value >>> 8;
  out[p + 2] = value >>> 16;
  out[p + 3] = value >>> 24;
  return p + 4;
}

function writeU64(out: Buffer, p: number, value: number): number {
  // `value >>> 0` is value mod 2^32 for the non-negative safe integers written here (cheaper than %).
  const low = value >>> 0;
  writeU32(out, p, low);
  return writeU32(out, p + 4, (value - low) / TWO_32);
}
