import type { LogRecord } from './record.js';

/**
 * The compaction key of a record, as the engine defines it. Storage knows nothing about bodies:
 * the caller passes a `KeyExtractor`; a record it returns null for is never dropped by key.
 */
export interface CompactionKey {
  key: string;
  /** The record deletes its key (an empty payload); it goes once old enough and nothing older is left. */
  tombstone: boolean;
}

export type KeyExtractor = (record: LogRecord) => CompactionKey | null;

/** What key compaction decided for one record of the rewritten segments. */
export type KeyDecision = 'keep' | 'superseded' | 'expired-tombstone';

interface KeyEntry {
  /** Offset of the newest record with this key seen so far. */
  latest: number;
  /** Whether that newest record is a tombstone of the rewritten segments old enough to go. */
  expiredTombstone: boolean;
}

/** Rough memory of one entry beyond its key's characters: Map slot, entry object, string header. */
const ENTRY_OVERHEAD_BYTES = 96;

/**
 * The key map of one compaction (Kafka's "offset map"): for each key met in the segments being
 * rewritten, the offset of its newest record up to the log's durable end. Bounded by a number of keys
 * and an estimate of their memory: once full, keys met later in the segments are not tracked and their
 * records are kept (`coveredBefore` says from which offset on), while the keys already tracked are still
 * followed to the end, so every decision the map makes is exact.
 */
export class KeyMap {
  private readonly entries = new Map<string, KeyEntry>();
  private estimatedBytes = 0;
  private candidates: Set<string> | null = null;
  /** Offset of the first record whose key could not be tracked (null: the map covered everything). */
  coveredBefore: number | null = null;

  constructor(
    private readonly maxKeys: number,
    private readonly maxKeyBytes: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.estimatedBytes;
  }

  /** A record of the segments being rewritten, in offset order; `expiredTombstone`: a tombstone old enough to go. */
  noteRewritten(key: CompactionKey, offset: number, expiredTombstone: boolean): void {
    let entry = this.entries.get(key.key);
    if (!entry) {
      const cost = key.key.length * 2 + ENTRY_OVERHEAD_BYTES;
      if (this.entries.size >= this.maxKeys || this.estimatedBytes + cost > this.maxKeyBytes) {
        this.coveredBefore ??= offset;
        return;
      }
      this.estimatedBytes += cost;
      entry = { latest: offset, expiredTombstone: false };
      this.entries.set(key.key, entry);
    }
    entry.latest = offset;
    entry.expiredTombstone = expiredTombstone;
  }

  /** A record after the rewritten segments: it supersedes every earlier record of its key. */
  noteLater(key: CompactionKey, offset: number): void {
    const entry = this.entries.get(key.key);
    if (entry) {
      entry.latest = offset;
      entry.expiredTombstone = false;
    }
  }

  /**
   * Keys whose newest record is an expired tombstone in the rewritten segments. Each may go only if no
   * older record of its key is left before the segments (the caller checks with `olderRecordFound`):
   * dropping a tombstone while an older value survives would bring that value back.
   */
  tombstoneCandidates(): ReadonlySet<string> {
    if (!this.candidates) {
      this.candidates = new Set();
      for (const [key, entry] of this.entries) {
        if (entry.expiredTombstone) this.candidates.add(key);
      }
    }
    return this.candidates;
  }

  /** A record of `key` older than its tombstone stays in the log (before the segments, or kept in them): so does the tombstone. */
  olderRecordFound(key: string): void {
    this.tombstoneCandidates();
    this.candidates!.delete(key);
  }

  decide(key: CompactionKey, offset: number): KeyDecision {
    const entry = this.entries.get(key.key);
    if (!entry) return 'keep';
    if (entry.latest > offset) return 'superseded';
    if (entry.latest === offset && entry.expiredTombstone && this.tombstoneCandidates().has(key.key)) return 'expired-tombstone';
    return 'keep';
  }
}
