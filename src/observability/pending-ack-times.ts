/**
 * When each delivery a consumer holds was handed to it, so its ack can record `delivery_to_ack`
 * and `publish_to_ack`. One per consumer, bounded per shard by the consumer's credits.
 */
import { performance } from 'node:perf_hooks';
import type { LatencyRecorder } from './latency-recorder.js';

/** A settled delivery's position (what consumers ack by). */
/** What is noted of a delivery handed to a consumer (structurally, the engine's Delivery). */
export interface HandedOver {
  shard: number;
  offset: number;
  event: { publishedAt: number; deliverAt: number };
}

export interface DeliveryPosition {
  shard: number;
  offset: number;
}

/** One held delivery. (A small object per delivery costs less than a second map's lookups.) */
interface HandedDelivery {
  /** performance.now() when handed. */
  handedAt: number;
  /** The event's publishedAt (ms since the epoch), or NOT_TIMED. */
  publishedAt: number;
}

/** Stored instead of a publish time for events whose publish-to-ack time would measure their schedule. */
const NOT_TIMED = -1;

export class PendingAckTimes {
  /** Per shard: offset -> when handed (insertion order = oldest first). */
  private readonly held: Array<Map<number, HandedDelivery>> = [];

  /**
   * `perShard`: entries kept per shard at most, the consumer's credits. The shard never has more
   * unacked deliveries out to it, except ones it took back after an ack timeout (the oldest, evicted
   * first when the bound is reached; their late ack then goes unmeasured).
   */
  constructor(
    private readonly recorder: LatencyRecorder,
    shards: number,
    private readonly perShard: number,
  ) {
    for (let shard = 0; shard < shards; shard++) this.held.push(new Map());
  }

  /** Deliveries held now (for monitoring and tests). */
  get size(): number {
    let size = 0;
    for (const map of this.held) size += map.size;
    return size;
  }

  /** `deliveries` are being handed to the consumer now (`now`: performance.now()). */
  handed(deliveries: readonly HandedOver[], now: number): void {
    for (const delivery of deliveries) {
      const held = this.held[delivery.shard];
      if (!held) continue;
      const { offset, event } = delivery;
      const entry: HandedDelivery = { handedAt: now, publishedAt: event.deliverAt > 0 ? NOT_TIMED : event.publishedAt };
      const size = held.size;
      held.set(offset, entry);
      if (held.size === size) {
        // Delivered again while held (after an ack timeout): it becomes the newest, so eviction stays oldest first.
        held.delete(offset);
        held.set(offset, entry);
      } else if (held.size > this.perShard) {
        held.delete(held.keys().next().value!);
      }
    }
  }

  /** The consumer acked these: record their times and forget them. */
  acked(positions: readonly DeliveryPosition[]): void {
    let now = 0;
    let wallNow = 0;
    for (const { shard, offset } of positions) {
      const held = this.held[shard];
      const entry = held?.get(offset);
      if (entry === undefined) continue;
      held!.delete(offset);
      if (now === 0) {
        now = performance.now();
        wallNow = Date.now();
      }
      this.recorder.record('delivery_to_ack', (now - entry.handedAt) * 1000);
      if (entry.publishedAt !== NOT_TIMED) this.recorder.record('publish_to_ack', (wallNow - entry.publishedAt) * 1000);
    }
  }

  /** Settled otherwise (nack, defer, discard): forget them unmeasured. */
  forget(positions: readonly DeliveryPosition[]): void {
    for (const { shard, offset } of positions) this.held[shard]?.delete(offset);
  }

  /** The consumer closed: what it held goes to others (or waits), unmeasured here. */
  clear(): void {
    for (const map of this.held) map.clear();
  }
}
