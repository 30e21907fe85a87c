/**
 * From `client.publish(type, payload, options)` to the event as it goes on the wire. Field types
 * are checked here because a wrongly typed field would make the server refuse the whole frame, and
 * with it the other events batched alongside; content rules (lengths, ranges) stay the server's.
 */
import type { PublishEvent } from '../protocol/index.js';
import { invalidArgument } from './errors.js';
import { CONTENT_TYPE_HEADER, MSGPACK_CONTENT_TYPE, encodePayload } from './payload.js';

export interface PublishOptions {
  /** Event id, 1–128 printable ASCII; the client makes one (ULID layout) when absent. */
  id?: string;
  /** Ordering / partition key. */
  key?: string;
  headers?: Record<string, string>;
  /** Only these clients receive it; absent = every subscriber. */
  recipients?: string[];
  /** 0–9, 9 most urgent; default 4. */
  priority?: number;
  /** Deliver no earlier than this many ms after publishing; not with deliverAt. */
  delayMs?: number;
  /** Deliver no earlier than this time (ms since the epoch); not with delayMs. */
  deliverAt?: number;
  /** Not delivered after publishedAt + ttlMs. */
  ttlMs?: number;
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set(['id', 'key', 'headers', 'recipients', 'priority', 'delayMs', 'deliverAt', 'ttlMs']);

/** The wire event; `makeId` names it when the caller gave no id. */
export function buildPublishEvent(type: unknown, payload: unknown, options: PublishOptions, makeId: () => string): PublishEvent {
  if (typeof type !== 'string') throw invalidArgument('type', 'must be a string');
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'must be an object');
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) throw invalidArgument(name, `is not a publish option (options are ${[...KNOWN_OPTIONS].join(', ')})`);
  }
  const { payload: bytes, packed } = encodePayload(payload);
  const event: PublishEvent = { type, payload: bytes, id: options.id === undefined ? makeId() : checkString('id', options.id) };
  if (options.key !== undefined) event.key = checkString('key', options.key);
  let headers = options.headers === undefined ? undefined : checkHeaders(options.headers);
  if (packed) headers = { ...headers, [CONTENT_TYPE_HEADER]: MSGPACK_CONTENT_TYPE };
  if (headers !== undefined) event.headers = headers;
  if (options.recipients !== undefined) {
    if (!Array.isArray(options.recipients)) throw invalidArgument('recipients', 'must be an array of client ids');
    event.recipients = options.recipients.map((recipient, i) => checkString(`recipients[${i}]`, recipient));
  }
  if (options.priority !== undefined) event.priority = checkNumber('priority', options.priority);
  if (options.delayMs !== undefined) event.delayMs = checkNumber('delayMs', options.delayMs);
  if (options.deliverAt !== undefined) event.deliverAt = checkNumber('deliverAt', options.deliverAt);
  if (options.ttlMs !== undefined) event.ttlMs = checkNumber('ttlMs', options.ttlMs);
  return event;
}

function checkString(field: string, value: unknown): string {
  if (typeof value !== 'string') throw invalidArgument(field, 'must be a string');
  return value;
}

function checkNumber(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidArgument(field, 'must be a finite number');
  return value;
}

/** A copy, so later changes by the caller cannot alter an event waiting to be (re)sent. */
function checkHeaders(headers: unknown): Record<string, string> {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw invalidArgument('headers', 'must be an object of strings');
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name === '__proto__') throw invalidArgument('headers', 'must not have the name "__proto__"');
    out[name] = checkString(`headers["${name}"]`, value);
  }
  return out;
}
