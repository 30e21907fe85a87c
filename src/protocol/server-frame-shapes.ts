/**
 * Shape checks of the frames a server sends. The server builds these from validated engine data,
 * so a client can rely on every field's type after decoding.
 */
import type {
  ConnectionLimits,
  DeadLetter,
  PublishFailure,
  PublishReceipt,
  PublishResult,
  ServerFrame,
  ServerFrameType,
  TrailEntry,
  WireDelivery,
  WireEvent,
} from './frames.js';
import { NONCE_BYTES, TRAIL_KINDS } from './frames.js';
import { ERROR_CODES, type ErrorBody } from './protocol-error.js';
import { arrayOf, bin, binOfLength, bool, isPlainMap, literal, nullable, object, oneOf, str, stringMap, uint, type Check } from './shape.js';

const errorBody = object<ErrorBody>({ code: oneOf(ERROR_CODES), message: str, retryable: bool }, { field: str });

const publishReceipt = object<PublishReceipt>({ id: str, type: str, offset: uint, shard: uint, duplicate: bool }, {});
const publishFailure = object<PublishFailure>({ error: errorBody }, {});
const publishResult: Check<PublishResult> = (value) =>
  isPlainMap(value) && 'error' in value ? publishFailure(value) : publishReceipt(value);

const wireEvent = object<WireEvent>(
  {
    id: str,
    type: str,
    payload: bin,
    headers: stringMap,
    key: nullable(str),
    sender: str,
    publishedAt: uint,
    recipients: nullable(arrayOf(str)),
    signature: nullable(bin),
    priority: uint,
    deliverAt: uint,
    expiresAt: uint,
  },
  {},
);

const wireDelivery = object<WireDelivery>({ shard: uint, offset: uint, attempt: uint, event: wireEvent }, {});

const deadLetter = object<DeadLetter>(
  { shard: uint, offset: uint, id: str, type: str, publishedAt: uint, reason: str, attempts: uint, at: uint },
  {},
);

const trailEntry = object<TrailEntry>(
  { kind: oneOf(TRAIL_KINDS), at: uint },
  { subscription: str, consumer: str, client: str, attempt: uint, reason: str, delayMs: uint, copyOffset: uint },
);

const limits = object<ConnectionLimits>(
  { maxFrameBytes: uint, maxPayloadBytes: uint, maxEventsPerPublish: uint, maxSubscriptionsPerConnection: uint, publishWindow: uint },
  {},
);

type ServerChecks = { [K in ServerFrameType]: Check<Extract<ServerFrame, { t: K }>> };

const checks: ServerChecks = {
  challenge: object(
    { t: literal('challenge'), versions: arrayOf(uint), serverId: str, connectionId: str, nonce: binOfLength(NONCE_BYTES), authTimeoutMs: uint },
    {},
  ),
  welcome: object(
    { t: literal('welcome'), id: uint, version: uint, clientId: str, requireSignatures: bool, limits, heartbeatMs: uint },
    {},
  ),
  published: object({ t: literal('published'), id: uint, results: arrayOf(publishResult) }, {}),
  subscribed: object({ t: literal('subscribed'), id: uint, subscription: str }, {}),
  ok: object({ t: literal('ok'), id: uint }, { count: uint }),
  deliver: object({ t: literal('deliver'), subscription: str, deliveries: arrayOf(wireDelivery) }, {}),
  'dead-letters': object({ t: literal('dead-letters'), id: uint, letters: arrayOf(deadLetter) }, {}),
  event: object({ t: literal('event'), id: uint, event: wireEvent, shard: uint, offset: uint, trail: arrayOf(trailEntry) }, {}),
  pong: object({ t: literal('pong'), id: uint }, {}),
  ping: object({ t: literal('ping'), id: uint }, {}),
  error: object({ t: literal('error'), code: oneOf(ERROR_CODES), message: str, retryable: bool }, { id: uint, field: str }),
};

/** Frame type → check. A Map, so that a `t` such as "constructor" finds nothing. */
export const SERVER_FRAME_CHECKS: ReadonlyMap<string, Check<ServerFrame>> = new Map(Object.entries(checks));
