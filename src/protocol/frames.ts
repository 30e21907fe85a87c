/**
 * The frames of the EnSync wire protocol v1 (docs/protocol.md). Each WebSocket binary message is one
 * msgpack map; `t` names the frame type. Client requests carry `id` (chosen by the client, unique on
 * the connection while pending) and their reply carries the same `id`; replies may come out of order.
 */
import { encodeBase64 } from './base64.js';
import type { ErrorBody, ErrorCode } from './protocol-error.js';

export const PROTOCOL_VERSION = 1;
/** Versions this codec speaks, offered in `challenge.versions`. */
export const SUPPORTED_VERSIONS: readonly number[] = Object.freeze([PROTOCOL_VERSION]);

/** Path of the WebSocket endpoint. */
export const WEBSOCKET_PATH = '/ws';

/** WebSocket close codes the protocol uses. */
export const CLOSE_CODES = Object.freeze({
  /** The server is shutting down. */
  GOING_AWAY: 1001,
  /** A malformed frame before authentication, a text frame before authentication, or UNSUPPORTED_VERSION. */
  PROTOCOL_ERROR: 1002,
  /** A frame over maxFrameBytes (the standard WebSocket "message too big"). */
  MESSAGE_TOO_BIG: 1009,
  /** `hello` named an unknown client or its signature did not verify. */
  AUTH_FAILED: 4001,
  /** No valid `hello` within `challenge.authTimeoutMs`. */
  AUTH_TIMEOUT: 4002,
} as const);
export type CloseCode = (typeof CLOSE_CODES)[keyof typeof CLOSE_CODES];

export const NONCE_BYTES = 32;
/** Ed25519 signatures: `hello.signature` and event signatures. */
export const SIGNATURE_BYTES = 64;
export const AUTH_MESSAGE_PREFIX = 'ensync-auth-v1';

const utf8 = new TextEncoder();

/**
 * The bytes a client signs (Ed25519, with its secret key) to answer a challenge:
 * UTF-8 of `ensync-auth-v1\n${serverId}\n${connectionId}\n${base64(nonce)}`. Binding the server and
 * connection ids means a signature cannot be replayed on another server or connection.
 */
export function authMessage(serverId: string, connectionId: string, nonce: Uint8Array): Uint8Array {
  return utf8.encode(`${AUTH_MESSAGE_PREFIX}\n${serverId}\n${connectionId}\n${encodeBase64(nonce)}`);
}

// ---------------------------------------------------------------------------------------------
// Shared parts

/** A delivery named by where its event lives: `[shard, offset]`. */
export type DeliveryRef = [shard: number, offset: number];

/** Where a new subscription starts: new events only, the oldest retained, a time (ms since the epoch), or a log offset. */
export type StartFrom = 'new' | 'all' | { time: number } | { offset: number };

/** An event as a publisher sends it (the server validates its content; docs/events.md). */
export interface PublishEvent {
  type: string;
  payload: Uint8Array;
  id?: string;
  key?: string;
  headers?: Record<string, string>;
  recipients?: string[];
  signature?: Uint8Array;
  ttlMs?: number;
  priority?: number;
  delayMs?: number;
  deliverAt?: number;
}

/** An event as stored and delivered. Times are ms since the epoch; 0 in deliverAt/expiresAt means "none". */
export interface WireEvent {
  id: string;
  type: string;
  payload: Uint8Array;
  headers: Record<string, string>;
  key: string | null;
  sender: string;
  publishedAt: number;
  recipients: string[] | null;
  signature: Uint8Array | null;
  priority: number;
  deliverAt: number;
  expiresAt: number;
}

export interface ConnectionLimits {
  maxFrameBytes: number;
  maxPayloadBytes: number;
  maxEventsPerPublish: number;
  maxSubscriptionsPerConnection: number;
  /** Published events awaiting their result, at most, per client; more are refused with OVERLOADED. */
  publishWindow: number;
}

export interface PublishReceipt {
  id: string;
  type: string;
  offset: number;
  shard: number;
  /** The id was already published within the dedup window: nothing new was stored. */
  duplicate: boolean;
}
export interface PublishFailure {
  error: ErrorBody;
}
/** One result per published event, in the order of `publish.events`. */
export type PublishResult = PublishReceipt | PublishFailure;

export interface WireDelivery {
  shard: number;
  offset: number;
  /** 1 on first delivery, then 2, 3… */
  attempt: number;
  event: WireEvent;
}

export interface DeadLetter {
  shard: number;
  offset: number;
  /** The event's id and type. */
  id: string;
  type: string;
  publishedAt: number;
  reason: string;
  attempts: number;
  /** When it was dead-lettered (ms since the epoch). */
  at: number;
}

export type TrailKind = 'published' | 'delivered' | 'acked' | 'nacked' | 'discarded' | 'expired' | 'dead-lettered' | 'replayed' | 'deferred' | 'due';
export const TRAIL_KINDS: readonly TrailKind[] = Object.freeze([
  'published',
  'delivered',
  'acked',
  'nacked',
  'discarded',
  'expired',
  'dead-lettered',
  'replayed',
  'deferred',
  'due',
] as const);

/** One step of an event's history (get-event). */
export interface TrailEntry {
  kind: TrailKind;
  at: number;
  subscription?: string;
  consumer?: string;
  client?: string;
  attempt?: number;
  reason?: string;
  delayMs?: number;
  copyOffset?: number;
}

// ---------------------------------------------------------------------------------------------
// Client → server

export interface HelloFrame {
  t: 'hello';
  id: number;
  version: number;
  clientId: string;
  /** Ed25519 over authMessage(serverId, connectionId, nonce): 64 bytes. */
  signature: Uint8Array;
}
export interface PublishFrame {
  t: 'publish';
  id: number;
  events: PublishEvent[];
}
export interface SubscribeFrame {
  t: 'subscribe';
  id: number;
  name: string;
  pattern: string;
  from?: StartFrom;
  ordered?: boolean;
  maxInFlight?: number;
  ackTimeoutMs?: number;
  maxDeliveries?: number;
  /** Unacked deliveries this connection holds at most, per shard. */
  credits?: number;
}
export interface UnsubscribeFrame {
  t: 'unsubscribe';
  id: number;
  subscription: string;
}
/** Settlements are answered (`ok`) only when they carry an id. */
export interface AckFrame {
  t: 'ack';
  id?: number;
  subscription: string;
  deliveries: DeliveryRef[];
}
export interface NackFrame {
  t: 'nack';
  id?: number;
  subscription: string;
  deliveries: DeliveryRef[];
  delayMs?: number;
}
export interface DeferFrame {
  t: 'defer';
  id?: number;
  subscription: string;
  deliveries: DeliveryRef[];
  delayMs: number;
}
export interface DiscardFrame {
  t: 'discard';
  id?: number;
  subscription: string;
  deliveries: DeliveryRef[];
  reason: string;
}
export interface PauseFrame {
  t: 'pause';
  id: number;
  subscription: string;
}
export interface ResumeFrame {
  t: 'resume';
  id: number;
  subscription: string;
}
export interface SeekFrame {
  t: 'seek';
  id: number;
  subscription: string;
  from: StartFrom;
}
export interface DeadLettersRequestFrame {
  t: 'dead-letters';
  id: number;
  subscription: string;
  limit?: number;
}
export interface ReplayDeadLettersFrame {
  t: 'replay-dead-letters';
  id: number;
  subscription: string;
  which: 'all' | DeliveryRef[];
}
export interface GetEventFrame {
  t: 'get-event';
  id: number;
  type: string;
  eventId: string;
}
/** Either side may ping; the other answers `pong` with the same id. */
export interface PingFrame {
  t: 'ping';
  id: number;
}
export interface PongFrame {
  t: 'pong';
  id: number;
}

export type ClientFrame =
  | HelloFrame
  | PublishFrame
  | SubscribeFrame
  | UnsubscribeFrame
  | AckFrame
  | NackFrame
  | DeferFrame
  | DiscardFrame
  | PauseFrame
  | ResumeFrame
  | SeekFrame
  | DeadLettersRequestFrame
  | ReplayDeadLettersFrame
  | GetEventFrame
  | PingFrame
  | PongFrame;
export type ClientFrameType = ClientFrame['t'];

// ---------------------------------------------------------------------------------------------
// Server → client

export interface ChallengeFrame {
  t: 'challenge';
  /** Protocol versions the server speaks; the client picks one in `hello`. */
  versions: number[];
  serverId: string;
  connectionId: string;
  /** 32 random bytes. */
  nonce: Uint8Array;
  authTimeoutMs: number;
}
export interface WelcomeFrame {
  t: 'welcome';
  id: number;
  version: number;
  clientId: string;
  /** Events from this client must be signed. */
  requireSignatures: boolean;
  limits: ConnectionLimits;
  /** The server pings this often; answer with `pong`. */
  heartbeatMs: number;
}
export interface PublishedFrame {
  t: 'published';
  id: number;
  results: PublishResult[];
}
export interface SubscribedFrame {
  t: 'subscribed';
  id: number;
  /** `${clientId}/${name}`: names the subscription in later frames. */
  subscription: string;
}
export interface OkFrame {
  t: 'ok';
  id: number;
  /** replay-dead-letters: how many were replayed. */
  count?: number;
}
/** Server push (no id). */
export interface DeliverFrame {
  t: 'deliver';
  subscription: string;
  deliveries: WireDelivery[];
}
export interface DeadLettersFrame {
  t: 'dead-letters';
  id: number;
  letters: DeadLetter[];
}
export interface EventFrame {
  t: 'event';
  id: number;
  event: WireEvent;
  shard: number;
  offset: number;
  trail: TrailEntry[];
}
export interface ErrorFrame {
  t: 'error';
  /** The failed request's id, when it could be read. */
  id?: number;
  code: ErrorCode;
  message: string;
  field?: string;
  retryable: boolean;
}

export type ServerFrame =
  | ChallengeFrame
  | WelcomeFrame
  | PublishedFrame
  | SubscribedFrame
  | OkFrame
  | DeliverFrame
  | DeadLettersFrame
  | EventFrame
  | PongFrame
  | PingFrame
  | ErrorFrame;
export type ServerFrameType = ServerFrame['t'];

export type Frame = ClientFrame | ServerFrame;

export const CLIENT_FRAME_TYPES: readonly ClientFrameType[] = Object.freeze([
  'hello',
  'publish',
  'subscribe',
  'unsubscribe',
  'ack',
  'nack',
  'defer',
  'discard',
  'pause',
  'resume',
  'seek',
  'dead-letters',
  'replay-dead-letters',
  'get-event',
  'ping',
  'pong',
] as const);

export const SERVER_FRAME_TYPES: readonly ServerFrameType[] = Object.freeze([
  'challenge',
  'welcome',
  'published',
  'subscribed',
  'ok',
  'deliver',
  'dead-letters',
  'event',
  'pong',
  'ping',
  'error',
] as const);

/** An `error` frame from an ErrorBody, answering request `id` when known. */
export function errorFrame(body: ErrorBody, id?: number): ErrorFrame {
  const frame: ErrorFrame = { t: 'error', code: body.code, message: body.message, retryable: body.retryable };
  if (id !== undefined) frame.id = id;
  if (body.field !== undefined) frame.field = body.field;
  return frame;
}
