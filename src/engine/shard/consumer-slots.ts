/** A live consumer of a subscription in a shard: its credit and what it holds. */
export interface ConsumerSlot {
  id: string;
  credits: number;
  inflight: number;
}

/**
 * The live consumers of one subscription in one shard, handed deliveries round robin among those
 * with credit left (competing consumers).
 */
export class ConsumerSlots {
  private readonly slots = new Map<string, ConsumerSlot>();
  private order: string[] = [];
  private next = 0;

  get size(): number {
    return this.slots.size;
  }

  /** Add a consumer, or update its credit. */
  attach(id: string, credits: number): void {
    const existing = this.slots.get(id);
    if (existing) {
      existing.credits = credits;
      return;
    }
    this.slots.set(id, { id, credits, inflight: 0 });
    this.order = [...this.slots.keys()];
  }

  /** Returns false when it was not attached. */
  detach(id: string): boolean {
    if (!this.slots.delete(id)) return false;
    this.order = [...this.slots.keys()];
    return true;
  }

  /** The next consumer with credit left, round robin; null when none has. */
  pick(): ConsumerSlot | null {
    const count = this.order.length;
    for (let tried = 0; tried < count; tried++) {
      const slot = this.slots.get(this.order[this.next++ % count]!)!;
      if (slot.inflight < slot.credits) return slot;
    }
    return null;
  }

  /** A delivery `id` held came back (settled, nacked, deferred): its credit returns. */
  release(id: string): void {
    const slot = this.slots.get(id);
    if (slot) slot.inflight--;
  }

  /** Forget what every consumer holds (after a seek). */
  resetInflight(): void {
    for (const slot of this.slots.values()) slot.inflight = 0;
  }
}
