import type { Delivery } from './delivery.js';
import { decodeEventBody } from './event-codec.js';

/**
 * Deliveries cross from a shard worker to the engine packed into a few flat buffers that are
 * transferred, not cloned: the stored event bodies back to back, and per delivery its offset,
 * attempt and the index of its subscription and consumer. Cloning one object graph per event cost
 * the worker more than storing the event; decoding the bodies is left to the engine's thread.
 */
export interface PackedDeliveries {
  count: number;
  subscriptions: string[];
  consumers: string[];
  /** Per delivery: offset, attempt, subscription index, consumer index. */
  meta: Float64Array;
  /** End of each body in `bodies`. */
  bodyEnds: Uint32Array;
  bodies: Uint8Array;
}

const META_FIELDS = 4;

/** Collects a pump's deliveries and packs them into one message. */
export class DeliveryPacker {
  private subscriptions: string[] = [];
  private consumers: string[] = [];
  private readonly subscriptionIndex = new Map<string, number>();
  private readonly consumerIndex = new Map<string, number>();
  private meta = new Float64Array(4 * 1024);
  private bodies: Uint8Array[] = [];
  private bytes = 0;

  get count(): number {
    return this.bodies.length;
  }

  get byteLength(): number {
    return this.bytes;
  }

  push(subscription: string, consumer: string, offset: number, attempt: number, body: Uint8Array): void {
    const m = this.bodies.length * META_FIELDS;
    if (m + META_FIELDS > this.meta.length) {
      const grown = new Float64Array(this.meta.length * 2);
      grown.set(this.meta);
      this.meta = grown;
    }
    this.meta[m] = offset;
    this.meta[m + 1] = attempt;
    this.meta[m + 2] = indexOf(this.subscriptionIndex, this.subscriptions, subscription);
    this.meta[m + 3] = indexOf(this.consumerIndex, this.consumers, consumer);
    this.bodies.push(body);
    this.bytes += body.length;
  }

  /** The packed message and the buffers to transfer with it; the packer starts empty again. */
  take(): { packed: PackedDeliveries; transfer: ArrayBuffer[] } {
    const count = this.bodies.length;
    const bodies = new Uint8Array(this.bytes);
    const bodyEnds = new Uint32Array(count);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const body = this.bodies[i]!;
      bodies.set(body, at);
      at += body.length;
      bodyEnds[i] = at;
    }
    const meta = this.meta.slice(0, count * META_FIELDS);
    const packed: PackedDeliveries = { count, subscriptions: this.subscriptions, consumers: this.consumers, meta, bodyEnds, bodies };
    this.subscriptions = [];
    this.consumers = [];
    this.subscriptionIndex.clear();
    this.consumerIndex.clear();
    this.bodies = [];
    this.bytes = 0;
    return { packed, transfer: [bodies.buffer, bodyEnds.buffer, meta.buffer] };
  }
}

/** Decode a packed batch into deliveries (payloads are views into the transferred buffer). */
export function unpackDeliveries(packed: PackedDeliveries, shard: number): Delivery[] {
  const deliveries = new Array<Delivery>(packed.count);
  let start = 0;
  for (let i = 0; i < packed.count; i++) {
    const end = packed.bodyEnds[i]!;
    const m = i * META_FIELDS;
    deliveries[i] = {
      subscription: packed.subscriptions[packed.meta[m + 2]!]!,
      consumer: packed.consumers[packed.meta[m + 3]!]!,
      shard,
      offset: packed.meta[m]!,
      attempt: packed.meta[m + 1]!,
      event: decodeEventBody(packed.bodies.subarray(start, end)),
    };
    start = end;
  }
  return deliveries;
}

function indexOf(index: Map<string, number>, list: string[], value: string): number {
  let i = index.get(value);
  if (i === undefined) {
    i = list.length;
    list.push(value);
    index.set(value, i);
  }
  return i;
}
