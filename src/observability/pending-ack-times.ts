/**
 * When each delivery a consumer holds was handed to it, so its ack can record `delivery_to_ack`
 * and `publish_to_ack`. One per consumer, bounded per shard by the consumer's credits.
 */
import { performance } from 'node:perf_hooks';
import { HeldTimes } from './held-times.js';
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

/** Stored instead of a publish time for events whose publish-to-ack time would measure their schedule. */
const NOT_TIMED = -1;

export class PendingAckTimes {
  /** Per shard: offset -> when handed and published (oldest first). */
  private readonly held: HeldTimes[] = [];

  /**
   * `perShard`: entries kept per shard at most, the consumer's credits. The shard never has more
   * unacked deliveries out to it, except ones it took back after an ack timeout (the oldest, evicted
   * first when the bound is reached; their late ack then goes unmeasured).
   */
  constructor(
    private readonly recorder: LatencyRecorder,
    shards: number,
    perShard: number,
  ) {
    for (let shard = 0; shard < shards; shard++) this.held.push(new HeldTimes(perShard));
  }

  /** Deliveries held now (for monitoring and tests). */
  get size(): number {
    let size = 0;
    for (const times of this.held) size += times.size;
    return size;
  }

  /** `deliveries` are being handed to the consumer now (`now`: performance.now()); one held again becomes the newest. */
  handed(deliveries: readonly HandedOver[], now: number): void {
    for (const delivery of deliveries) {
      const event = delivery.event;
      this.held[delivery.shard]?.set(delivery.offset, now, event.deliverAt > 0 ? NOT_TIMED : event.publishedAt);
    }
  }

  /** The consumer acked these: record their times and forget them. */
  acked(positions: readonly DeliveryPosition[]): void {
    let now = 0;
    let wallNow = 0;
    for (const { shard, offset } of positions) {
      const held = this.held[shard];
      if (held === undefined || !held.take(offset)) continue;
      if (now === 0) {
        now = performance.now();
        wallNow = Date.now();
      }
      this.recorder.record('delivery_to_ack', (now - held.handedAt) * 1000);
      if (held.publishedAt !== NOT_TIMED) this.recorder.record('publish_to_ack', (wallNow - held.publishedAt) * 1000);
    }
  }

  /** Settled otherwise (nack, defer, discard): forget them unmeasured. */
  forget(positions: readonly DeliveryPosition[]): void {
    for (const { shard, offset } of positions) this.held[shard]?.take(offset);
  }

  /** The consumer closed: what it held goes to others (or waits), unmeasured here. */
  clear(): void {
    for (const times of this.held) times.clear();
  }
}
