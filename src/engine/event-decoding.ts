import { EngineError } from './errors.js';
import { MAX_EVENT_PRIORITY, SIGNATURE_BYTES, type StoredEvent } from './event.js';

/**
 * Reading the record bodies that encodeEventBody writes (layout in event-codec.ts), in place: a
 * body is bytes [start, end) of any Uint8Array, and reading it allocates nothing but what it returns
 * (no reader object, no view of the body). This runs for every event read for delivery in the shard
 * worker and for every delivery decoded on the engine's thread.
 *
 * Anything malformed is EngineError('INTERNAL'): bodies are written only by the engine, so a bad one
 * means corruption or a bug.
 */
export const EVENT_BODY_VERSION = 1;
export const FLAG_KEY = 1;
export const FLAG_RECIPIENTS = 2;
export const FLAG_SIGNATURE = 4;
const KNOWN_FLAGS = FLAG_KEY | FLAG_RECIPIENTS | FLAG_SIGNATURE;
const TWO_32 = 0x1_0000_0000;

// The body being read: bytes [pos, limit) of `src`, a Buffer over the body's whole ArrayBuffer.
// Module state instead of a reader object: every read below is synchronous and runs to completion.
let src: Buffer = Buffer.alloc(0);
let pos = 0;
let limit = 0;
/** The ArrayBuffer `src` covers: bodies keep arriving from the same few buffers (a batch, a slab). */
let srcArrayBuffer: ArrayBufferLike | null = null;

function begin(bytes: Uint8Array, start: number, end: number): void {
  if (!(start >= 0 && start <= end && end <= bytes.length)) throw corrupt(`body [${start}, ${end}) is outside its ${bytes.length} bytes`);
  const buffer = bytes.buffer;
  if (buffer !== srcArrayBuffer || src.length !== buffer.byteLength) {
    src = Buffer.from(buffer, 0, buffer.byteLength);
    srcArrayBuffer = buffer;
  }
  pos = bytes.byteOffset + start;
  limit = bytes.byteOffset + end;
  const version = u8();
  if (version !== EVENT_BODY_VERSION) throw corrupt(`unsupported event body version ${version}`);
}

function need(length: number): void {
  if (pos + length > limit) throw corrupt(`truncated: needs ${length} bytes with ${limit - pos} left`);
}

function u8(): number {
  need(1);
  return src[pos++]!;
}

function u16(): number {
  need(2);
  const p = pos;
  pos = p + 2;
  return src[p]! | (src[p + 1]! << 8);
}

function u32(): number {
  need(4);
  const p = pos;
  pos = p + 4;
  return (src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16)) + src[p + 3]! * 0x100_0000;
}

function u64(): number {
  const low = u32();
  const high = u32();
  if (high > 0x1f_ffff) throw corrupt('a timestamp exceeds 2^53');
  return high * TWO_32 + low;
}

function utf8(length: number): string {
  need(length);
  const start = pos;
  pos = start + length;
  return src.toString('utf8', start, pos);
}

function latin1(length: number): string {
  need(length);
  const start = pos;
  pos = start + length;
  return src.toString('latin1', start, pos);
}

/** `known` when its length matches the field's (bytes = characters for ASCII), else the field decoded. */
function utf8Or(known: string | null, length: number): string {
  if (known !== null && known.length === length) {
    skip(length);
    return known;
  }
  return utf8(length);
}

/** A view (not a copy) of the next `length` bytes. */
function view(length: number): Uint8Array {
  need(length);
  const start = pos;
  pos = start + length;
  return new Uint8Array(src.buffer, start, length);
}

function skip(length: number): void {
  need(length);
  pos += length;
}

function priorityByte(): number {
  const priority = u8();
  if (priority > MAX_EVENT_PRIORITY) throw corrupt(`priority ${priority} is above ${MAX_EVENT_PRIORITY}`);
  return priority;
}

function flagsByte(): number {
  const flags = u8();
  if ((flags & ~KNOWN_FLAGS) !== 0) throw corrupt(`unknown flags 0x${flags.toString(16)}`);
  return flags;
}

/** Decode a whole body. `payload` and `signature` are views into `body`, not copies. */
export function decodeEventBody(body: Uint8Array): StoredEvent {
  return decodeEventBodyAt(body, 0, body.length, null, null);
}

/**
 * Decode the body at bytes [start, end) of `bytes`. `type` and `sender`, when the caller already
 * holds them as strings (deliveries carry a table of them), are used instead of decoding their bytes
 * again. `payload` and `signature` are views into `bytes`.
 */
export function decodeEventBodyAt(bytes: Uint8Array, start: number, end: number, type: string | null, sender: string | null): StoredEvent {
  begin(bytes, start, end);
  const eventType = utf8Or(type, u8());
  const id = latin1(u8());
  const priority = priorityByte();
  const flags = flagsByte();
  const publishedAt = u64();
  const deliverAt = u64();
  const expiresAt = u64();
  const eventSender = utf8Or(sender, u16());
  const key = (flags & FLAG_KEY) !== 0 ? utf8(u16()) : null;
  const headers: Record<string, string> = {};
  const headerCount = u16();
  for (let i = 0; i < headerCount; i++) {
    const name = utf8(u16());
    const value = utf8(u32());
    if (name === '__proto__') {
      // A plain assignment would set the prototype instead of adding a property.
      Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
    } else {
      headers[name] = value;
    }
  }
  let recipients: string[] | null = null;
  if ((flags & FLAG_RECIPIENTS) !== 0) {
    const count = u16();
    recipients = new Array<string>(count);
    for (let i = 0; i < count; i++) recipients[i] = utf8(u16());
  }
  const signature = (flags & FLAG_SIGNATURE) !== 0 ? view(SIGNATURE_BYTES) : null;
  const payload = view(u32());
  if (pos !== limit) throw corrupt(`${limit - pos} bytes after the payload`);
  return { id, type: eventType, payload, headers, key, sender: eventSender, publishedAt, recipients, signature, priority, deliverAt, expiresAt };
}

/** The event type, without decoding the rest of the body. */
export function readEventType(body: Uint8Array): string {
  return readEventTypeAt(body, 0, body.length);
}

export function readEventTypeAt(bytes: Uint8Array, start: number, end: number): string {
  begin(bytes, start, end);
  return utf8(u8());
}

/** The event id, without decoding the rest of the body. */
export function readEventId(body: Uint8Array): string {
  begin(body, 0, body.length);
  skip(u8());
  return latin1(u8());
}

/** Priority and due time (0: not scheduled), read from their fixed places. */
export function readEventSchedule(body: Uint8Array): { priority: number; deliverAt: number } {
  begin(body, 0, body.length);
  skip(u8()); // type
  skip(u8()); // id
  const priority = priorityByte();
  skip(1 + 8); // flags, publishedAt
  return { priority, deliverAt: u64() };
}

/** The priority of the body at bytes [start, end) of `bytes`. */
export function eventPriorityAt(bytes: Uint8Array, start: number, end: number): number {
  begin(bytes, start, end);
  skip(u8()); // type
  skip(u8()); // id
  return priorityByte();
}

/** What delivery routing needs: the ordering key (the event's key, else its type) and recipients. */
export interface EventRouting {
  orderingKey: string;
  recipients: string[] | null;
  /** ms; 0 when the event does not expire. */
  expiresAt: number;
}

/** Key and recipients, skipping headers, signature and payload. */
export function readEventRouting(body: Uint8Array): EventRouting {
  const routing: EventRouting = { orderingKey: '', recipients: null, expiresAt: 0 };
  readEventRoutingAt(body, 0, body.length, null, routing);
  return routing;
}

/**
 * readEventRouting of the body at bytes [start, end) of `bytes`, into `into` (the caller's, reused
 * from event to event). `type`: the event's type when the caller knows it (the ordering key of an
 * event without a key of its own), else it is decoded.
 */
export function readEventRoutingAt(bytes: Uint8Array, start: number, end: number, type: string | null, into: EventRouting): void {
  begin(bytes, start, end);
  const eventType = utf8Or(type, u8());
  skip(u8()); // id
  skip(1); // priority
  const flags = flagsByte();
  skip(16); // publishedAt, deliverAt
  into.expiresAt = u64();
  skip(u16()); // sender
  into.orderingKey = (flags & FLAG_KEY) !== 0 ? utf8(u16()) : eventType;
  into.recipients = null;
  if ((flags & FLAG_RECIPIENTS) === 0) return;
  const headerCount = u16();
  for (let i = 0; i < headerCount; i++) {
    skip(u16());
    skip(u32());
  }
  const count = u16();
  const recipients = new Array<string>(count);
  for (let i = 0; i < count; i++) recipients[i] = utf8(u16());
  into.recipients = recipients;
}

/** Bounds the memory of a TypeNames cache; the oldest entry is dropped when full. */
const TYPE_NAMES_MAX = 100_000;

/**
 * The type strings of bodies read from the log, by stream tag: an event's type is decoded once and
 * the same string returned for later events of the type (after checking the bytes match, since two
 * types can share a tag), so reading a backlog does not allocate a type string per event.
 */
export class TypeNames {
  private readonly byStream = new Map<number, string>();

  typeAt(bytes: Uint8Array, start: number, end: number, stream: number): string {
    const cached = this.byStream.get(stream);
    if (cached !== undefined && sameAscii(cached, bytes, start + 2, bytes[start + 1]!, end)) return cached;
    const type = readEventTypeAt(bytes, start, end);
    if (this.byStream.size >= TYPE_NAMES_MAX) this.byStream.delete(this.byStream.keys().next().value!);
    this.byStream.set(stream, type);
    return type;
  }
}

/** Whether the `length` bytes at `at` (within `end`) are `text`, an ASCII string. */
function sameAscii(text: string, bytes: Uint8Array, at: number, length: number, end: number): boolean {
  if (text.length !== length || at + length > end) return false;
  for (let i = 0; i < length; i++) if (bytes[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

function corrupt(reason: string): EngineError {
  return new EngineError('INTERNAL', `malformed event body: ${reason}`);
}
