/**
 * Events as the SDK hands them out: a stored event's fields (from get-event) and, for deliveries,
 * the attempt and the settling methods. A delivery is settled on the connection that brought it;
 * after that connection dropped its settlement is dropped too (the server delivers it again).
 */
import type { WireDelivery, WireEvent } from '../protocol/index.js';
import { EnSyncError, invalidArgument } from './errors.js';
import { decodePayload } from './payload.js';
import type { Session } from './session.js';
import type { SettlementKind } from './settlement-batcher.js';

/**
 * A stored event: the protocol's WireEvent fields (times in ms since the epoch; 0 in deliverAt and
 * expiresAt means none), where it is stored, and `value` when the payload was published as a
 * msgpack value.
 */
export interface EventData extends WireEvent {
  value?: unknown;
  shard: number;
  offset: number;
}

export interface ReceivedEvent extends EventData {
  /** 1 on first delivery, then 2, 3 … */
  attempt: number;
  /** The subscription key (`<clientId>/<name>`). */
  subscription: string;
  /** Done: never delivered again to this subscription. */
  ack(): Promise<void>;
  /** Deliver again (after `delayMs`, default at once); counts toward maxDeliveries. */
  nack(options?: { delayMs?: number }): Promise<void>;
  /** Bring it back after `delayMs` without counting a failure (it returns as a copy, attempt 1). */
  defer(delayMs: number): Promise<void>;
  /** Never deliver it again to this subscription; it becomes a dead letter with `reason`. */
  discard(reason: string): Promise<void>;
}

export function eventData(wire: WireEvent, shard: number, offset: number): EventData {
  const data: EventData = {
    id: wire.id,
    type: wire.type,
    key: wire.key,
    payload: wire.payload,
    headers: wire.headers,
    sender: wire.sender,
    publishedAt: wire.publishedAt,
    recipients: wire.recipients,
    signature: wire.signature,
    priority: wire.priority,
    deliverAt: wire.deliverAt,
    expiresAt: wire.expiresAt,
    shard,
    offset,
  };
  const { value } = decodePayload(wire.payload, wire.headers);
  if (value !== undefined) data.value = value;
  return data;
}

const PAST: Record<SettlementKind, string> = { ack: 'acked', nack: 'nacked', defer: 'deferred', discard: 'discarded' };

/** A delivery handed to the application. */
export class DeliveredEvent implements ReceivedEvent {
  readonly id: string;
  readonly type: string;
  readonly key: string | null;
  readonly payload: Uint8Array;
  declare readonly value?: unknown;
  readonly headers: Record<string, string>;
  readonly sender: string;
  readonly publishedAt: number;
  readonly recipients: string[] | null;
  readonly signature: Uint8Array | null;
  readonly priority: number;
  readonly deliverAt: number;
  readonly expiresAt: number;
  readonly shard: number;
  readonly offset: number;
  readonly attempt: number;
  readonly subscription: string;
  readonly #session: Session;
  #settlement: { kind: SettlementKind; promise: Promise<void> } | null = null;

  constructor(session: Session, subscription: string, delivery: WireDelivery) {
    this.id = delivery.event.id;
    this.type = delivery.event.type;
    this.key = delivery.event.key;
    this.payload = delivery.event.payload;
    this.headers = delivery.event.headers;
    this.sender = delivery.event.sender;
    this.publishedAt = delivery.event.publishedAt;
    this.recipients = delivery.event.recipients;
    this.signature = delivery.event.signature;
    this.priority = delivery.event.priority;
    this.deliverAt = delivery.event.deliverAt;
    this.expiresAt = delivery.event.expiresAt;
    this.shard = delivery.shard;
    this.offset = delivery.offset;
    this.attempt = delivery.attempt;
    this.subscription = subscription;
    this.#session = session;
    const { value } = decodePayload(delivery.event.payload, delivery.event.headers);
    // Only set when there is one: `'value' in event` tells packed payloads from bytes.
    if (value !== undefined) (this as { value?: unknown }).value = value;
  }

  /** Whether this delivery came on `session`. */
  static cameOn(event: DeliveredEvent, session: Session): boolean {
    return event.#session === session;
  }

  get settled(): boolean {
    return this.#settlement !== null;
  }

  ack(): Promise<void> {
    return this.#settle('ack', {});
  }

  nack(options: { delayMs?: number } = {}): Promise<void> {
    if (options.delayMs !== undefined && !isDelay(options.delayMs)) return Promise.reject(invalidArgument('delayMs', 'must be a non-negative integer (ms)'));
    return this.#settle('nack', options.delayMs === undefined ? {} : { delayMs: options.delayMs });
  }

  defer(delayMs: number): Promise<void> {
    if (!isDelay(delayMs)) return Promise.reject(invalidArgument('delayMs', 'must be a non-negative integer (ms)'));
    return this.#settle('defer', { delayMs });
  }

  discard(reason: string): Promise<void> {
    if (typeof reason !== 'string' || reason.length === 0) return Promise.reject(invalidArgument('reason', 'must be a non-empty string'));
    return this.#settle('discard', { reason });
  }

  #settle(kind: SettlementKind, extra: { delayMs?: number; reason?: string }): Promise<void> {
    const previous = this.#settlement;
    if (previous !== null) {
      if (previous.kind === kind) return previous.promise;
      return Promise.reject(new EnSyncError('INVALID_ARGUMENT', `event ${this.id} (shard ${this.shard}, offset ${this.offset}) was already ${PAST[previous.kind]}`));
    }
    const promise = this.#session.settle({ kind, subscription: this.subscription, ref: [this.shard, this.offset], ...extra });
    const settlement = { kind, promise };
    this.#settlement = settlement;
    // A refused settlement (a bad argument) leaves the delivery unsettled, to be settled again.
    promise.catch(() => {
      if (this.#settlement === settlement) this.#settlement = null;
    });
    return promise;
  }
}

function isDelay(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
