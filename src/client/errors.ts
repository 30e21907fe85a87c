/**
 * The one error type the SDK raises. Server failures keep the code, message, field and retryable
 * flag of their `error` frame or publish result; the SDK adds a few codes of its own for what only
 * the client can see (the connection, its own bounds, timeouts).
 */
import type { ErrorBody, ErrorCode } from '../protocol/index.js';

export type ClientErrorCode =
  | 'CONNECTION_FAILED' // the socket could not be opened, or closed before `welcome`
  | 'CONNECTION_LOST' // the connection dropped while the request was unanswered
  | 'CLIENT_CLOSED' // client.close() was called (or the client gave up after a fatal error)
  | 'TIMEOUT'; // no answer within requestTimeoutMs: the outcome is unknown

export type EnSyncErrorCode = ErrorCode | ClientErrorCode;

const RETRYABLE_CLIENT_CODES: ReadonlySet<EnSyncErrorCode> = new Set<EnSyncErrorCode>(['CONNECTION_FAILED', 'CONNECTION_LOST', 'TIMEOUT']);

export class EnSyncError extends Error {
  readonly code: EnSyncErrorCode;
  readonly field?: string;
  /** The same request may succeed later unchanged. */
  readonly retryable: boolean;

  constructor(code: EnSyncErrorCode, message: string, options: { field?: string; retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EnSyncError';
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    this.retryable = options.retryable ?? RETRYABLE_CLIENT_CODES.has(code);
  }

  /** From an `error` frame or a failed publish result. */
  static fromBody(body: ErrorBody): EnSyncError {
    return new EnSyncError(body.code, body.message, body.field === undefined ? { retryable: body.retryable } : { field: body.field, retryable: body.retryable });
  }
}

export function isEnSyncError(value: unknown): value is EnSyncError {
  return value instanceof EnSyncError;
}

/** A caller's mistake caught before anything is sent. */
export function invalidArgument(field: string, message: string): EnSyncError {
  return new EnSyncError('INVALID_ARGUMENT', `${field} ${message}`, { field });
}
