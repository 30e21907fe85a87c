/**
 * The requests a client sends and the reply each expects. Ids are assigned by the session at send
 * time, so callers build frames without one.
 */
import type {
  ClientFrame,
  DeadLettersFrame,
  EventFrame,
  HelloFrame,
  OkFrame,
  PongFrame,
  PublishedFrame,
  ServerFrameType,
  SubscribedFrame,
} from '../protocol/index.js';

type WithoutId<F> = F extends unknown ? Omit<F, 'id'> : never;

/** Every client frame that is a request (hello is the handshake's own; pong answers the server). */
export type RequestFrame = WithoutId<Exclude<ClientFrame, HelloFrame | PongFrame>>;
export type RequestType = RequestFrame['t'];

export type ReplyTo<T extends RequestType> = T extends 'publish'
  ? PublishedFrame
  : T extends 'subscribe'
    ? SubscribedFrame
    : T extends 'dead-letters'
      ? DeadLettersFrame
      : T extends 'get-event'
        ? EventFrame
        : T extends 'ping'
          ? PongFrame
          : OkFrame;

export const REPLY_TYPE: Readonly<Record<RequestType, ServerFrameType>> = Object.freeze({
  publish: 'published',
  subscribe: 'subscribed',
  unsubscribe: 'ok',
  ack: 'ok',
  nack: 'ok',
  defer: 'ok',
  discard: 'ok',
  pause: 'ok',
  resume: 'ok',
  seek: 'ok',
  'dead-letters': 'dead-letters',
  'replay-dead-letters': 'ok',
  'get-event': 'event',
  ping: 'pong',
});
