import type { Delivery } from './delivery.js';
import { decodeEventBodyAt } from './event-decoding.js';

/**
 * Deliveries cross from a shard worker to the engine packed into a few flat buffers that are
 * transferred, not cloned: the stored event bodies back to back, and per delivery its offset,
 * attempt and the indexes of its subscription, consumer, event type and sender in `names` (the
 * strings of a batch repeat: each crosses once). Cloning one object graph per event cost the worker
 * more than storing the event; decoding the bodies is left to the engine's thread, which takes the
 * type and sender from `names` instead of decoding them again.
 */
export interface PackedDeliveries {
  count: number;
  names: string[];
  /** Per delivery: offset, attempt, then indexes into `names` of subscription, consumer, type and sender (-1: decode it from the body). */
  meta: Float64Array;
  /** End of each body in `bodies`. */
  bodyEnds: Uint32Array;
  bodies: Uint8Array;
}

export const META_FIELDS = 6;
const INITIAL_DELIVERIES = 1024;
const MIN_BODY_BYTES = 64 * 1024;
/** The next batch's body buffer starts at most this large (it grows past it if a batch needs). */
const MAX_INITIAL_BODY_BYTES = 8 * 1024 * 1024;

/** Collects a pump's deliveries and packs them into one message, copying each body once. */
export class DeliveryPacker {
  private names: string[] = [];
  private readonly nameIndex = new Map<string, number>();
  /** The last name looked up of each column (a pump's deliveries mostly share them). */
  private readonly lastNames: Array<string | null> = [null, null, null, null];
  private readonly lastIndexes = [0, 0, 0, 0];
  private meta = new Float64Array(INITIAL_DELIVERIES * META_FIELDS);
  private ends = new Uint32Array(INITIAL_DELIVERIES);
  private bodies = new Uint8Array(MIN_BODY_BYTES);
  private used = 0;
  private deliveries = 0;

  get count(): number {
    return this.deliveries;
  }

  get byteLength(): number {
    return this.used;
  }

  /** Add a delivery of the body at bytes [start, end) of `body`; `type` and `sender` null when not known. */
  push(subscription: string, consumer: string, offset: number, attempt: number, body: Uint8Array, start: number, end: number, type: string | null, sender: string | null): void {
    const i = this.deliveries++;
    if (i === this.ends.length) this.growDeliveries();
    const m = i * META_FIELDS;
    const meta = this.meta;
    meta[m] = offset;
    meta[m + 1] = attempt;
    meta[m + 2] = this.nameOf(0, subscription);
    meta[m + 3] = this.nameOf(1, consumer);
    meta[m + 4] = type === null ? -1 : this.nameOf(2, type);
    meta[m + 5] = sender === null ? -1 : this.nameOf(3, sender);
    const length = end - start;
    if (this.used + length > this.bodies.length) this.growBodies(this.used + length);
    this.bodies.set(start === 0 && end === body.length ? body : body.subarray(start, end), this.used);
    this.used += length;
    this.ends[i] = this.used;
  }

  /** The packed message and the buffers to transfer with it; the packer starts empty again. */
  take(): { packed: PackedDeliveries; transfer: ArrayBuffer[] } {
    const count = this.deliveries;
    // The bodies' buffer is transferred whole (no copy); the next batch gets a fresh one.
    const bodies = new Uint8Array(this.bodies.buffer, 0, this.used);
    const bodyEnds = this.ends.slice(0, count);
    const meta = this.meta.slice(0, count * META_FIELDS);
    const packed: PackedDeliveries = { count, names: this.names, meta, bodyEnds, bodies };
    this.bodies = new Uint8Array(Math.min(MAX_INITIAL_BODY_BYTES, Math.max(MIN_BODY_BYTES, 2 ** Math.ceil(Math.log2(this.used + 1)))));
    this.used = 0;
    this.deliveries = 0;
    this.names = [];
    this.nameIndex.clear();
    this.lastNames.fill(null);
    return { packed, transfer: [bodies.buffer as ArrayBuffer, bodyEnds.buffer, meta.buffer] };
  }

  private nameOf(column: number, name: string): number {
    if (this.lastNames[column] === name) return this.lastIndexes[column]!;
    let index = this.nameIndex.get(name);
    if (index === undefined) {
      index = this.names.length;
      this.names.push(name);
      this.nameIndex.set(name, index);
    }
    this.lastNames[column] = name;
    this.lastIndexes[column] = index;
    return index;
  }

  private growDeliveries(): void {
    const meta = new Float64Array(this.meta.length * 2);
    meta.set(this.meta);
    this.meta = meta;
    const ends = new Uint32Array(this.ends.length * 2);
    ends.set(this.ends);
    this.ends = ends;
  }

  private growBodies(needed: number): void {
    const bodies = new Uint8Array(Math.max(needed, this.bodies.length * 2));
    bodies.set(this.bodies.subarray(0, this.used));
    this.bodies = bodies;
  }
}

/** Decode a packed batch into deliveries (payloads are views into the transferred buffer). */
export function unpackDeliveries(packed: PackedDeliveries, shard: number): Delivery[] {
  const { count, names, meta, bodyEnds, bodies } = packed;
  const deliveries = new Array<Delivery>(count);
  let start = 0;
  for (let i = 0; i < count; i++) {
    const end = bodyEnds[i]!;
    const m = i * META_FIELDS;
    const type = meta[m + 4]!;
    const sender = meta[m + 5]!;
    deliveries[i] = {
      subscription: names[meta[m + 2]!]!,
      consumer: names[meta[m + 3]!]!,
      shard,
      offset: meta[m]!,
      attempt: meta[m + 1]!,
      event: decodeEventBodyAt(bodies, start, end, type < 0 ? null : names[type]!, sender < 0 ? null : names[sender]!),
    };
    start = end;
  }
  return deliveries;
}
