import type { Delivery } from './delivery.js';
import { decodeEventBodyAt } from './event-decoding.js';
import { NameTable } from './name-table.js';

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

/**
 * Collects a pump's deliveries and packs them into one message, copying each body once: bodies are
 * noted where they are (a slab of the shard's) and copied when the message is made, into a buffer
 * of exactly their size. Not zero-filled (every byte is written) and not grown as it fills: for
 * buffers of this size, zeroing or growing cost more than the copies.
 */
export class DeliveryPacker {
  /** Subscriptions, consumers, types and senders (a column each: a pump's deliveries mostly share them). */
  private readonly names = new NameTable(4);
  private meta = new Float64Array(INITIAL_DELIVERIES * META_FIELDS);
  private sources: Array<Uint8Array | null> = new Array<Uint8Array | null>(INITIAL_DELIVERIES).fill(null);
  private starts = new Uint32Array(INITIAL_DELIVERIES);
  private ends = new Uint32Array(INITIAL_DELIVERIES);
  private bytes = 0;
  private deliveries = 0;

  get count(): number {
    return this.deliveries;
  }

  get byteLength(): number {
    return this.bytes;
  }

  /** Add a delivery of the body at bytes [start, end) of `body` (held until `take`); `type` and `sender` null when not known. */
  push(subscription: string, consumer: string, offset: number, attempt: number, body: Uint8Array, start: number, end: number, type: string | null, sender: string | null): void {
    const i = this.deliveries++;
    if (i === this.ends.length) this.grow();
    const m = i * META_FIELDS;
    const meta = this.meta;
    meta[m] = offset;
    meta[m + 1] = attempt;
    const names = this.names;
    meta[m + 2] = names.indexOf(subscription, 0);
    meta[m + 3] = names.indexOf(consumer, 1);
    meta[m + 4] = type === null ? -1 : names.indexOf(type, 2);
    meta[m + 5] = sender === null ? -1 : names.indexOf(sender, 3);
    this.sources[i] = body;
    this.starts[i] = start;
    this.ends[i] = end;
    this.bytes += end - start;
  }

  /** The packed message and the buffers to transfer with it; the packer starts empty again. */
  take(): { packed: PackedDeliveries; transfer: ArrayBuffer[] } {
    const count = this.deliveries;
    const bodies = Buffer.allocUnsafeSlow(this.bytes);
    const bodyEnds = new Uint32Array(count);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const source = this.sources[i]!;
      const start = this.starts[i]!;
      const end = this.ends[i]!;
      bodies.set(start === 0 && end === source.length ? source : source.subarray(start, end), at);
      at += end - start;
      bodyEnds[i] = at;
      this.sources[i] = null;
    }
    const meta = this.meta.slice(0, count * META_FIELDS);
    const packed: PackedDeliveries = { count, names: this.names.take(), meta, bodyEnds, bodies };
    this.bytes = 0;
    this.deliveries = 0;
    return { packed, transfer: [bodies.buffer as ArrayBuffer, bodyEnds.buffer, meta.buffer] };
  }

  private grow(): void {
    const size = this.ends.length * 2;
    const meta = new Float64Array(size * META_FIELDS);
    meta.set(this.meta);
    this.meta = meta;
    const starts = new Uint32Array(size);
    starts.set(this.starts);
    this.starts = starts;
    const ends = new Uint32Array(size);
    ends.set(this.ends);
    this.ends = ends;
    this.sources.length = size;
    this.sources.fill(null, size / 2);
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
