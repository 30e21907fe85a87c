/**
 * Typed errors of the engine. Every failure a publisher or subscriber can see carries a stable
 * `code`; `toJSON`/`fromJSON` carry it across worker threads and onto the wire, where an Error's
 * own properties would be lost by structured cloning or JSON.
 */
export type EngineErrorCode =
  | 'INVALID_EVENT' // a published event breaks a rule (the field is named)
  | 'SIGNATURE_INVALID' // an event's signature does not verify against the sender's key
  | 'SIGNATURE_REQUIRED' // the sender must sign its events and this one is unsigned
  | 'OVERLOADED' // a bounded queue is full; retry later
  | 'SHARD_UNAVAILABLE' // the shard owning the event is restarting or stopped; retry later
  | 'NOT_FOUND' // a named thing (subscription, client, event) does not exist
  | 'INVALID_ARGUMENT' // a caller passed something the engine cannot use (the field is named)
  | 'ENGINE_CLOSED' // the engine is shutting down or closed
  | 'STORAGE_FAILED' // the log failed to store or read
  | 'FORBIDDEN' // the client is not allowed to do this
  | 'INTERNAL'; // a bug or corrupted data

export const ENGINE_ERROR_CODES: readonly EngineErrorCode[] = Object.freeze([
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

const KNOWN_CODES: ReadonlySet<string> = new Set(ENGINE_ERROR_CODES);

/** Codes whose failures are transient: the same request can succeed later without change. */
const RETRYABLE_BY_DEFAULT: ReadonlySet<EngineErrorCode> = new Set(['OVERLOADED', 'SHARD_UNAVAILABLE']);

export interface EngineErrorJSON {
  code: EngineErrorCode;
  message: string;
  field?: string;
  retryable: boolean;
}

export interface EngineErrorOptions {
  field?: string;
  retryable?: boolean;
  cause?: unknown;
}

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly field?: string;
  readonly retryable: boolean;

  constructor(code: EngineErrorCode, message: string, options: EngineErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EngineError';
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
  }

  /** What crosses threads and the wire: no stack, no cause (they may hold internals). */
  toJSON(): EngineErrorJSON {
    const json: EngineErrorJSON = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.field !== undefined) json.field = this.field;
    return json;
  }

  /**
   * Rebuild an error from `toJSON` output. Anything malformed becomes an INTERNAL error that says
   * so, rather than throwing while reporting another failure.
   */
  static fromJSON(json: unknown): EngineError {
    if (typeof json !== 'object' || json === null) {
      return new EngineError('INTERNAL', `malformed engine error: ${describe(json)}`);
    }
    const { code, message, field, retryable } = json as Record<string, unknown>;
    const text = typeof message === 'string' ? message : 'no message';
    if (typeof code !== 'string' || !KNOWN_CODES.has(code)) {
      return new EngineError('INTERNAL', `unknown engine error code ${describe(code)}: ${text}`);
    }
    const options: EngineErrorOptions = {};
    if (typeof field === 'string') options.field = field;
    if (typeof retryable === 'boolean') options.retryable = retryable;
    return new EngineError(code as EngineErrorCode, text, options);
  }
}

export function isEngineError(value: unknown): value is EngineError {
  return value instanceof EngineError;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  return typeof value;
}
