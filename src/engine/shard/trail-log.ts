import path from 'node:path';
import { pack, unpack } from 'msgpackr';
import { Log, type FsyncPolicy } from '../../../native-free-storage/index.js';

/** What happened to an event in a subscription. `published` is read from the event itself. */
export type TrailKind = 'published' | 'delivered' | 'acked' | 'nacked' | 'discarded' | 'expired' | 'dead-lettered' | 'replayed';

export interface TrailEntry {
  kind: TrailKind;
  /** ms since the epoch. */
  at: number;
  subscription?: string;
  /** The consumer (connection) a delivery went to. */
  consumer?: string;
  /** For `published`: the client that published it. */
  client?: string;
  attempt?: number;
  reason?: string;
  delayMs?: number;
}

/** Stored form: short keys, the event's offset in `o`. */
interface StoredEntry {
  k: TrailKind;
  o: number;
  t: number;
  s?: string;
  c?: string;
  a?: number;
  r?: string;
  d?: number;
}

/** Entries buffered at most before they are appended as one record. */
const MAX_BUFFERED = 4096;
/** A trail lookup reads at most this many trail records (bounds the cost of one query). */
const MAX_RECORDS_PER_LOOKUP = 200_000;

/**
 * The audit trail of a shard: every delivery and settlement of its events, appended in batches (one
 * record per event-loop turn, or per MAX_BUFFERED entries) to a log of its own with the shard's
 * fsync policy, so the hot path pays one small encode per entry and no extra write per event.
 * A lookup scans the trail from the event's publish time on (records are timestamped when written).
 */
export class TrailLog {
  private buffered: StoredEntry[] = [];
  private scheduled = false;

  private constructor(
    private readonly log: Log | null,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** With `enabled` false nothing is recorded (and lookups return no entries). */
  static async open(dir: string, enabled: boolean, fsync: FsyncPolicy, fsyncIntervalMs: number, onError: (error: unknown) => void): Promise<TrailLog> {
    const log = enabled ? await Log.open(path.join(dir, 'trail'), { fsync, fsyncIntervalMs, segmentBytes: 16 * 1024 * 1024 }) : null;
    return new TrailLog(log, onError);
  }

  add(offset: number, entry: TrailEntry): void {
    if (!this.log) return;
    const stored: StoredEntry = { k: entry.kind, o: offset, t: entry.at };
    if (entry.subscription !== undefined) stored.s = entry.subscription;
    if (entry.consumer !== undefined) stored.c = entry.consumer;
    if (entry.attempt !== undefined) stored.a = entry.attempt;
    if (entry.reason !== undefined) stored.r = entry.reason;
    if (entry.delayMs !== undefined) stored.d = entry.delayMs;
    this.buffered.push(stored);
    if (this.buffered.length >= MAX_BUFFERED) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.buffered.length === 0 || !this.log) return;
    const entries = this.buffered;
    this.buffered = [];
    this.log.append([{ body: pack(entries) }]).catch(this.onError);
  }

  /** The trail of the event at `offset`, published at `publishedAt`, oldest first. */
  async entriesFor(offset: number, publishedAt: number): Promise<TrailEntry[]> {
    const found: TrailEntry[] = [];
    const log = this.log;
    if (!log) return found;
    this.flush();
    await log.flush(); // readers see durable records only
    const from = log.offsetForTime(publishedAt);
    if (from === null) return found;
    let read = 0;
    for (const record of log.records(Math.max(from, log.startOffset))) {
      if (++read > MAX_RECORDS_PER_LOOKUP) break;
      for (const stored of unpack(record.body) as StoredEntry[]) {
        if (stored.o !== offset) continue;
        const entry: TrailEntry = { kind: stored.k, at: stored.t };
        if (stored.s !== undefined) entry.subscription = stored.s;
        if (stored.c !== undefined) entry.consumer = stored.c;
        if (stored.a !== undefined) entry.attempt = stored.a;
        if (stored.r !== undefined) entry.reason = stored.r;
        if (stored.d !== undefined) entry.delayMs = stored.d;
        found.push(entry);
      }
    }
    return found;
  }

  async close(): Promise<void> {
    this.flush();
    await this.log?.close();
  }
}
