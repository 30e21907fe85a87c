import type { PendingEvent, PendingState } from './pending-event.js';

const NO_BODY = new Uint8Array(0);

/**
 * The events a subscription has read in one shard and not yet finished, by offset, and what its
 * durable position is computed from. Bounded by the subscription: at most `maxInFlight`
 * outstanding plus `maxInFlight` read ahead.
 *
 * Their records are reused: a subscription takes one per event it reads, and building each afresh
 * (its number fields boxed) cost as much as the rest of taking the event. A record is recycled only
 * where the subscription drops its last reference to it (acked, dead-lettered, evicted from the
 * read-ahead); at most `maxInFlight` are kept for reuse.
 */
export class PendingEvents {
  private readonly byOffset = new Map<number, PendingEvent>();
  private readonly free: PendingEvent[] = [];

  constructor(private readonly maxInFlight: number) {}

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
    const item = this.free.pop();
    if (item === undefined) {
      return { offset, rank, lanePos, doneKey, key, type, body, bodyStart, bodyEnd, sender, attempt: 0, state, consumer: null, dueAt: 0, replayed, expiresAt };
    }
    item.offset = offset;
    item.rank = rank;
    item.lanePos = lanePos;
    item.doneKey = doneKey;
    item.key = key;
    item.type = type;
    item.body = body;
    item.bodyStart = bodyStart;
    item.bodyEnd = bodyEnd;
    item.sender = sender;
    item.attempt = 0;
    item.state = state;
    item.consumer = null;
    item.dueAt = 0;
    item.replayed = replayed;
    item.expiresAt = expiresAt;
    return item;
  }

  add(item: PendingEvent): void {
    this.byOffset.set(item.offset, item);
  }

  delete(offset: number): void {
    this.byOffset.delete(offset);
  }

  /** `item` is in no queue of the subscription any more (deleted here too): its record may be reused. */
  recycle(item: PendingEvent): void {
    item.body = NO_BODY; // the slab it pointed into may go
    item.sender = null;
    item.consumer = null;
    if (this.free.length < this.maxInFlight) this.free.push(item);
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
