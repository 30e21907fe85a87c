import { EngineError } from './errors.js';
import { TypePattern } from './type-pattern.js';

/** Where a new durable subscription starts reading. Ignored when the subscription already exists. */
export type StartPosition =
  | { from: 'new' } // only events published after it was created (default)
  | { from: 'all' } // the oldest retained event
  | { from: 'time'; timestamp: number } // the first event published at or after this time (ms)
  | { from: 'offset'; offset: number }; // this log offset, in each shard the pattern spans

export interface SubscriptionOptions {
  /** Durable name, unique per client. */
  name: string;
  /** Event types to receive: literal segments, `*` for one segment, `**` for the rest. */
  pattern: string;
  start?: StartPosition;
  /** Strict order per ordering key (the event's key, else its type): one unacked delivery per key. */
  ordered?: boolean;
  /** Unacked deliveries at most, per shard (default 1000). */
  maxInFlight?: number;
  /** An unacked delivery is redelivered after this long (default 30 s). */
  ackTimeoutMs?: number;
  /** After this many deliveries an event is dead-lettered (default 5). */
  maxDeliveries?: number;
}

export interface SubscriptionSpec {
  /** `<client>/<name>`: the subscription's identity in every shard. */
  key: string;
  client: string;
  name: string;
  pattern: string;
  start: StartPosition;
  ordered: boolean;
  maxInFlight: number;
  ackTimeoutMs: number;
  maxDeliveries: number;
}

export const SUBSCRIPTION_LIMITS = {
  maxNameBytes: 128,
  maxInFlight: 100_000,
  minAckTimeoutMs: 10,
  maxAckTimeoutMs: 24 * 60 * 60 * 1000,
  maxDeliveries: 1000,
} as const;

const NAME = /^[A-Za-z0-9._-]+$/;

function positiveInteger(value: unknown, field: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new EngineError('INVALID_ARGUMENT', `${field} must be an integer from ${min} to ${max}`, { field });
  }
  return value;
}

function resolveStart(start: unknown): StartPosition {
  if (start === undefined) return { from: 'new' };
  const value = start as Partial<{ from: string; timestamp: number; offset: number }>;
  switch (value?.from) {
    case 'new':
    case 'all':
      return { from: value.from };
    case 'time':
      if (!Number.isSafeInteger(value.timestamp) || value.timestamp! < 0) {
        throw new EngineError('INVALID_ARGUMENT', 'start.timestamp must be a non-negative integer of ms', { field: 'start.timestamp' });
      }
      return { from: 'time', timestamp: value.timestamp! };
    case 'offset':
      if (!Number.isSafeInteger(value.offset) || value.offset! < 0) {
        throw new EngineError('INVALID_ARGUMENT', 'start.offset must be a non-negative integer', { field: 'start.offset' });
      }
      return { from: 'offset', offset: value.offset! };
    default:
      throw new EngineError('INVALID_ARGUMENT', "start.from must be 'new', 'all', 'time' or 'offset'", { field: 'start.from' });
  }
}

/** Check a client's subscription options and fill in defaults. */
export function resolveSubscriptionSpec(client: string, options: SubscriptionOptions): SubscriptionSpec {
  if (typeof options !== 'object' || options === null) throw new EngineError('INVALID_ARGUMENT', 'subscription options must be an object');
  const { name, pattern } = options;
  if (typeof name !== 'string' || !NAME.test(name) || Buffer.byteLength(name) > SUBSCRIPTION_LIMITS.maxNameBytes) {
    throw new EngineError('INVALID_ARGUMENT', `name must be 1-${SUBSCRIPTION_LIMITS.maxNameBytes} bytes of letters, digits, '.', '_' or '-'`, { field: 'name' });
  }
  if (typeof pattern !== 'string') throw new EngineError('INVALID_ARGUMENT', 'pattern must be a string', { field: 'pattern' });
  new TypePattern(pattern); // throws a typed error naming the pattern
  if (options.ordered !== undefined && typeof options.ordered !== 'boolean') {
    throw new EngineError('INVALID_ARGUMENT', 'ordered must be a boolean', { field: 'ordered' });
  }
  return {
    key: `${client}/${name}`,
    client,
    name,
    pattern,
    start: resolveStart(options.start),
    ordered: options.ordered ?? false,
    maxInFlight: positiveInteger(options.maxInFlight, 'maxInFlight', 1000, 1, SUBSCRIPTION_LIMITS.maxInFlight),
    ackTimeoutMs: positiveInteger(options.ackTimeoutMs, 'ackTimeoutMs', 30_000, SUBSCRIPTION_LIMITS.minAckTimeoutMs, SUBSCRIPTION_LIMITS.maxAckTimeoutMs),
    maxDeliveries: positiveInteger(options.maxDeliveries, 'maxDeliveries', 5, 1, SUBSCRIPTION_LIMITS.maxDeliveries),
  };
}

/** Whether an existing subscription can be reopened with `next` (same pattern and ordering). */
export function sameSubscription(existing: SubscriptionSpec, next: SubscriptionSpec): boolean {
  return existing.pattern === next.pattern && existing.ordered === next.ordered;
}
