import { PendingEventPool, type PendingEvent, type PendingState } from './pending-event.js';

/**
 * The events a subscription has read in one shard and not yet finished, by offset, with the pool
 * their records come from and go back to, and what its durable position is computed from. Bounded
 * by the subscription: at most `maxInFlight` outstanding plus `maxInFlight` read ahead.
 */
export class PendingEvents {
  private readonly byOffset = new Map<number, PendingEvent>();
  private readonly pool: PendingEventPool;

  constructor(maxInFlight: number) {
    this.pool = new PendingEventPool(maxInFlight);
  }

  get size(): number {
    return this.byOffset.size;
  }

  get(offset: number): PendingEvent | undefined {
    return this.byOffset.get(offset);
  }

  has(offset: number): boolean {
    return this.byOffset.has(offset);
  }

  /** A record for a newly read (or replayed) event; `add` it once it is queued. */
  record(
    offset: number,
    rank: number,
    lanePos: number,
    doneKey: number,
    key: string,
    type: string,
    body: Uint8Array,
    bodyStart: number,
    bodyEnd: number,
    sender: string | null,
    state: PendingState,
    replayed: boolean,
    expiresAt: number,
  ): PendingEvent {
    return this.pool.take(offset, rank, lanePos, doneKey, key, type, body, bodyStart, bodyEnd, sender, state, replayed, expiresAt);
  }

  add(item: PendingEvent): void {
    this.byOffset.set(item.offset, item);
  }

  delete(offset: number): void {
    this.byOffset.delete(offset);
  }

  /** `item` is in no queue of the subscription any more (deleted here too): its record may be reused. */
  recycle(item: PendingEvent): void {
    this.pool.give(item);
  }

  values(): IterableIterator<PendingEvent> {
    return this.byOffset.values();
  }

  /** Forget everything (a seek): records still queued elsewhere are dropped with their queues. */
  clear(): void {
    this.byOffset.clear();
  }

  /**
   * Every matching event of the main scan below the answer is done: the read position (or the
   * rewind point of passed-over events), unless a pending event lies lower. A full pass (bounded by
   * twice the window): rewound reads and replays insert out of offset order.
   */
  commitOffset(readOffset: number, rewindOffset: number | null): number {
    let commit = rewindOffset === null ? readOffset : Math.min(readOffset, rewindOffset);
    for (const item of this.byOffset.values()) if (!item.replayed && item.lanePos < 0 && item.offset < commit) commit = item.offset;
    return commit;
  }

  /** Every wanted entry of `priority`'s lane below the answer is done (undefined: the lane was never read). */
  laneCommit(priority: number, laneRead: number | undefined): number | undefined {
    let commit = laneRead;
    if (commit === undefined) return undefined;
    const rank = 9 - priority;
    for (const item of this.byOffset.values()) if (item.rank === rank && item.lanePos >= 0 && item.lanePos < commit) commit = item.lanePos;
    return commit;
  }
}
