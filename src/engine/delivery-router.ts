import { performance } from 'node:perf_hooks';
import type { LatencyRecorder } from '../observability/latency-recorder.js';
import type { ClientActivity } from './client-activity.js';
import type { Consumer } from './consumer.js';
import type { Delivery } from './delivery.js';
import { unpackDeliveries } from './delivery-batch.js';
import type { DeliveryMessage } from './shard-messages.js';

/**
 * Hands the deliveries a shard sends (one packed message per pump) to the live consumers they are
 * for, on the engine's thread: decodes them, records their first-delivery latency and the
 * consumers' activity, and calls each consumer's handler once per message.
 */
export class DeliveryRouter {
  constructor(
    private readonly consumers: ReadonlyMap<string, Consumer>,
    private readonly latency: LatencyRecorder,
    private readonly activity: ClientActivity,
    private readonly logError: (message: string, fields: Record<string, unknown>) => void,
  ) {}

  route(message: DeliveryMessage): void {
    const deliveries = unpackDeliveries(message.packed, message.shard);
    if (deliveries.length === 0) return;
    // Usually one consumer per message: then the batch goes as it is, else split by consumer.
    const first = deliveries[0]!.consumer;
    for (let i = 1; i < deliveries.length; i++) {
      if (deliveries[i]!.consumer !== first) {
        for (const [id, list] of groupByConsumer(deliveries)) this.hand(id, list);
        return;
      }
    }
    this.hand(first, deliveries);
  }

  private hand(id: string, deliveries: Delivery[]): void {
    const consumer = this.consumers.get(id);
    // A consumer that just closed: its detach makes the shard redeliver these elsewhere.
    if (!consumer) return;
    const now = performance.now();
    const wallNow = Date.now();
    for (const delivery of deliveries) {
      // Scheduled events would measure their schedule (see LATENCY_STAGES).
      if (delivery.attempt === 1 && delivery.event.deliverAt === 0) this.latency.record('publish_to_first_delivery', (wallNow - delivery.event.publishedAt) * 1000);
    }
    consumer.ackTimes.handed(deliveries, now);
    this.activity.delivered(consumer.client, deliveries.length, wallNow);
    try {
      consumer.handler(deliveries, consumer);
    } catch (error) {
      this.logError('delivery handler threw; its deliveries will be redelivered after the ack timeout', { consumer: id, error });
    }
  }
}

function groupByConsumer(deliveries: readonly Delivery[]): Map<string, Delivery[]> {
  const byConsumer = new Map<string, Delivery[]>();
  for (const delivery of deliveries) {
    let list = byConsumer.get(delivery.consumer);
    if (!list) {
      list = [];
      byConsumer.set(delivery.consumer, list);
    }
    list.push(delivery);
  }
  return byConsumer;
}
