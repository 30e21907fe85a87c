import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * What one shard counts about its events, by event type, for the metrics endpoint. Counting is on
 * the delivery hot path, so a count is one Map lookup and one field increment: no allocation per
 * event. Counts start at zero when the shard opens (in this worker): they are Prometheus counters,
 * which scrapers expect to reset on restarts.
 */

/** At most this many event types are counted by name per shard; the rest count under OTHER_TYPE. */
export const MAX_COUNTED_TYPES = 10_000;
/** The type name the counts of types beyond MAX_COUNTED_TYPES go under. */
export const OTHER_TYPE = '_other';

/** Why an event was dead-lettered, as a small fixed set (the reasons themselves are free text). */
export type DeadLetterReasonClass = 'expired' | 'discarded' | 'max-deliveries';
export const DEAD_LETTER_REASON_CLASSES: readonly DeadLetterReasonClass[] = ['expired', 'discarded', 'max-deliveries'];

/** Counts of one event type (plain numbers: crosses threads by structured clone). */
export interface EventTypeCounts {
  type: string;
  /** Stored by a publish (duplicates and refused events are not). */
  published: number;
  /** Deliveries, first ones and redeliveries. */
  delivered: number;
  /** Deliveries with attempt > 1. */
  redelivered: number;
  acked: number;
  nacked: number;
  /** Deliveries deferred (counted once the return is durably scheduled). */
  deferred: number;
  deadLettered: Record<DeadLetterReasonClass, number>;
}

/** A subscription's position and load in one shard. */
export interface SubscriptionMetrics {
  subscription: string;
  /** Offsets in the shard's log from the subscription's commit point to the log's end. */
  lagOffsets: number;
  /** Events delivered (or due for redelivery, or delayed by a nack) and not yet done. */
  inFlight: number;
  paused: boolean;
  /** Events it dead-lettered in this shard since the shard opened. */
  deadLettered: number;
}

/** The shard's fsyncs and their durations, as a histogram (see FsyncTimings in the storage layer). */
export interface FsyncMetrics {
  count: number;
  totalSeconds: number;
  bounds: number[];
  /** Per bucket, not cumulative; the last entry counts those longer than the last bound. */
  buckets: number[];
}

/** Everything the shard reports for metrics, in plain numbers and arrays. */
export interface SerializedShardMetrics {
  eventTypes: EventTypeCounts[];
  subscriptions: SubscriptionMetrics[];
  /** Bytes of the shard's files on disk: events log with its indexes, lanes, state logs. */
  diskBytes: number;
  /** Group-commit fsyncs of the shard's events log. */
  fsync: FsyncMetrics;
}

/** Metrics of a shard that has counted nothing (for fixtures and a shard's first report). */
export function emptyShardMetrics(): SerializedShardMetrics {
  return { eventTypes: [], subscriptions: [], diskBytes: 0, fsync: { count: 0, totalSeconds: 0, bounds: [], buckets: [0] } };
}

/** The counting side the subscription state sees (it settles events it holds, by type). */
export interface EventCounters {
  delivered(type: string, attempt: number): void;
  acked(type: string): void;
  nacked(type: string): void;
  deferred(type: string): void;
  deadLettered(type: string, reason: DeadLetterReasonClass): void;
}

/** One type's counters; a class so every instance shares one shape (fast field increments). */
class TypeCounters {
  published = 0;
  delivered = 0;
  redelivered = 0;
  acked = 0;
  nacked = 0;
  deferred = 0;
  expired = 0;
  discarded = 0;
  maxDeliveries = 0;
}

export class ShardMetrics implements EventCounters {
  private readonly byType = new Map<string, TypeCounters>();
  /** Types beyond the bound, all together; null until the first one. */
  private other: TypeCounters | null = null;

  constructor(private readonly maxTypes: number = MAX_COUNTED_TYPES) {}

  /** Distinct types counted by name (at most maxTypes). */
  get typeCount(): number {
    return this.byType.size;
  }

  published(type: string, count = 1): void {
    this.countersOf(type).published += count;
  }

  delivered(type: string, attempt: number): void {
    const counters = this.countersOf(type);
    counters.delivered++;
    if (attempt > 1) counters.redelivered++;
  }

  acked(type: string): void {
    this.countersOf(type).acked++;
  }

  nacked(type: string): void {
    this.countersOf(type).nacked++;
  }

  deferred(type: string): void {
    this.countersOf(type).deferred++;
  }

  deadLettered(type: string, reason: DeadLetterReasonClass): void {
    const counters = this.countersOf(type);
    if (reason === 'expired') counters.expired++;
    else if (reason === 'discarded') counters.discarded++;
    else counters.maxDeliveries++;
  }

  /** The counts by type (OTHER_TYPE last, when any type overflowed). */
  eventTypes(): EventTypeCounts[] {
    const counts: EventTypeCounts[] = [];
    for (const [type, counters] of this.byType) counts.push(countsOf(type, counters));
    if (this.other) counts.push(countsOf(OTHER_TYPE, this.other));
    return counts;
  }

  private countersOf(type: string): TypeCounters {
    const counters = this.byType.get(type);
    return counters !== undefined ? counters : this.addType(type);
  }

  private addType(type: string): TypeCounters {
    // An event type that is itself named OTHER_TYPE shares its counters: one series per name.
    if (type === OTHER_TYPE || this.byType.size >= this.maxTypes) return (this.other ??= new TypeCounters());
    const counters = new TypeCounters();
    this.byType.set(type, counters);
    return counters;
  }
}

function countsOf(type: string, c: TypeCounters): EventTypeCounts {
  return {
    type,
    published: c.published,
    delivered: c.delivered,
    redelivered: c.redelivered,
    acked: c.acked,
    nacked: c.nacked,
    deferred: c.deferred,
    deadLettered: { expired: c.expired, discarded: c.discarded, 'max-deliveries': c.maxDeliveries },
  };
}

/**
 * Bytes of the files under `dir`, recursively. Files removed while it walks (retention, segment
 * rolls) are skipped: the figure is a sample, not a snapshot.
 */
export async function directoryBytes(dir: string): Promise<number> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isGone(error)) return 0;
    throw error;
  }
  let total = 0;
  for (const entry of entries) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      total += await directoryBytes(entryPath);
    } else if (entry.isFile()) {
      try {
        total += (await fs.stat(entryPath)).size;
      } catch (error) {
        if (!isGone(error)) throw error;
      }
    }
  }
  return total;
}

function isGone(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}
