import type { ShardPool } from './shard-pool.js';

/**
 * Gathers one shard's acks, nacks, discards and defers of the same event-loop turn into one settle task. Settling is
 * fire-and-forget for consumers: a lost ack only means a redelivery (at-least-once).
 */
export class SettleBatcher {
  private acks = new Map<string, number[]>();
  private nacks: Array<{ subscription: string; offsets: number[]; delayMs: number }> = [];
  private discards: Array<{ subscription: string; offsets: number[]; reason: string }> = [];
  private defers: Array<{ subscription: string; offsets: number[]; dueAt: number; delayMs: number }> = [];
  private scheduled = false;

  constructor(
    private readonly pool: ShardPool,
    private readonly shard: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  ack(subscription: string, offset: number): void {
    // Acks come in runs of one subscription: its list is looked up once per run.
    let offsets = subscription === this.lastSubscription ? this.lastOffsets! : this.acks.get(subscription);
    if (!offsets) {
      offsets = [];
      this.acks.set(subscription, offsets);
    }
    this.lastSubscription = subscription;
    this.lastOffsets = offsets;
    offsets.push(offset);
    if (!this.scheduled) this.schedule();
  }

  private lastSubscription: string | null = null;
  private lastOffsets: number[] | null = null;

  nack(subscription: string, offset: number, delayMs: number): void {
    this.nacks.push({ subscription, offsets: [offset], delayMs });
    this.schedule();
  }

  discard(subscription: string, offset: number, reason: string): void {
    this.discards.push({ subscription, offsets: [offset], reason });
    this.schedule();
  }

  defer(subscription: string, offset: number, delayMs: number): void {
    this.defers.push({ subscription, offsets: [offset], dueAt: Date.now() + delayMs, delayMs });
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): Promise<unknown> {
    this.scheduled = false;
    if (this.acks.size === 0 && this.nacks.length === 0 && this.discards.length === 0 && this.defers.length === 0) return Promise.resolve();
    const acks = [...this.acks].map(([subscription, offsets]) => ({ subscription, offsets }));
    const nacks = this.nacks;
    const discards = this.discards;
    const defers = this.defers;
    this.acks = new Map();
    this.lastSubscription = null;
    this.lastOffsets = null;
    this.nacks = [];
    this.discards = [];
    this.defers = [];
    return this.pool.run(this.shard, { op: 'settle', acks, nacks, discards, defers }).catch(this.onError);
  }
}
