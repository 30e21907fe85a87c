import path from 'node:path';
import { pack, unpack } from 'msgpackr';
import fs from 'node:fs';
import { Log, writeFileAtomic, type FsyncPolicy } from '../../../native-free-storage/index.js';
import type { DeadLetter } from './subscription-state.js';

/** A dead letter of one subscription in one shard. */
export interface DeadLetterInfo {
  offset: number;
  reason: string;
  attempts: number;
  /** When it was dead-lettered (ms). */
  at: number;
}

/** One entry of the dead-letter journal. */
interface Entry {
  /** d: dead-lettered; r: replayed into the subscription; f: a replayed event left it again. */
  k: 'd' | 'r' | 'f';
  s: string;
  o: number[];
  r?: string;
  a?: number[];
  t: number;
}

/** Journal entries after which the journal is folded into a snapshot. */
const COMPACT_AFTER_ENTRIES = 10_000;
const SNAPSHOT_FILE = 'dead-letters.json';

interface Snapshot {
  journalNext: number;
  dead: Record<string, DeadLetterInfo[]>;
  replaying: Record<string, number[]>;
}

/** Dead letters listed per subscription and shard at most; the oldest are forgotten first. */
export const MAX_DEAD_LETTERS_LISTED = 100_000;

/**
 * The dead letters of a shard's subscriptions: events that reached maxDeliveries or were discarded,
 * with reason and attempts, until replayed. A journal (our own log, same fsync policy) records each
 * change; opening loads the last snapshot and replays the journal after it. Replayed events are
 * tracked until they leave the subscription again, so a restart puts back the ones still owed.
 */
export class DeadLetterStore {
  private readonly dead = new Map<string, Map<number, DeadLetterInfo>>();
  private readonly replaying = new Map<string, Set<number>>();

  private writtenSinceSnapshot = 0;
  private compacting = false;

  private constructor(
    private readonly journal: Log,
    private readonly snapshotFile: string,
    private readonly onError: (error: unknown) => void,
  ) {}

  static async open(dir: string, fsync: FsyncPolicy, fsyncIntervalMs: number, onError: (error: unknown) => void): Promise<DeadLetterStore> {
    // Small segments: whole segments are what a snapshot lets go of.
    const journal = await Log.open(path.join(dir, 'dead-letters'), { fsync, fsyncIntervalMs, segmentBytes: 1024 * 1024 });
    const store = new DeadLetterStore(journal, path.join(dir, SNAPSHOT_FILE), onError);
    let from = journal.startOffset;
    if (fs.existsSync(store.snapshotFile)) {
      const snapshot = JSON.parse(fs.readFileSync(store.snapshotFile, 'utf8')) as Snapshot;
      for (const [subscription, letters] of Object.entries(snapshot.dead)) {
        store.dead.set(subscription, new Map(letters.map((letter) => [letter.offset, letter])));
      }
      for (const [subscription, offsets] of Object.entries(snapshot.replaying)) store.replaying.set(subscription, new Set(offsets));
      from = Math.max(from, snapshot.journalNext);
    }
    for (const record of journal.records(from)) store.apply(unpack(record.body) as Entry);
    return store;
  }

  /** Replayed events not yet done, per subscription: to put back after a restart. */
  owed(): Map<string, number[]> {
    return new Map([...this.replaying].map(([subscription, offsets]) => [subscription, [...offsets]]));
  }

  record(subscription: string, letters: readonly DeadLetter[], nowMs: number): void {
    if (letters.length === 0) return;
    // One entry per reason keeps entries small and the common case (one reason per batch) one entry.
    const byReason = new Map<string, DeadLetter[]>();
    for (const letter of letters) {
      const group = byReason.get(letter.reason);
      if (group) group.push(letter);
      else byReason.set(letter.reason, [letter]);
    }
    for (const [reason, group] of byReason) {
      this.write({ k: 'd', s: subscription, o: group.map((l) => l.offset), r: reason, a: group.map((l) => l.attempts), t: nowMs });
    }
  }

  markReplayed(subscription: string, offsets: readonly number[], nowMs: number): void {
    if (offsets.length > 0) this.write({ k: 'r', s: subscription, o: [...offsets], t: nowMs });
  }

  markFinished(subscription: string, offsets: readonly number[], nowMs: number): void {
    if (offsets.length > 0) this.write({ k: 'f', s: subscription, o: [...offsets], t: nowMs });
  }

  /** Dead letters of a subscription by offset, from `afterOffset` (exclusive), at most `limit`. */
  list(subscription: string, limit: number, afterOffset = -1): DeadLetterInfo[] {
    const letters = [...(this.dead.get(subscription)?.values() ?? [])].filter((l) => l.offset > afterOffset);
    letters.sort((a, b) => a.offset - b.offset);
    return letters.slice(0, limit);
  }

  /**
   * Offsets compaction must keep: every dead letter of every subscription dead-lettered after
   * `keepSince` (ms; all of them when null), and every replay still owed. Ascending, no repeats.
   */
  keptOffsets(keepSince: number | null): number[] {
    const kept = new Set<number>();
    for (const letters of this.dead.values()) for (const letter of letters.values()) if (keepSince === null || letter.at > keepSince) kept.add(letter.offset);
    for (const offsets of this.replaying.values()) for (const offset of offsets) kept.add(offset);
    return [...kept].sort((a, b) => a - b);
  }

  has(subscription: string, offset: number): boolean {
    return this.dead.get(subscription)?.has(offset) ?? false;
  }

  close(): Promise<void> {
    return this.journal.close();
  }

  private write(entry: Entry): void {
    this.apply(entry);
    // Not awaited: like acks, a lost entry after a crash costs a redelivery or a stale listing, never an event.
    this.journal.append([{ body: pack(entry) }]).catch(this.onError);
    if (++this.writtenSinceSnapshot >= COMPACT_AFTER_ENTRIES && !this.compacting) void this.compact();
  }

  /**
   * Fold the journal into a snapshot of the current letters and owed replays, then delete the
   * journal segments it covers, so the journal's size follows the number of dead letters, not of
   * everything that ever happened.
   */
  private async compact(): Promise<void> {
    this.compacting = true;
    try {
      await this.journal.flush();
      // Collected in the same synchronous step as journalNext: the snapshot covers exactly the entries below it.
      const snapshot: Snapshot = { journalNext: this.journal.nextOffset, dead: {}, replaying: {} };
      for (const [subscription, letters] of this.dead) snapshot.dead[subscription] = [...letters.values()];
      for (const [subscription, offsets] of this.replaying) snapshot.replaying[subscription] = [...offsets];
      this.writtenSinceSnapshot = 0;
      writeFileAtomic(this.snapshotFile, JSON.stringify(snapshot));
      this.journal.deleteBefore(snapshot.journalNext);
    } catch (error) {
      this.onError(error);
    } finally {
      this.compacting = false;
    }
  }

  private apply(entry: Entry): void {
    let letters = this.dead.get(entry.s);
    let replaying = this.replaying.get(entry.s);
    entry.o.forEach((offset, i) => {
      if (entry.k === 'd') {
        replaying?.delete(offset);
        if (!letters) this.dead.set(entry.s, (letters = new Map()));
        letters.set(offset, { offset, reason: entry.r ?? '', attempts: entry.a?.[i] ?? 0, at: entry.t });
        if (letters.size > MAX_DEAD_LETTERS_LISTED) letters.delete(letters.keys().next().value as number);
      } else if (entry.k === 'r') {
        letters?.delete(offset);
        if (!replaying) this.replaying.set(entry.s, (replaying = new Set()));
        replaying.add(offset);
      } else {
        replaying?.delete(offset);
      }
    });
  }
}
