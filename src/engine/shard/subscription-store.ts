import fs from 'node:fs';
import path from 'node:path';
import { Log, writeFileAtomic, writeFileAtomicAsync } from '../../../native-free-storage/index.js';
import type { FsyncPolicy } from '../../../native-free-storage/index.js';
import type { SubscriptionSpec } from '../subscription-spec.js';
import { OffsetRangeSet } from './offset-range-set.js';
import { decodeDoneEntry, encodeDoneEntry, type DoneEntry } from './done-entry.js';

export type { DoneEntry } from './done-entry.js';

/** A subscription's durable position in one shard. */
export interface Cursor {
  /** Every matching event below this offset is done (acked or dead-lettered). */
  commit: number;
  /** Done offsets at or above `commit`, and done lane entries (by lane key) at or above their lane's commit. */
  done: OffsetRangeSet;
  /** Per priority lane read so far: every wanted entry below this position is done. */
  lanes: Record<string, number>;
}

/** A subscription as stored in a shard: its spec and where it started reading in this shard. */
export interface StoredSubscription {
  spec: SubscriptionSpec;
  startOffset: number;
  /** Delivery paused by an operator (absent in files written before pausing existed). */
  paused?: boolean;
}

interface CursorSnapshot {
  v: 1;
  /** Journal entries below this offset are folded into the snapshot. */
  journalNext: number;
  cursors: Record<string, { commit: number; done: Array<[number, number]>; lanes?: Record<string, number> }>;
}

const SPECS_FILE = 'subscriptions.json';
const CURSORS_FILE = 'cursors.json';
const JOURNAL_DIR = 'acks';
const JOURNAL_SEGMENT_BYTES = 4 * 1024 * 1024;

/**
 * Durable state of a shard's subscriptions:
 * - `subscriptions.json`: the specs, replaced atomically when one is created or removed (rare);
 * - `acks/`: a journal (our own log, same fsync policy as events) of offsets that became done, one
 *   entry per settle batch, so a crash redelivers only what was not acked;
 * - `cursors.json`: a periodic snapshot of every cursor, after which the journal's older segments
 *   are deleted, so recovery replays a bounded tail.
 */
export class SubscriptionStore {
  private constructor(
    private readonly dir: string,
    private readonly journal: Log,
  ) {}

  static async open(dir: string, fsync: FsyncPolicy, fsyncIntervalMs: number) {
    fs.mkdirSync(dir, { recursive: true });
    const journal = await Log.open(path.join(dir, JOURNAL_DIR), { fsync, fsyncIntervalMs, segmentBytes: JOURNAL_SEGMENT_BYTES });
    const store = new SubscriptionStore(dir, journal);
    const subscriptions = store.readSubscriptions();
    const cursors = store.recoverCursors(subscriptions);
    return { store, subscriptions, cursors };
  }

  private readSubscriptions(): StoredSubscription[] {
    const file = path.join(this.dir, SPECS_FILE);
    if (!fs.existsSync(file)) return [];
    return JSON.parse(fs.readFileSync(file, 'utf8')) as StoredSubscription[];
  }

  /** Cursors from the snapshot, then the journal's later entries; a subscription never snapshotted starts at its start offset. */
  private recoverCursors(subscriptions: StoredSubscription[]): Map<string, Cursor> {
    const cursors = new Map<string, Cursor>();
    const startOffsets = new Map(subscriptions.map((s) => [s.spec.key, s.startOffset]));
    let journalNext = this.journal.startOffset;
    const file = path.join(this.dir, CURSORS_FILE);
    if (fs.existsSync(file)) {
      const snapshot = JSON.parse(fs.readFileSync(file, 'utf8')) as CursorSnapshot;
      journalNext = Math.max(snapshot.journalNext, this.journal.startOffset);
      for (const [key, cursor] of Object.entries(snapshot.cursors)) {
        cursors.set(key, { commit: cursor.commit, done: OffsetRangeSet.fromJSON(cursor.done), lanes: cursor.lanes ?? {} });
      }
    }
    for (const record of this.journal.records(journalNext)) {
      const entry = decodeDoneEntry(record.body);
      let cursor = cursors.get(entry.s);
      if (!cursor) {
        const start = startOffsets.get(entry.s);
        if (start === undefined) continue; // a subscription that no longer exists
        cursor = { commit: start, done: new OffsetRangeSet(), lanes: {} };
        cursors.set(entry.s, cursor);
      }
      // Lane keys lie above every offset: they are kept (the next snapshot trims them).
      for (const key of entry.o) if (key >= cursor.commit) cursor.done.add(key);
    }
    return cursors;
  }

  /** Replace the stored subscriptions (atomically: temp file, fsync, rename). */
  saveSubscriptions(subscriptions: StoredSubscription[]): void {
    writeFileAtomic(path.join(this.dir, SPECS_FILE), JSON.stringify(subscriptions));
  }

  /** Journal offsets that became done. Resolves once durable under the fsync policy. */
  recordDone(entries: DoneEntry[]): Promise<unknown> {
    if (entries.length === 0) return Promise.resolve();
    return this.journal.append(entries.map((entry) => ({ body: encodeDoneEntry(entry) })));
  }

  /** Write every cursor and drop the journal segments the snapshot covers. */
  async snapshot(collect: () => Map<string, Cursor>): Promise<void> {
    await this.journal.flush();
    // Collected after the flush, in the same synchronous step as journalNext: the snapshot then
    // covers exactly the journal entries below journalNext.
    const cursors = collect();
    const snapshot: CursorSnapshot = { v: 1, journalNext: this.journal.nextOffset, cursors: {} };
    for (const [key, cursor] of cursors) snapshot.cursors[key] = { commit: cursor.commit, done: cursor.done.toJSON(), lanes: cursor.lanes };
    // Off the shard's thread: a synchronous write with its two fsyncs stalled every delivery behind it.
    await writeFileAtomicAsync(path.join(this.dir, CURSORS_FILE), JSON.stringify(snapshot));
    this.journal.deleteBefore(snapshot.journalNext);
  }

  get journalBytes(): number {
    return this.journal.sizeBytes;
  }

  async close(): Promise<void> {
    await this.journal.close();
  }
}
