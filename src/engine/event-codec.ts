import { EngineError } from './errors.js';
import { MAX_EVENT_PRIORITY, SIGNATURE_BYTES, type StoredEvent } from './event.js';

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
export const EVENT_BODY_VERSION = 1;

const FLAG_KEY = 1;
const FLAG_RECIPIENTS = 2;
const FLAG_SIGNATURE = 4;
const KNOWN_FLAGS = FLAG_KEY | FLAG_RECIPIENTS | FLAG_SIGNATURE;

const U8_MAX = 0xff;
const U16_MAX = 0xffff;
const U32_MAX = 0xffff_ffff;
const TWO_32 = 0x1_0000_0000;
/** version, type length, id length, priority, flags, three u64 times, sender length, header count, payload length */
const FIXED_BYTES = 1 + 1 + 1 + 1 + 1 + 24 + 2 + 2 + 4;
/** Strings up to this many UTF-16 units are copied byte by byte in JS: cheaper than a native call. */
const SHORT_STRING = 48;

/** Where to write an encoded body: `size` bytes at `offset` of `buffer`. */
export type BodyAllocator = (size: number) => { buffer: Buffer; offset: number };

const ownBuffer: BodyAllocator = (size) => ({ buffer: Buffer.allocUnsafe(size), offset: 0 });

/**
 * Encode `event`; with `allocate`, straight into the caller's buffer (a batch being assembled),
 * saving an allocation and a copy per event. Returns the encoded bytes.
 */
export function encodeEventBody(event: StoredEvent, allocate: BodyAllocator = ownBuffer): Buffer {
  const { type, id, sender, key, headers, recipients, signature, payload } = event;
  const typeBytes = Buffer.byteLength(type, 'utf8');
  if (typeBytes === 0 || typeBytes > U8_MAX) throw unencodable('type', `type must be 1-${U8_MAX} bytes, got ${typeBytes}`);
  if (id.length === 0 || id.length > U8_MAX) throw unencodable('id', `id must be 1-${U8_MAX} characters, got ${id.length}`);
  if (Buffer.byteLength(id, 'utf8') !== id.length) throw unencodable('id', 'id must be ASCII');
  const priority = event.priority;
  if (!Number.isInteger(priority) || priority < 0 || priority > MAX_EVENT_PRIORITY) {
    throw unencodable('priority', `priority must be an integer 0-${MAX_EVENT_PRIORITY}, got ${priority}`);
  }
  checkTime('publishedAt', event.publishedAt);
  checkTime('deliverAt', event.deliverAt);
  checkTime('expiresAt', event.expiresAt);
  const senderBytes = u16Length('sender', sender);

  let size = FIXED_BYTES + typeBytes + id.length + senderBytes + payload.byteLength;
  let flags = 0;
  let keyBytes = 0;
  if (key !== null) {
    flags |= FLAG_KEY;
    keyBytes = u16Length('key', key);
    size += 2 + keyBytes;
  }
  const headerNames = Object.keys(headers);
  if (headerNames.length > U16_MAX) throw unencodable('headers', `at most ${U16_MAX} headers, got ${headerNames.length}`);
  for (const name of headerNames) {
    const valueBytes = Buffer.byteLength(headers[name]!, 'utf8');
    if (valueBytes > U32_MAX) throw unencodable('headers', `header ${JSON.stringify(name)} value is too large`);
    size += 2 + u16Length('headers', name) + 4 + valueBytes;
  }
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

  const { buffer: out, offset: start } = allocate(size);
  out[start] = EVENT_BODY_VERSION;
  out[start + 1] = typeBytes;
  let p = writeString(out, start + 2, type);
  out[p++] = id.length;
  p = writeString(out, p, id);
  out[p++] = priority;
  out[p++] = flags;
  p = writeU64(out, p, event.publishedAt);
  p = writeU64(out, p, event.deliverAt);
  p = writeU64(out, p, event.expiresAt);
  p = writeU16String(out, p, sender, senderBytes);
  if (key !== null) p = writeU16String(out, p, key, keyBytes);
  p = writeU16(out, p, headerNames.length);
  for (const name of headerNames) {
    const nameEnd = writeString(out, p + 2, name);
    writeU16(out, p, nameEnd - p - 2);
    const valueEnd = writeString(out, nameEnd + 4, headers[name]!);
    writeU32(out, nameEnd, valueEnd - nameEnd - 4);
    p = valueEnd;
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
  return start === 0 && out.length === size ? out : out.subarray(start, start + size);
}

/**
 * Decode a body written by encodeEventBody. `payload` and `signature` are views into `body`, not
 * copies: copy them if `body`'s memory is reused. Anything malformed is EngineError('INTERNAL'):
 * bodies are written only by the engine, so a bad one means corruption or a bug.
 */
export function decodeEventBody(body: Uint8Array): StoredEvent {
  const r = new BodyReader(body);
  r.version();
  const type = r.string(r.u8());
  const id = r.latin1(r.u8());
  const priority = r.u8();
  if (priority > MAX_EVENT_PRIORITY) throw corrupt(`priority ${priority} is above ${MAX_EVENT_PRIORITY}`);
  const flags = r.u8();
  if ((flags & ~KNOWN_FLAGS) !== 0) throw corrupt(`unknown flags 0x${flags.toString(16)}`);
  const publishedAt = r.u64();
  const deliverAt = r.u64();
  const expiresAt = r.u64();
  const sender = r.string(r.u16());
  const key = (flags & FLAG_KEY) !== 0 ? r.string(r.u16()) : null;
  const headers: Record<string, string> = {};
  const headerCount = r.u16();
  for (let i = 0; i < headerCount; i++) {
    const name = r.string(r.u16());
    const value = r.string(r.u32());
    if (name === '__proto__') {
      // A plain assignment would set the prototype instead of adding a property.
      Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
    } else {
      headers[name] = value;
    }
  }
  let recipients: string[] | null = null;
  if ((flags & FLAG_RECIPIENTS) !== 0) {
    const count = r.u16();
    recipients = new Array<string>(count);
    for (let i = 0; i < count; i++) recipients[i] = r.string(r.u16());
  }
  const signature = (flags & FLAG_SIGNATURE) !== 0 ? r.bytes(SIGNATURE_BYTES) : null;
  const payload = r.bytes(r.u32());
  r.end();
  return { id, type, payload, headers, key, sender, publishedAt, recipients, signature, priority, deliverAt, expiresAt };
}

/** The event type, without decoding the rest of the body. */
export function readEventType(body: Uint8Array): string {
  const r = new BodyReader(body);
  r.version();
  return r.string(r.u8());
}

/** What delivery routing needs: the ordering key (the event's key, else its type) and recipients. */
export interface EventRouting {
  orderingKey: string;
  recipients: string[] | null;
  /** ms; 0 when the event does not expire. */
  expiresAt: number;
}

/** Key and recipients, skipping headers, signature and payload (per event read for delivery). */
export function readEventRouting(body: Uint8Array): EventRouting {
  const r = new BodyReader(body);
  r.version();
  const type = r.string(r.u8());
  r.skip(r.u8()); // id
  r.skip(1); // priority
  const flags = r.u8();
  r.skip(16); // publishedAt, deliverAt
  const expiresAt = r.u64();
  r.skip(r.u16()); // sender
  const orderingKey = (flags & FLAG_KEY) !== 0 ? r.string(r.u16()) : type;
  if ((flags & FLAG_RECIPIENTS) === 0) return { orderingKey, recipients: null, expiresAt };
  const headerCount = r.u16();
  for (let i = 0; i < headerCount; i++) {
    r.skip(r.u16());
    r.skip(r.u32());
  }
  const count = r.u16();
  const recipients = new Array<string>(count);
  for (let i = 0; i < count; i++) recipients[i] = r.string(r.u16());
  return { orderingKey, recipients, expiresAt };
}

/** Priority and due time (0: not scheduled), read from their fixed places. */
export function readEventSchedule(body: Uint8Array): { priority: number; deliverAt: number } {
  const r = new BodyReader(body);
  r.version();
  r.skip(r.u8()); // type
  r.skip(r.u8()); // id
  const priority = r.u8();
  r.skip(1 + 8); // flags, publishedAt
  return { priority, deliverAt: r.u64() };
}

/** The event id, without decoding the rest of the body. */
export function readEventId(body: Uint8Array): string {
  const r = new BodyReader(body);
  r.version();
  r.skip(r.u8());
  return r.latin1(r.u8());
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

class BodyReader {
  private readonly buf: Buffer;
  private pos = 0;

  constructor(body: Uint8Array) {
    this.buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }

  version(): void {
    const version = this.u8();
    if (version !== EVENT_BODY_VERSION) throw corrupt(`unsupported event body version ${version}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return b[p]! | (b[p + 1]! << 8);
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x100_0000;
  }

  u64(): number {
    const low = this.u32();
    const high = this.u32();
    if (high > 0x1f_ffff) throw corrupt('a timestamp exceeds 2^53');
    return high * TWO_32 + low;
  }

  string(length: number): string {
    this.need(length);
    const start = this.pos;
    this.pos = start + length;
    return this.buf.toString('utf8', start, start + length);
  }

  latin1(length: number): string {
    this.need(length);
    const start = this.pos;
    this.pos = start + length;
    return this.buf.toString('latin1', start, start + length);
  }

  bytes(length: number): Uint8Array {
    this.need(length);
    const start = this.pos;
    this.pos = start + length;
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset + start, length);
  }

  skip(length: number): void {
    this.need(length);
    this.pos += length;
  }

  end(): void {
    if (this.pos !== this.buf.length) throw corrupt(`${this.buf.length - this.pos} bytes after the payload`);
  }

  private need(length: number): void {
    if (this.pos + length > this.buf.length) {
      throw corrupt(`truncated: needs ${length} bytes at ${this.pos} of ${this.buf.length}`);
    }
  }
}

function corrupt(reason: string): EngineError {
  return new EngineError('INTERNAL', `malformed event body: ${reason}`);
}

function unencodable(field: string, message: string): EngineError {
  return new EngineError('INVALID_EVENT', `cannot encode event: ${message}`, { field });
}

function checkTime(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw unencodable(field, `${field} must be a non-negative integer of milliseconds, got ${value}`);
  }
}

function u16Length(field: string, value: string): number {
  const bytes = Buffer.byteLength(value, 'utf8');
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
  writeU32(out, p, value % TWO_32);
  return writeU32(out, p + 4, Math.floor(value / TWO_32));
}
