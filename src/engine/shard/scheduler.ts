import { StorageError, type Log, type LogRecord } from '../../../native-free-storage/index.js';
import { EngineError } from '../errors.js';
import { eventStreamTag, readEventSchedule, readEventType } from '../event-codec.js';
import { decodeScheduleHeader, encodeScheduleRecord, eventBodyOf, RecordKind, recordKind } from './record-kind.js';
import { ScheduleIndex, type ScheduleEntry } from './schedule-index.js';
import type { AppendedEvents, StoredRecord } from './appended-events.js';
import { UNFOLLOWED_SCAN, type ScanProgress } from './work-reporter.js';

/** Copies appended per fire batch at most. */
const FIRE_BATCH = 1000;
/**
 * Width of the index's time buckets: one file each. Wider means fewer files for schedules far
 * ahead; the entries of one bucket are in memory together once it comes near.
 */
const BUCKET_MS = 1000;
/** Sources this close together are read with one read. */
const SOURCE_RUN_RECORDS = 256;
const SOURCE_RUN_BYTES = 4 * 1024 * 1024;
/** The fire timer never sleeps longer than this (a clock jump or a newly loaded bucket is seen). */
const MAX_SLEEP_MS = 1000;

/** A delivery a consumer deferred: `eventOffset` is the record it was delivered from. */
export interface DeferRequest {
  subscription: string;
  eventOffset: number;
  dueAt: number;
}

/** What the shard learns from a fire: the copies appended, for indexing, delivery and the trail. */
export interface FiredCopies {
  base: number;
  records: StoredRecord[];
  /** Per copy: the offset of the original published event (its trail gets a `due` entry). */
  rootOffsets: number[];
}

/**
 * Scheduled events and deferred deliveries of one shard. Both are records of the shard's event log
 * (a SCHEDULED event, a DEFER marker), so they are as durable as events; the ScheduleIndex is the
 * on-disk, time-bucketed index of them that keeps memory bounded however many are pending. When one
 * comes due, a FIRED copy of the event is appended to the log, where subscriptions read it like a
 * newly published event. The copy names its source, so after a crash a rescan of the log's tail
 * tells exactly which were fired.
 *
 * The index fires in (due time, source offset) order and remembers the last key fired; an entry
 * added with a due time at or before that (an event scheduled for a moment already passed) is
 * moved to just after it, so every unfired entry stays above the mark. After a crash, entries
 * whose records lie past the index's checkpoint are re-derived from the log, and one of them
 * counts as fired only if its copy is found there.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Number.POSITIVE_INFINITY;
  /** Fires and checkpoints run one at a time: a checkpoint may only record fires that are durable. */
  private chain: Promise<void> = Promise.resolve();
  private firing = false;
  private closed = false;

  private constructor(
    private readonly log: Log,
    private readonly index: ScheduleIndex,
    private readonly onFired: (fired: FiredCopies) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Open the index under `dir` and bring it up to date with the log (rescanning its tail). */
  /** `scanStarted` is told the offsets the recovery scan covers and returns what to call per record. */
  static async open(
    dir: string,
    log: Log,
    onFired: (fired: FiredCopies) => void,
    onError: (error: unknown) => void,
    scanStarted: ScanProgress = UNFOLLOWED_SCAN,
  ): Promise<Scheduler> {
    const index = await ScheduleIndex.open(dir, { bucketMs: BUCKET_MS });
    const scheduler = new Scheduler(log, index, onFired, onError);
    scheduler.rescan(scanStarted);
    scheduler.arm();
    return scheduler;
  }

  /** Scheduled and deferred deliveries waiting. */
  get pending(): number {
    return this.index.pending;
  }

  /** The last entry fired, in (due time, source) order: everything before it has its copy appended. */
  get lastFired(): ScheduleEntry | null {
    return this.index.lastFired;
  }

  /** Schedule entries held in memory (the rest wait in bucket files). */
  get inMemory(): number {
    return this.index.inMemory;
  }

  private rescan(scanStarted: ScanProgress): void {
    const from = Math.max(this.index.indexedTo, this.log.startOffset);
    const seen = scanStarted(from, this.log.durableOffset);
    const candidates: ScheduleEntry[] = [];
    const fired = new Set<number>();
    for (const record of this.log.records(from)) {
      seen(record.offset);
      const kind = recordKind(record.attributes);
      if (kind === RecordKind.SCHEDULED) candidates.push({ dueAt: readEventSchedule(record.body).deliverAt, source: record.offset });
      else if (kind === RecordKind.DEFER) candidates.push({ dueAt: decodeScheduleHeader(record.body).dueAt, source: record.offset });
      else if (kind === RecordKind.FIRED) {
        const header = decodeScheduleHeader(record.body);
        fired.add(header.source);
        this.index.noteFired({ dueAt: header.dueAt, source: header.source });
      }
    }
    for (const entry of candidates) if (!fired.has(entry.source)) this.add(entry.dueAt, entry.source);
    this.index.markSeen(this.log.durableOffset);
  }

  /** Add an entry, moved past the last key fired if its due time is not after it. */
  private add(dueAt: number, source: number): void {
    const last = this.index.lastFired;
    this.index.add(last && dueAt <= last.dueAt ? last.dueAt + 1 : dueAt, source);
  }

  /** Events just appended (in offset order from `base`): index the scheduled ones. */
  observe(appended: AppendedEvents): void {
    const { base, count, attributes, deliverAts } = appended;
    let added = false;
    for (let i = 0; i < count; i++) {
      if (attributes[i] !== RecordKind.SCHEDULED) continue;
      this.add(deliverAts[i]!, base + i);
      added = true;
    }
    this.index.markSeen(base + count);
    if (added) this.arm();
  }

  /**
   * Append DEFER markers for deliveries consumers deferred; resolves once they are durable (only
   * then may the deliveries count as done for their subscriptions). Each marker carries a copy of
   * its event, so it fires whatever compaction or retention does to the original meanwhile.
   */
  async defer(requests: readonly DeferRequest[]): Promise<void> {
    const records = requests.map(({ subscription, eventOffset, dueAt }) => {
      const { root, eventBody } = this.rootOf(eventOffset);
      return { body: encodeScheduleRecord({ source: 0, dueAt, eventOffset: root, subscription }, eventBody), attributes: RecordKind.DEFER };
    });
    const base = this.log.nextOffset;
    await this.log.append(records);
    requests.forEach((request, i) => this.add(request.dueAt, base + i));
    this.index.markSeen(base + records.length);
    this.arm();
  }

  /** The original published event behind a delivered record (itself, unless it is a copy), and its body. */
  private rootOf(offset: number): { root: number; eventBody: Uint8Array } {
    const [record] = this.log.read(offset, { maxRecords: 1 });
    const body = record && record.offset === offset ? eventBodyOf(record.attributes, record.body) : null;
    if (!record || !body) throw new EngineError('NOT_FOUND', `no event at offset ${offset}`);
    const root = recordKind(record.attributes) === RecordKind.FIRED ? decodeScheduleHeader(record.body).eventOffset : offset;
    return { root, eventBody: body.body };
  }

  /** Write the index's checkpoint (after any fire in progress, so it records only durable fires). */
  checkpoint(): Promise<void> {
    return this.enqueue(() => this.index.checkpoint());
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(step);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Set the timer for the earliest due entry. */
  private arm(): void {
    if (this.closed || this.firing) return;
    const now = Date.now();
    const next = this.index.nextDue(now);
    if (next === null) return;
    const due = Math.min(next, now + MAX_SLEEP_MS);
    if (this.timer && due >= this.timerDue) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerDue = Number.POSITIVE_INFINITY;
      this.firing = true;
      void this.enqueue(() => this.fireDue())
        .catch((error) => this.onError(error))
        .finally(() => {
          this.firing = false;
          this.arm();
        });
    }, Math.max(0, due - now));
  }

  /** Append copies of everything due, a batch at a time. */
  private async fireDue(): Promise<void> {
    while (!this.closed) {
      const due = this.index.takeDue(Date.now(), FIRE_BATCH);
      if (due.length === 0) return;
      await this.fire(due);
    }
  }

  private async fire(due: ScheduleEntry[]): Promise<void> {
    const now = Date.now();
    const records: StoredRecord[] = [];
    const rootOffsets: number[] = [];
    const sources = this.readSources(due.map((entry) => entry.source));
    for (const entry of due) {
      const copy = this.copyOf(entry, sources.get(entry.source) ?? null);
      if (!copy) continue;
      const { priority } = readEventSchedule(copy.eventBody);
      records.push({
        body: encodeScheduleRecord({ source: entry.source, dueAt: entry.dueAt, eventOffset: copy.root, subscription: copy.subscription }, copy.eventBody),
        timestamp: now,
        stream: eventStreamTag(readEventType(copy.eventBody)),
        attributes: RecordKind.FIRED,
        priority,
        deliverAt: 0,
      });
      rootOffsets.push(copy.root);
    }
    if (records.length === 0) return;
    const base = this.log.nextOffset;
    await this.log.append(records);
    this.index.markSeen(base + records.length);
    this.onFired({ base, records, rootOffsets });
  }

  /**
   * The records at `offsets`, read in runs: sources due together were often stored together, and
   * one read of a run costs about what one read of a record does.
   */
  private readSources(offsets: number[]): Map<number, LogRecord> {
    const found = new Map<number, LogRecord>();
    const sorted = [...offsets].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length; ) {
      const first = sorted[i]!;
      let j = i + 1;
      while (j < sorted.length && sorted[j]! - first < SOURCE_RUN_RECORDS) j++;
      const last = sorted[j - 1]!;
      if (first >= this.log.startOffset) {
        for (const record of this.log.read(first, { maxRecords: last - first + 1, maxBytes: SOURCE_RUN_BYTES })) found.set(record.offset, record);
      }
      i = j;
    }
    return found;
  }

  /** The event body to copy for an entry; null when retention removed what it refers to. */
  private copyOf(entry: ScheduleEntry, read: LogRecord | null): { eventBody: Uint8Array; root: number; subscription: string } | null {
    const source = read ?? this.readRecord(entry.source);
    if (!source) return null;
    if (recordKind(source.attributes) === RecordKind.SCHEDULED) return { eventBody: source.body, root: entry.source, subscription: '' };
    const header = decodeScheduleHeader(source.body);
    // Markers written since defers carry their event; older ones point at it.
    if (header.bodyStart < source.body.byteLength) return { eventBody: source.body.subarray(header.bodyStart), root: header.eventOffset, subscription: header.subscription };
    const event = this.readRecord(header.eventOffset);
    const body = event && eventBodyOf(event.attributes, event.body);
    if (!body) return null;
    return { eventBody: body.body, root: header.eventOffset, subscription: header.subscription };
  }

  private readRecord(offset: number): LogRecord | null {
    try {
      const [record] = this.log.read(offset, { maxRecords: 1 });
      if (record && record.offset === offset) return record;
    } catch (error) {
      if (!(error instanceof StorageError && error.code === 'OFFSET_OUT_OF_RANGE')) throw error;
    }
    this.onError(new EngineError('NOT_FOUND', `a scheduled delivery refers to offset ${offset}, which retention removed; it is dropped`));
    return null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.chain;
    await this.index.close();
  }
}
