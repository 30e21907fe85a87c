import { DEFAULT_EVENT_PRIORITY as DEFAULT_PRIORITY } from '../event.js';

/** Where a pending event is: read ahead, out to a consumer, waiting to be redelivered, delayed by a nack, or being deferred. */
export type PendingState = 'ready' | 'inflight' | 'waiting' | 'delayed' | 'deferring';

/**
 * Drain order of a subscription's sources: rank = 9 - priority. Priorities other than the default
 * are read from their lanes; rank 5 (priority 4) is the main scan of the log, which in ordered mode
 * reads every priority (order per key wins over priority there).
 */
export const MAIN_RANK = 9 - DEFAULT_PRIORITY;
export const RANKS = 10;
/** Lane positions are kept done under their own keys, above any log offset. */
const LANE_KEY_BASE = 2 ** 48;

/** The done-set key of position `position` of priority `priority`'s lane. */
export function laneKey(priority: number, position: number): number {
  return LANE_KEY_BASE * (priority + 1) + position;
}

/** What a subscription tracks of one event between reading it and its end (ack, dead letter, defer). */
export interface PendingEvent {
  offset: number;
  /** Where it was read from: MAIN_RANK, or 9 - priority for a lane. */
  rank: number;
  /** Its lane position; -1 when read by the main scan (or put back by a replay). */
  lanePos: number;
  /** What marks it done: the offset (main scan) or its lane key. */
  doneKey: number;
  /** Ordering key: the event's key, else its type. */
  key: string;
  /** The event's type (for the shard's counts by type). */
  type: string;
  /** The stored event body: bytes [bodyStart, bodyEnd) of `body` (a slab it was copied into). */
  body: Uint8Array;
  bodyStart: number;
  bodyEnd: number;
  /** The event's sender when known (it travels with the delivery instead of being decoded again). */
  sender: string | null;
  /** Deliveries so far. */
  attempt: number;
  state: PendingState;
  consumer: string | null;
  /** inflight: redeliver after this time; delayed: due at this time. */
  dueAt: number;
  /** A dead letter put back by a replay: below the commit point, so it does not hold the commit. */
  replayed: boolean;
  /** ms; 0 when the event does not expire. */
  expiresAt: number;
}

/** Redelivery order: rank (priority), then offset. */
export function before(a: PendingEvent, b: PendingEvent): boolean {
  return a.rank !== b.rank ? a.rank < b.rank : a.offset < b.offset;
}

/** An event that left a subscription as a dead letter, with why and after how many deliveries. */
export interface DeadLetter {
  offset: number;
  /** Its done-set key (for the journal). */
  key: number;
  reason: string;
  /** Deliveries it had. */
  attempts: number;
  /** It had been replayed from the dead letters before (its end must be recorded there too). */
  replayed: boolean;
}

/** The dead-letter reason of an event whose ttl passed before it was delivered (or acked). */
export const EXPIRED = 'expired';
