import path from 'node:path';
import { Log, type FsyncPolicy } from '../../../native-free-storage/index.js';
import { decodeTrailBatch, encodeTrailBatch, MAX_TRAIL_NAMES } from './trail-batch.js';
import { NameTable } from '../name-table.js';

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

/** Entries buffered at most before they are appended as one record. */
const MAX_BUFFERED = 4096;
/** A trail lookup reads at most this many trail records (bounds the cost of one query). */
const MAX_RECORDS_PER_LOOKUP = 200_000;

/**
 * The audit trail of a shard: every delivery and settlement of its events, appended in batches (one
 * record per fsync window, or per event-loop turn with fsync `always`, or per MAX_BUFFERED entries)
 * to a log of its own with the shard's fsync policy, so the hot path pays one small write into columns per entry and no write of its
 * own (format: trail-batch.ts). A lookup scans the trail from the event's publish time on (records
 * are timestamped when written).
 */
export class TrailLog {
  private count = 0;
  private readonly kinds = new Uint8Array(MAX_BUFFERED);
  private readonly offsets = new Float64Array(MAX_BUFFERED);
  private readonly times = new Float64Array(MAX_BUFFERED);
  private readonly subscriptions = new Int32Array(MAX_BUFFERED);
  private readonly consumers = new Int32Array(MAX_BUFFERED);
  private readonly attempts = new Float64Array(MAX_BUFFERED);
  /** Subscriptions and consumers named by the entries (a column each: entries come in runs of them). */
  private readonly names = new NameTable(2);
  private reasons = new Map<number, string>();
  private delays = new Map<number, number>();
  private copies = new Map<number, number>();
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly flushNow = (): void => this.flush();

  private constructor(
    private readonly log: Log | null,
    /** How long entries wait to be appended together: the fsync window (0: the end of the turn). */
    private readonly flushDelayMs: number,
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
    // Entries are gathered over one group-commit window (they become durable no later than they
    // would have appended turn by turn); with fsync `always`, at the end of each turn.
    return new TrailLog(log, fsync === 'always' ? 0 : fsyncIntervalMs, onError);
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
    const i = this.count++;
    this.kinds[i] = KIND_CODE.get(kind)!;
    this.offsets[i] = offset;
    this.times[i] = at;
    this.subscriptions[i] = subscription === undefined ? -1 : this.names.indexOf(subscription, 0);
    this.consumers[i] = consumer === undefined ? -1 : this.names.indexOf(consumer, 1);
    this.attempts[i] = attempt ?? -1;
    if (reason !== undefined) this.reasons.set(i, reason);
    if (delayMs !== undefined) this.delays.set(i, delayMs);
    if (copyOffset !== undefined) this.copies.set(i, copyOffset);
    // A full buffer, or names about to outgrow a batch's u16 indexes: append what is gathered.
    if (this.count >= MAX_BUFFERED || this.names.size >= MAX_TRAIL_NAMES - 2) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      if (this.flushDelayMs > 0) this.timer = setTimeout(this.flushNow, this.flushDelayMs);
      else setImmediate(this.flushNow);
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.count === 0 || !this.log) return;
    const body = encodeTrailBatch({
      count: this.count,
      kinds: this.kinds,
      offsets: this.offsets,
      times: this.times,
      subscriptions: this.subscriptions,
      consumers: this.consumers,
      attempts: this.attempts,
      names: this.names.take(),
      reasons: this.reasons,
      delays: this.delays,
      copies: this.copies,
    });
    this.count = 0;
    if (this.reasons.size > 0) this.reasons = new Map();
    if (this.delays.size > 0) this.delays = new Map();
    if (this.copies.size > 0) this.copies = new Map();
    this.log.append([{ body }]).catch(this.onError);
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
      const batch = decodeTrailBatch(record.body);
      for (let i = 0; i < batch.count; i++) {
        if (!offsets.has(batch.offsets[i]!)) continue;
        const entry: TrailEntry = { kind: KINDS[batch.kinds[i]!]!, at: batch.times[i]! };
        if (batch.subscriptions[i]! >= 0) entry.subscription = batch.names[batch.subscriptions[i]!]!;
        if (batch.consumers[i]! >= 0) entry.consumer = batch.names[batch.consumers[i]!]!;
        if (batch.attempts[i]! >= 0) entry.attempt = batch.attempts[i]!;
        const reason = batch.reasons.get(i);
        if (reason !== undefined) entry.reason = reason;
        const delay = batch.delays.get(i);
        if (delay !== undefined) entry.delayMs = delay;
        const copy = batch.copies.get(i);
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
