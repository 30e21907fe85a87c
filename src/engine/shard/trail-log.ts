import path from 'node:path';
import { pack, unpack } from 'msgpackr';
import { Log, type FsyncPolicy } from '../../../native-free-storage/index.js';

/** What happened to an event in a subscription. `published` is read from the event itself. */
export type TrailKind = 'published' | 'delivered' | 'acked' | 'nacked' | 'discarded' | 'expired' | 'dead-lettered' | 'replayed' | 'deferred' | 'due';

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
  /** For `due`: the offset of the copy appended when a scheduled or deferred delivery came due. */
  copyOffset?: number;
}

// Codes are stored: new kinds go at the end.
const KINDS: readonly TrailKind[] = ['published', 'delivered', 'acked', 'nacked', 'discarded', 'expired', 'dead-lettered', 'replayed', 'deferred', 'due'];
const KIND_CODE = new Map(KINDS.map((kind, code) => [kind, code]));

/**
 * Stored form of a batch of entries: columns of plain numbers (msgpack packs them compactly), not
 * one object per entry (a delivery and an ack per event made per-entry objects the trail's main
 * cost). Strings are interned per batch.
 */
interface StoredBatch {
  v: 1;
  kind: number[];
  offset: number[];
  at: number[];
  /** Index into `names` of the subscription, -1 for none. */
  subscription: number[];
  /** Index into `names` of the consumer, -1 for none. */
  consumer: number[];
  /** -1 for none. */
  attempt: number[];
  names: string[];
  /** Sparse: entry index -> reason / delay. */
  reason: Record<number, string>;
  delay: Record<number, number>;
  /** Sparse: entry index -> copy offset (absent in batches written before scheduling existed). */
  copy?: Record<number, number>;
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
  private kinds: number[] = [];
  private offsets: number[] = [];
  private times: number[] = [];
  private subscriptions: number[] = [];
  private consumers: number[] = [];
  private attempts: number[] = [];
  private names: string[] = [];
  private nameIndex = new Map<string, number>();
  private reasons: Record<number, string> = {};
  private delays: Record<number, number> = {};
  private copies: Record<number, number> = {};
  private scheduled = false;

  private constructor(
    private readonly log: Log | null,
    private readonly onError: (error: unknown) => void,
  ) {}

  /**
   * With `enabled` false nothing is recorded (and lookups return no entries). The trail keeps at
   * most `retentionBytes` on disk: its oldest segments go first, so old events lose their trail.
   */
  static async open(
    dir: string,
    enabled: boolean,
    retentionBytes: number,
    fsync: FsyncPolicy,
    fsyncIntervalMs: number,
    onError: (error: unknown) => void,
  ): Promise<TrailLog> {
    const segmentBytes = Math.max(64 * 1024, Math.min(16 * 1024 * 1024, Math.floor(retentionBytes / 4)));
    const log = enabled ? await Log.open(path.join(dir, 'trail'), { fsync, fsyncIntervalMs, segmentBytes, retentionBytes }) : null;
    return new TrailLog(log, onError);
  }

  add(
    kind: TrailKind,
    offset: number,
    at: number,
    subscription?: string,
    consumer?: string,
    attempt?: number,
    reason?: string,
    delayMs?: number,
    copyOffset?: number,
  ): void {
    if (!this.log) return;
    const i = this.kinds.length;
    this.kinds.push(KIND_CODE.get(kind)!);
    this.offsets.push(offset);
    this.times.push(at);
    this.subscriptions.push(subscription === undefined ? -1 : this.intern(subscription));
    this.consumers.push(consumer === undefined ? -1 : this.intern(consumer));
    this.attempts.push(attempt ?? -1);
    if (reason !== undefined) this.reasons[i] = reason;
    if (delayMs !== undefined) this.delays[i] = delayMs;
    if (copyOffset !== undefined) this.copies[i] = copyOffset;
    if (this.kinds.length >= MAX_BUFFERED) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.kinds.length === 0 || !this.log) return;
    const batch: StoredBatch = {
      v: 1,
      kind: this.kinds,
      offset: this.offsets,
      at: this.times,
      subscription: this.subscriptions,
      consumer: this.consumers,
      attempt: this.attempts,
      names: this.names,
      reason: this.reasons,
      delay: this.delays,
      copy: this.copies,
    };
    this.kinds = [];
    this.offsets = [];
    this.times = [];
    this.subscriptions = [];
    this.consumers = [];
    this.attempts = [];
    this.names = [];
    this.nameIndex = new Map();
    this.reasons = {};
    this.delays = {};
    this.copies = {};
    this.log.append([{ body: pack(batch) }]).catch(this.onError);
  }

  private intern(name: string): number {
    let index = this.nameIndex.get(name);
    if (index === undefined) {
      index = this.names.length;
      this.names.push(name);
      this.nameIndex.set(name, index);
    }
    return index;
  }

  /**
   * The trail of the event at `offset`, published at `publishedAt`, oldest first. Deliveries of its
   * copies (scheduled, deferred) are included: a `due` entry names each copy's offset.
   */
  async entriesFor(offset: number, publishedAt: number): Promise<TrailEntry[]> {
    const offsets = new Set([offset]);
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
      const batch = unpack(record.body) as StoredBatch;
      for (let i = 0; i < batch.offset.length; i++) {
        if (!offsets.has(batch.offset[i]!)) continue;
        const entry: TrailEntry = { kind: KINDS[batch.kind[i]!]!, at: batch.at[i]! };
        if (batch.subscription[i]! >= 0) entry.subscription = batch.names[batch.subscription[i]!]!;
        if (batch.consumer[i]! >= 0) entry.consumer = batch.names[batch.consumer[i]!]!;
        if (batch.attempt[i]! >= 0) entry.attempt = batch.attempt[i]!;
        if (batch.reason[i] !== undefined) entry.reason = batch.reason[i]!;
        if (batch.delay[i] !== undefined) entry.delayMs = batch.delay[i]!;
        const copy = batch.copy?.[i];
        if (copy !== undefined) {
          entry.copyOffset = copy;
          offsets.add(copy);
        }
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
