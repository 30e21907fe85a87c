import type { Consumer, DeliveryHandler } from '../../src/engine/consumer.js';
import type { Delivery } from '../../src/engine/delivery.js';

/**
 * Poll `predicate` until it holds; fail with `description` (and its current state) after `timeoutMs`.
 * `refresh`, when given, runs before each check (to fetch what the predicate looks at).
 */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs: number,
  description: string | (() => string),
  refresh?: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (refresh) await refresh();
    if (predicate()) return;
    if (Date.now() >= deadline) {
      const what = typeof description === 'string' ? description : description();
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** One thing that happened to a delivery, as seen by the consumer, in the order it happened. */
export interface TimelineEntry {
  at: number;
  kind: 'delivered' | 'acked' | 'nacked';
  delivery: Delivery;
  delayMs?: number;
}

/** Decides what to do with each delivery; acks and nacks must go through the recorder so they are logged. */
export type DeliveryPolicy = (delivery: Delivery, consumer: Consumer, recorder: DeliveryRecorder) => void;

export const ackAll: DeliveryPolicy = (delivery, consumer, recorder) => recorder.ack(consumer, delivery);
export const holdAll: DeliveryPolicy = () => {};

/**
 * A consumer's view of its deliveries: every delivery, ack and nack in one timeline, so tests can
 * assert what came before what. The policy runs for each delivery as it arrives.
 */
export class DeliveryRecorder {
  readonly timeline: TimelineEntry[] = [];
  readonly deliveries: Delivery[] = [];
  /** Offsets acked, per `${shard}:${offset}`. */
  readonly acked = new Set<string>();

  constructor(private readonly policy: DeliveryPolicy = ackAll) {}

  readonly handler: DeliveryHandler = (deliveries, consumer) => {
    for (const delivery of deliveries) {
      this.timeline.push({ at: Date.now(), kind: 'delivered', delivery });
      this.deliveries.push(delivery);
      this.policy(delivery, consumer, this);
    }
  };

  ack(consumer: Consumer, delivery: Delivery): void {
    this.timeline.push({ at: Date.now(), kind: 'acked', delivery });
    this.acked.add(positionOf(delivery));
    consumer.ack(delivery);
  }

  nack(consumer: Consumer, delivery: Delivery, delayMs = 0): void {
    this.timeline.push({ at: Date.now(), kind: 'nacked', delivery, delayMs });
    consumer.nack(delivery, { delayMs });
  }

  /** Event ids delivered at least once. */
  get deliveredIds(): Set<string> {
    return new Set(this.deliveries.map((d) => d.event.id));
  }

  /** Deliveries with attempt 1, in arrival order. */
  get firstDeliveries(): Delivery[] {
    return this.deliveries.filter((d) => d.attempt === 1);
  }

  deliveriesOf(id: string): Delivery[] {
    return this.deliveries.filter((d) => d.event.id === id);
  }

  /** Wait until every position (`${shard}:${offset}`) was acked. */
  waitForAcked(positions: Iterable<string>, timeoutMs: number): Promise<void> {
    const wanted = [...positions];
    return waitFor(
      () => wanted.every((p) => this.acked.has(p)),
      timeoutMs,
      () => `${wanted.filter((p) => this.acked.has(p)).length} of ${wanted.length} events acked`,
    );
  }

  waitForIds(ids: Iterable<string>, timeoutMs: number): Promise<void> {
    const wanted = [...ids];
    return waitFor(
      () => {
        const have = this.deliveredIds;
        return wanted.every((id) => have.has(id));
      },
      timeoutMs,
      () => {
        const have = this.deliveredIds;
        const missing = wanted.filter((id) => !have.has(id));
        return `${missing.length} of ${wanted.length} events delivered (missing e.g. ${missing.slice(0, 5).join(', ')})`;
      },
    );
  }
}

/** Where an event lives: `${shard}:${offset}`. */
export function positionOf(delivery: { shard: number; offset: number }): string {
  return `${delivery.shard}:${delivery.offset}`;
}
