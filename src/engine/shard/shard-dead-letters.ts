import { decodeEventBody, readEventRouting, readEventType } from '../event-codec.js';
import type { DeadLetterView } from '../shard-messages.js';
import type { BodySlab } from './body-slab.js';
import type { DeadLetterStore } from './dead-letter-store.js';
import type { EventLookup } from './event-lookup.js';
import { eventBodyOf } from './record-kind.js';
import { EXPIRED, type DeadLetter, type SubscriptionState } from './subscription-state.js';
import type { DoneEntry } from './subscription-store.js';
import type { TrailLog } from './trail-log.js';

/**
 * A shard's dead letters seen from its subscriptions: recording them (with their trail), listing
 * them with the events' ids, and replaying them. Replays are queued per subscription and put back
 * as its window has room, so replaying many does not read them all into memory at once.
 */
export class ShardDeadLetters {
  /** Dead letters waiting to be put back, per subscription (offsets only; bounded by the list). */
  private readonly replayQueues = new Map<string, number[]>();

  constructor(
    private readonly shard: number,
    private readonly store: DeadLetterStore,
    private readonly lookup: EventLookup,
    private readonly trail: TrailLog,
    private readonly slab: BodySlab,
  ) {}

  /** Record dead letters; returns the journal entry that marks them done for the cursor. */
  record(subscription: string, letters: DeadLetter[], nowMs: number): DoneEntry {
    this.store.record(subscription, letters, nowMs);
    for (const { offset, reason, attempts } of letters) {
      const kind = reason === EXPIRED ? 'expired' : reason.startsWith('discarded: ') ? 'discarded' : 'dead-lettered';
      this.trail.add(kind, offset, nowMs, subscription, undefined, attempts, reason);
    }
    return { s: subscription, o: letters.map((l) => l.key) };
  }

  /** Replayed dead letters acked: they leave the list. */
  finished(subscription: string, offsets: number[], nowMs: number): void {
    this.store.markFinished(subscription, offsets, nowMs);
  }

  /** A subscription's dead letters, with each event's id and type (read from the log). */
  list(subscription: string, limit: number, afterOffset: number): DeadLetterView[] {
    return this.store.list(subscription, limit, afterOffset).flatMap((letter) => {
      const record = this.lookup.readOne(letter.offset);
      const body = record && eventBodyOf(record.attributes, record.body);
      if (!body) return [];
      const event = decodeEventBody(body.body);
      return [{ ...letter, shard: this.shard, id: event.id, type: event.type, publishedAt: event.publishedAt }];
    });
  }

  /** Dead letters of `subscription` queued to go back and not yet put back. */
  queuedCount(subscription: string): number {
    return this.replayQueues.get(subscription)?.length ?? 0;
  }

  /** Queue dead letters (the given offsets, or all) to go back; returns how many were queued. */
  queueReplay(subscription: string, offsets: number[] | 'all'): number {
    const queue = this.replayQueues.get(subscription) ?? [];
    const queued = new Set(queue);
    const wanted = offsets === 'all' ? this.store.list(subscription, Number.MAX_SAFE_INTEGER).map((l) => l.offset) : offsets;
    const added = wanted.filter((offset) => this.store.has(subscription, offset) && !queued.has(offset));
    if (added.length > 0) this.replayQueues.set(subscription, [...queue, ...added]);
    return added.length;
  }

  /** Move queued replays into the subscription while its window has room. */
  drain(state: SubscriptionState, nowMs: number): void {
    const queue = this.replayQueues.get(state.spec.key);
    if (!queue) return;
    const putBack: number[] = [];
    for (const offset of queue.splice(0, state.outstandingRoom)) {
      if (this.store.has(state.spec.key, offset) && this.putBack(state, offset)) {
        putBack.push(offset);
        this.trail.add('replayed', offset, nowMs, state.spec.key);
      }
    }
    if (queue.length === 0) this.replayQueues.delete(state.spec.key);
    this.store.markReplayed(state.spec.key, putBack, nowMs);
  }

  /** Replays not yet done when the shard stopped go back into their subscriptions. */
  restoreOwed(subscriptions: ReadonlyMap<string, SubscriptionState>): void {
    for (const [subscription, offsets] of this.store.owed()) {
      const state = subscriptions.get(subscription);
      if (state) for (const offset of offsets) this.putBack(state, offset);
    }
  }

  /** Read one event back into a subscription as a replay. */
  private putBack(state: SubscriptionState, offset: number): boolean {
    const record = this.lookup.readOne(offset);
    const body = record && eventBodyOf(record.attributes, record.body);
    if (!body) return false;
    const at = this.slab.copy(body.body, 0, body.body.length);
    return state.replay(offset, readEventRouting(body.body).orderingKey, this.slab.lastBuffer, at, at + body.body.length, readEventType(body.body));
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
