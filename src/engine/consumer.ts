import type { PendingAckTimes } from '../observability/pending-ack-times.js';
import type { Delivery } from './delivery.js';
import { EngineError } from './errors.js';

/** What a consumer asks the engine to do with its deliveries. */
export interface ConsumerControl {
  /** Settle these deliveries as done (a consumer acks a handler's batch at once). */
  ack(consumer: Consumer, deliveries: readonly DeliveryRef[]): void;
  nack(consumer: Consumer, delivery: DeliveryRef, delayMs: number): void;
  discard(consumer: Consumer, delivery: DeliveryRef, reason: string): void;
  /** Bring the delivery back after `delayMs`, durably, without counting an attempt. */
  defer(consumer: Consumer, delivery: DeliveryRef, delayMs: number): void;
  /** Longest defer accepted, ms. */
  maxDeferMs(): number;
  close(consumer: Consumer): Promise<void>;
}

/** Which delivery to settle: its shard and offset (and subscription, checked when given). */
export type DeliveryRef = Pick<Delivery, 'shard' | 'offset'> & { subscription?: string };

export type DeliveryHandler = (deliveries: Delivery[], consumer: Consumer) => void;

/**
 * A live consumer of a durable subscription. Deliveries arrive in batches through the handler;
 * each must be acked (done) or nacked (deliver again, now or after a delay). Several consumers of
 * one subscription share its events.
 */
export class Consumer {
  private closed = false;

  constructor(
    readonly id: string,
    readonly subscription: string,
    readonly client: string,
    /** Unacked deliveries this consumer holds at most, per shard. */
    readonly credits: number,
    readonly handler: DeliveryHandler,
    private readonly control: ConsumerControl,
    /** When each delivery held was handed over, for the ack latencies; emptied by settling or closing. */
    readonly ackTimes: PendingAckTimes,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  ack(deliveries: DeliveryRef | readonly DeliveryRef[]): void {
    const list = this.own(deliveries);
    this.ackTimes.acked(list);
    this.control.ack(this, list);
  }

  /** Deliver again after `delayMs` (default at once); the attempt counts toward maxDeliveries. */
  nack(deliveries: DeliveryRef | readonly DeliveryRef[], options: { delayMs?: number } = {}): void {
    const delayMs = options.delayMs ?? 0;
    if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > 24 * 60 * 60 * 1000) {
      throw new EngineError('INVALID_ARGUMENT', 'delayMs must be an integer from 0 to 86400000', { field: 'delayMs' });
    }
    const list = this.own(deliveries);
    this.ackTimes.forget(list);
    for (const delivery of list) this.control.nack(this, delivery, delayMs);
  }

  /**
   * Bring these deliveries back after `delayMs`, without counting it as a failure. Durable: the
   * return survives restarts and killed workers. The delivery is settled here; when due, a copy of
   * the event comes back (new offset, attempt 1). In an ordered subscription deferring releases
   * the key, so later events of the key may go first.
   */
  defer(deliveries: DeliveryRef | readonly DeliveryRef[], delayMs: number): void {
    const maxMs = this.control.maxDeferMs();
    if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > maxMs) {
      throw new EngineError('INVALID_ARGUMENT', `delayMs must be an integer from 0 to ${maxMs}, got ${JSON.stringify(delayMs)}`, { field: 'delayMs' });
    }
    const list = this.own(deliveries);
    this.ackTimes.forget(list);
    for (const delivery of list) this.control.defer(this, delivery, delayMs);
  }

  /**
   * Give up on these deliveries: never redelivered to this subscription, recorded as its dead
   * letters with `reason` (listable and replayable).
   */
  discard(deliveries: DeliveryRef | readonly DeliveryRef[], reason: string): void {
    if (typeof reason !== 'string' || reason.length === 0 || Buffer.byteLength(reason) > 1024) {
      throw new EngineError('INVALID_ARGUMENT', 'reason must be a non-empty string of at most 1024 bytes', { field: 'reason' });
    }
    const list = this.own(deliveries);
    this.ackTimes.forget(list);
    for (const delivery of list) this.control.discard(this, delivery, reason);
  }

  /** Stop receiving; unacked deliveries go to the subscription's other consumers (or wait). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ackTimes.clear();
    await this.control.close(this);
  }

  private own(deliveries: DeliveryRef | readonly DeliveryRef[]): readonly DeliveryRef[] {
    const list = Array.isArray(deliveries) ? deliveries : [deliveries as DeliveryRef];
    for (const delivery of list) {
      if (delivery.subscription !== undefined && delivery.subscription !== this.subscription) {
        throw new EngineError('INVALID_ARGUMENT', `delivery of ${delivery.subscription} settled through a consumer of ${this.subscription}`, { field: 'delivery' });
      }
    }
    return list;
  }
}
