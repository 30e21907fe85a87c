/**
 * Shape checks of the frames a client sends. Only shape and types are checked here: the server
 * validates content (event fields, subscription options, ranges) and names the field in its own
 * INVALID_EVENT / INVALID_ARGUMENT errors.
 */
import type { ClientFrame, ClientFrameType, DeliveryRef, PublishEvent, StartFrom } from './frames.js';
import { SIGNATURE_BYTES } from './frames.js';
import { ShapeError, arrayOf, bin, binOfLength, bool, describe, isPlainMap, literal, num, object, str, stringMap, tupleOf, uint, type Check } from './shape.js';

const deliveryRef = tupleOf(2, uint) as Check<DeliveryRef>;
const deliveryRefs = arrayOf(deliveryRef);

const fromTime = object<{ time: number }>({ time: uint }, {});
const fromOffset = object<{ offset: number }>({ offset: uint }, {});

const startFrom: Check<StartFrom> = (value) => {
  if (value === 'new' || value === 'all') return value;
  if (isPlainMap(value)) {
    if ('time' in value) return fromTime(value);
    if ('offset' in value) return fromOffset(value);
  }
  throw new ShapeError(`must be "new", "all", {time} or {offset}, got ${describe(value)}`);
};

const which: Check<'all' | DeliveryRef[]> = (value) => {
  if (value === 'all') return value;
  if (Array.isArray(value)) return deliveryRefs(value);
  throw new ShapeError(`must be "all" or an array of [shard, offset], got ${describe(value)}`);
};

/** Types only: the engine checks the content of each event (docs/events.md). */
const publishEvent = object<PublishEvent>(
  { type: str, payload: bin },
  {
    id: str,
    key: str,
    headers: stringMap,
    recipients: arrayOf(str),
    signature: bin,
    ttlMs: num,
    priority: num,
    delayMs: num,
    deliverAt: num,
  },
);

type ClientChecks = { [K in ClientFrameType]: Check<Extract<ClientFrame, { t: K }>> };

const checks: ClientChecks = {
  hello: object({ t: literal('hello'), id: uint, version: uint, clientId: str, signature: binOfLength(SIGNATURE_BYTES) }, {}),
  publish: object({ t: literal('publish'), id: uint, events: arrayOf(publishEvent) }, {}),
  subscribe: object(
    { t: literal('subscribe'), id: uint, name: str, pattern: str },
    { from: startFrom, ordered: bool, maxInFlight: num, ackTimeoutMs: num, maxDeliveries: num, credits: num },
  ),
  unsubscribe: object({ t: literal('unsubscribe'), id: uint, subscription: str }, {}),
  ack: object({ t: literal('ack'), subscription: str, deliveries: deliveryRefs }, { id: uint }),
  nack: object({ t: literal('nack'), subscription: str, deliveries: deliveryRefs }, { id: uint, delayMs: num }),
  defer: object({ t: literal('defer'), subscription: str, deliveries: deliveryRefs, delayMs: num }, { id: uint }),
  discard: object({ t: literal('discard'), subscription: str, deliveries: deliveryRefs, reason: str }, { id: uint }),
  pause: object({ t: literal('pause'), id: uint, subscription: str }, {}),
  resume: object({ t: literal('resume'), id: uint, subscription: str }, {}),
  seek: object({ t: literal('seek'), id: uint, subscription: str, from: startFrom }, {}),
  'dead-letters': object({ t: literal('dead-letters'), id: uint, subscription: str }, { limit: num }),
  'replay-dead-letters': object({ t: literal('replay-dead-letters'), id: uint, subscription: str, which }, {}),
  'get-event': object({ t: literal('get-event'), id: uint, type: str, eventId: str }, {}),
  ping: object({ t: literal('ping'), id: uint }, {}),
  pong: object({ t: literal('pong'), id: uint }, {}),
};

/** Frame type → check. A Map, so that a `t` such as "constructor" finds nothing. */
export const CLIENT_FRAME_CHECKS: ReadonlyMap<string, Check<ClientFrame>> = new Map(Object.entries(checks));
