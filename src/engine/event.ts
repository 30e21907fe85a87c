import { EngineError } from './errors.js';

/** What a publisher sends. Everything else about an event is set by the engine. */
export interface PublishInput {
  type: string;
  id?: string;
  payload: Uint8Array;
  headers?: Record<string, string>;
  key?: string;
  recipients?: string[];
  signature?: Uint8Array;
  /** Not delivered after this many ms from publishing: dropped and recorded as expired. */
  ttlMs?: number;
  /** 0-9, 9 most urgent; default 4. */
  priority?: number;
  /** Deliver this many ms after publishing (not with deliverAt). */
  delayMs?: number;
  /** Deliver at this time, ms since the epoch (not with delayMs); a time already past delivers at once. */
  deliverAt?: number;
}

/** A publish input that passed `validatePublishInput`: a fresh object holding only known fields. */
export type ValidatedPublishInput = Required<Pick<PublishInput, 'type' | 'payload'>> & PublishInput;

export interface EventLimits {
  maxPayloadBytes: number;
  maxHeaders: number;
  /** Total UTF-8 bytes of all header names and values together. */
  maxHeaderBytes: number;
  maxKeyBytes: number;
  /** At most 255: the record body stores the id's length in one byte. */
  maxIdBytes: number;
  maxRecipients: number;
  /** Longest ttlMs accepted. */
  maxTtlMs: number;
  /** Furthest ahead an event may be scheduled (delayMs, deliverAt) or a delivery deferred. */
  maxScheduleMs: number;
}

export const DEFAULT_EVENT_LIMITS: Readonly<EventLimits> = Object.freeze({
  maxPayloadBytes: 1024 * 1024,
  maxHeaders: 64,
  maxHeaderBytes: 16 * 1024,
  maxKeyBytes: 1024,
  maxIdBytes: 128,
  maxRecipients: 256,
  maxTtlMs: 30 * 24 * 60 * 60 * 1000,
  maxScheduleMs: 30 * 24 * 60 * 60 * 1000,
});

/** Full event as stored and delivered. `sender` is set by the engine from the authenticated client. */
export interface StoredEvent {
  id: string;
  type: string;
  payload: Uint8Array;
  headers: Record<string, string>;
  key: string | null;
  sender: string;
  /** Milliseconds since the epoch. */
  publishedAt: number;
  recipients: string[] | null;
  signature: Uint8Array | null;
  /** 0-9, default DEFAULT_EVENT_PRIORITY. */
  priority: number;
  /** Milliseconds since the epoch; 0 = deliver at once. */
  deliverAt: number;
  /** Milliseconds since the epoch; 0 = never expires. */
  expiresAt: number;
}

export const MAX_EVENT_TYPE_BYTES = 255;
export const MAX_CLIENT_ID_BYTES = 128;
export const SIGNATURE_BYTES = 64;
export const DEFAULT_EVENT_PRIORITY = 4;
export const MAX_EVENT_PRIORITY = 9;

const PUBLISH_FIELDS: ReadonlySet<string> = new Set(['type', 'id', 'payload', 'headers', 'key', 'recipients', 'signature', 'ttlMs', 'priority', 'delayMs', 'deliverAt']);
const ENGINE_SET_FIELDS: ReadonlySet<string> = new Set(['sender', 'publishedAt']);

const SLASH = 0x2f;

/** Whether `code` may appear in a type segment: [A-Za-z0-9._-]. */
export function isTypeSegmentChar(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x2e || // .
    code === 0x5f || // _
    code === 0x2d // -
  );
}

function invalid(field: string, message: string): EngineError {
  return new EngineError('INVALID_EVENT', message, { field });
}

/**
 * An event type is a hierarchical name: segments of [A-Za-z0-9._-]+ separated by '/', no empty
 * segment, at most 255 bytes (all allowed characters are ASCII, so bytes = characters).
 */
export function validateEventType(type: unknown, field = 'type'): string {
  if (typeof type !== 'string') throw invalid(field, `${field} must be a string, got ${typeName(type)}`);
  if (type.length === 0) throw invalid(field, `${field} must not be empty`);
  if (type.length > MAX_EVENT_TYPE_BYTES) {
    throw invalid(field, `${field} must be at most ${MAX_EVENT_TYPE_BYTES} bytes, got ${type.length} characters`);
  }
  let segmentStart = 0;
  for (let i = 0; i < type.length; i++) {
    const code = type.charCodeAt(i);
    if (code === SLASH) {
      if (i === segmentStart) throw invalid(field, `${field} ${JSON.stringify(type)} has an empty segment at index ${i}`);
      segmentStart = i + 1;
    } else if (!isTypeSegmentChar(code)) {
      throw invalid(
        field,
        `${field} ${JSON.stringify(type)} has the character ${JSON.stringify(type[i])} at index ${i}; ` +
          `segments use only A-Z a-z 0-9 . _ - and are separated by /`,
      );
    }
  }
  if (segmentStart === type.length) throw invalid(field, `${field} ${JSON.stringify(type)} must not end with /`);
  return type;
}

/**
 * Check a publish request field by field. Returns a fresh object holding only the known fields
 * (so later mutation of the caller's object cannot change what was validated). Every failure is an
 * EngineError('INVALID_EVENT') whose `field` names the offending field.
 */
export function validatePublishInput(input: unknown, limits: EventLimits = DEFAULT_EVENT_LIMITS): ValidatedPublishInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid('event', `event must be an object, got ${typeName(input)}`);
  }
  const source = input as Record<string, unknown>;
  // for-in with an own-property check: the same names as Object.keys, without an array per event.
  for (const name in source) {
    if (PUBLISH_FIELDS.has(name) || !Object.hasOwn(source, name)) continue;
    if (ENGINE_SET_FIELDS.has(name)) throw invalid(name, `${name} is set by the engine`);
    throw invalid(name, `unknown field ${JSON.stringify(name)}; an event has ${[...PUBLISH_FIELDS].join(', ')}`);
  }

  const result: ValidatedPublishInput = {
    type: validateEventType(source.type),
    payload: validatePayload(source.payload, limits),
  };
  if (source.id !== undefined) result.id = validateId(source.id, limits);
  if (source.headers !== undefined) result.headers = validateHeaders(source.headers, limits);
  if (source.key !== undefined) result.key = validateKey(source.key, limits);
  if (source.recipients !== undefined) result.recipients = validateRecipients(source.recipients, limits);
  if (source.signature !== undefined) result.signature = validateSignature(source.signature);
  if (source.ttlMs !== undefined) result.ttlMs = validateTtl(source.ttlMs, limits);
  if (source.priority !== undefined) result.priority = validatePriority(source.priority);
  if (source.delayMs !== undefined && source.deliverAt !== undefined) {
    throw invalid('deliverAt', 'give delayMs or deliverAt, not both');
  }
  if (source.delayMs !== undefined) result.delayMs = validateDelay(source.delayMs, 'delayMs', limits);
  if (source.deliverAt !== undefined) result.deliverAt = validateDeliverAt(source.deliverAt, limits);
  return result;
}

function validatePriority(priority: unknown): number {
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_EVENT_PRIORITY) {
    throw invalid('priority', `priority must be an integer from 0 to ${MAX_EVENT_PRIORITY}, got ${JSON.stringify(priority)}`);
  }
  return priority;
}

/** A delay in ms, 0 to maxScheduleMs. */
function validateDelay(delayMs: unknown, field: string, limits: EventLimits): number {
  if (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > limits.maxScheduleMs) {
    throw invalid(field, `${field} must be an integer from 0 to ${limits.maxScheduleMs}, got ${JSON.stringify(delayMs)}`);
  }
  return delayMs;
}

function validateDeliverAt(deliverAt: unknown, limits: EventLimits): number {
  if (typeof deliverAt !== 'number' || !Number.isInteger(deliverAt) || deliverAt < 0) {
    throw invalid('deliverAt', `deliverAt must be a time in ms since the epoch, got ${JSON.stringify(deliverAt)}`);
  }
  // Checked against the clock here; the engine stamps the publish a moment later, which only shortens the delay.
  if (deliverAt > Date.now() + limits.maxScheduleMs) {
    throw invalid('deliverAt', `deliverAt must be at most ${limits.maxScheduleMs} ms ahead`);
  }
  return deliverAt;
}

function validateTtl(ttlMs: unknown, limits: EventLimits): number {
  if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > limits.maxTtlMs) {
    throw invalid('ttlMs', `ttlMs must be an integer from 1 to ${limits.maxTtlMs}, got ${JSON.stringify(ttlMs)}`);
  }
  return ttlMs;
}

function validateId(id: unknown, limits: EventLimits): string {
  if (typeof id !== 'string') throw invalid('id', `id must be a string, got ${typeName(id)}`);
  if (id.length === 0) throw invalid('id', 'id must not be empty');
  if (id.length > limits.maxIdBytes) {
    throw invalid('id', `id must be at most ${limits.maxIdBytes} bytes, got ${id.length}`);
  }
  for (let i = 0; i < id.length; i++) {
    const code = id.charCodeAt(i);
    // Printable ASCII without space: ids appear in logs, URLs and headers unquoted.
    if (code < 0x21 || code > 0x7e) {
      throw invalid('id', `id must be printable ASCII without spaces; character code ${code} at index ${i}`);
    }
  }
  return id;
}

function validatePayload(payload: unknown, limits: EventLimits): Uint8Array {
  if (!(payload instanceof Uint8Array)) {
    throw invalid('payload', `payload must be a Uint8Array, got ${typeName(payload)}`);
  }
  if (payload.byteLength > limits.maxPayloadBytes) {
    throw invalid('payload', `payload must be at most ${limits.maxPayloadBytes} bytes, got ${payload.byteLength}`);
  }
  return payload;
}

function validateHeaders(headers: unknown, limits: EventLimits): Record<string, string> {
  if (!isPlainObject(headers)) {
    throw invalid('headers', `headers must be a plain object of string values, got ${typeName(headers)}`);
  }
  const names = Object.keys(headers);
  if (names.length > limits.maxHeaders) {
    throw invalid('headers', `headers must have at most ${limits.maxHeaders} entries, got ${names.length}`);
  }
  const copy: Record<string, string> = {};
  let totalBytes = 0;
  for (const name of names) {
    const value = headers[name];
    if (name.length === 0) throw invalid('headers', 'headers must not have an empty name');
    // Assigning "__proto__" on a plain object would replace its prototype instead of adding a header.
    if (name === '__proto__') throw invalid('headers', 'headers must not use the name "__proto__"');
    const where = `headers[${JSON.stringify(name)}]`;
    if (!name.isWellFormed()) throw invalid('headers', `headers name ${JSON.stringify(name)} is not valid Unicode`);
    if (typeof value !== 'string') throw invalid('headers', `${where} must be a string, got ${typeName(value)}`);
    if (!value.isWellFormed()) throw invalid('headers', `${where} is not valid Unicode`);
    totalBytes += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
    if (totalBytes > limits.maxHeaderBytes) {
      throw invalid('headers', `headers must total at most ${limits.maxHeaderBytes} bytes of names and values`);
    }
    copy[name] = value;
  }
  return copy;
}

function validateKey(key: unknown, limits: EventLimits): string {
  if (typeof key !== 'string') throw invalid('key', `key must be a string, got ${typeName(key)}`);
  if (key.length === 0) throw invalid('key', 'key must not be empty (omit it for an event without a key)');
  if (!key.isWellFormed()) throw invalid('key', 'key is not valid Unicode');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > limits.maxKeyBytes) throw invalid('key', `key must be at most ${limits.maxKeyBytes} bytes, got ${bytes}`);
  return key;
}

function validateRecipients(recipients: unknown, limits: EventLimits): string[] {
  if (!Array.isArray(recipients)) {
    throw invalid('recipients', `recipients must be an array of client ids, got ${typeName(recipients)}`);
  }
  if (recipients.length === 0) {
    throw invalid('recipients', 'recipients must not be empty (omit it to deliver to every subscriber)');
  }
  if (recipients.length > limits.maxRecipients) {
    throw invalid('recipients', `recipients must have at most ${limits.maxRecipients} entries, got ${recipients.length}`);
  }
  const seen = new Set<string>();
  for (let i = 0; i < recipients.length; i++) {
    const recipient: unknown = recipients[i];
    const where = `recipients[${i}]`;
    if (typeof recipient !== 'string') throw invalid('recipients', `${where} must be a string, got ${typeName(recipient)}`);
    if (recipient.length === 0) throw invalid('recipients', `${where} must not be empty`);
    if (!recipient.isWellFormed()) throw invalid('recipients', `${where} is not valid Unicode`);
    const bytes = Buffer.byteLength(recipient, 'utf8');
    if (bytes > MAX_CLIENT_ID_BYTES) {
      throw invalid('recipients', `${where} must be at most ${MAX_CLIENT_ID_BYTES} bytes, got ${bytes}`);
    }
    if (seen.has(recipient)) throw invalid('recipients', `${where} repeats ${JSON.stringify(recipient)}`);
    seen.add(recipient);
  }
  return [...recipients] as string[];
}

function validateSignature(signature: unknown): Uint8Array {
  if (!(signature instanceof Uint8Array)) {
    throw invalid('signature', `signature must be a Uint8Array, got ${typeName(signature)}`);
  }
  if (signature.byteLength !== SIGNATURE_BYTES) {
    throw invalid('signature', `signature must be exactly ${SIGNATURE_BYTES} bytes (Ed25519), got ${signature.byteLength}`);
  }
  return signature;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A short description of what a value is, for error messages (never the value itself: it may be large). */
function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return value.constructor.name;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  return typeof value;
}
