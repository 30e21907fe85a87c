import type { StoredEvent } from './event.js';

/** What a publish resolves with once the event is durable. */
export interface Receipt {
  id: string;
  type: string;
  /** Offset in the log of the event type's shard. */
  offset: number;
  shard: number;
  /** True when the id was already published within the dedup window: nothing new was stored. */
  duplicate: boolean;
}

/** One delivery of one event to one consumer of a subscription. */
export interface Delivery {
  subscription: string;
  consumer: string;
  shard: number;
  offset: number;
  /** 1 on first delivery, then 2, 3… up to the subscription's maxDeliveries. */
  attempt: number;
  event: StoredEvent;
}
