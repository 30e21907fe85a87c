import type { Receipt } from '../delivery.js';

interface Entry {
  receipt: Receipt;
  publishedAt: number;
  /** Settles when the original append is durable (true) or failed (false). */
  durable: Promise<boolean> | null;
}

/**
 * Recently published event ids of one shard, for idempotent publishing: the same (type, id) within
 * the window returns the original receipt. Bounded twice: by age (the window) and by count (the
 * oldest entries go first when full), so memory does not grow with the publish rate.
 * Insertion order is publish order, so expiry only ever looks at the front of the map.
 */
export class DedupIndex {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  static keyOf(type: string, id: string): string {
    return `${type}\u0000${id}`;
  }

  get(type: string, id: string, nowMs: number): Entry | undefined {
    const entry = this.entries.get(DedupIndex.keyOf(type, id));
    if (!entry || entry.publishedAt < nowMs - this.windowMs) return undefined;
    return entry;
  }

  /** Remember a receipt; `durable` settles when its append does (null when already durable). */
  add(receipt: Receipt, publishedAt: number, durable: Promise<boolean> | null): void {
    const key = DedupIndex.keyOf(receipt.type, receipt.id);
    this.entries.delete(key);
    this.entries.set(key, { receipt, publishedAt, durable });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  remove(type: string, id: string): void {
    this.entries.delete(DedupIndex.keyOf(type, id));
  }

  /** Drop entries older than the window. */
  expire(nowMs: number): void {
    const horizon = nowMs - this.windowMs;
    for (const [key, entry] of this.entries) {
      if (entry.publishedAt >= horizon) break;
      this.entries.delete(key);
    }
  }
}
