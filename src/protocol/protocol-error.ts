/**
 * Errors of the wire protocol. Everything a peer can see as an `error` frame or a per-event publish
 * failure is an ErrorBody: a stable `code`, a message, the offending `field` when there is one, and
 * whether the same request may succeed later unchanged (`retryable`).
 */

/** Codes raised by the protocol layer itself (framing, authentication, connection limits). */
export type ProtocolErrorCode =
  | 'PROTOCOL_ERROR' // malformed msgpack, not a map, unknown `t`, missing/wrong/unknown field (named)
  | 'FRAME_TOO_LARGE' // a frame over the connection's maxFrameBytes
  | 'AUTH_FAILED' // unknown client or a signature that does not verify
  | 'AUTH_TIMEOUT' // no valid `hello` within authTimeoutMs
  | 'UNSUPPORTED_VERSION' // `hello.version` is not one the server offered
  | 'LIMIT_EXCEEDED'; // subscriptions per connection, events per publish, connections per client

export const PROTOCOL_ERROR_CODES: readonly ProtocolErrorCode[] = Object.freeze([
  'PROTOCOL_ERROR',
  'FRAME_TOO_LARGE',
  'AUTH_FAILED',
  'AUTH_TIMEOUT',
  'UNSUPPORTED_VERSION',
  'LIMIT_EXCEEDED',
] as const);

/**
 * Codes the engine raises, carried unchanged onto the wire. Listed here rather than imported: this
 * folder is shared with browser clients and must not depend on the engine.
 */
export type EngineErrorCodeOnWire =
  | 'INVALID_EVENT'
  | 'SIGNATURE_INVALID'
  | 'SIGNATURE_REQUIRED'
  | 'OVERLOADED'
  | 'SHARD_UNAVAILABLE'
  | 'NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'ENGINE_CLOSED'
  | 'STORAGE_FAILED'
  | 'FORBIDDEN'
  | 'INTERNAL';

export const ENGINE_ERROR_CODES_ON_WIRE: readonly EngineErrorCodeOnWire[] = Object.freeze([
  'INVALID_EVENT',
  'SIGNATURE_INVALID',
  'SIGNATURE_REQUIRED',
  'OVERLOADED',
  'SHARD_UNAVAILABLE',
  'NOT_FOUND',
  'INVALID_ARGUMENT',
  'ENGINE_CLOSED',
  'STORAGE_FAILED',
  'FORBIDDEN',
  'INTERNAL',
] as const);

/** Every code an `error` frame or a publish failure may carry. */
export type ErrorCode = EngineErrorCodeOnWire | ProtocolErrorCode;

export const ERROR_CODES: readonly ErrorCode[] = Object.freeze([...ENGINE_ERROR_CODES_ON_WIRE, ...PROTOCOL_ERROR_CODES]);

/** An error as it travels: in `error` frames and in failed publish results. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  field?: string;
  retryable: boolean;
}

export interface ProtocolErrorOptions {
  /** The offending field, as a path into the frame (`events[2].payload`, `limits.maxFrameBytes`). */
  field?: string;
  /** The `id` of the request the error answers, when it could be read from the frame. */
  requestId?: number;
  retryable?: boolean;
  cause?: unknown;
}

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  readonly field?: string;
  readonly requestId?: number;
  readonly retryable: boolean;

  constructor(code: ProtocolErrorCode, message: string, options: ProtocolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProtocolError';
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.requestId !== undefined) this.requestId = options.requestId;
    // No protocol failure goes away by resending the same bytes; a caller that knows better says so.
    this.retryable = options.retryable ?? false;
  }

  /** What goes into an `error` frame: no stack, no cause (they may hold internals). */
  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.field !== undefined) body.field = this.field;
    return body;
  }
}

export function isProtocolError(value: unknown): value is ProtocolError {
  return value instanceof ProtocolError;
}
