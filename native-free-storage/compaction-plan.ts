import { StorageError } from './errors.js';

/**
 * What a compaction is asked to do, as plain data (it crosses to the compaction worker thread):
 * which adjacent sealed segments to rewrite (two or more are merged into one file), which offsets
 * the caller says may go, and whether to drop records superseded by a newer record of the same key.
 * See docs/storage.md, "Compaction".
 */

/** Half-open range of offsets [from, to). */
export interface DropRange {
  from: number;
  to: number;
}

export interface KeyCompactionPlan {
  /**
   * A tombstone (the key extractor says so) that is the newest record of its key is dropped once its
   * timestamp is below this (ms since the epoch), if no older record of its key is left in the log.
   */
  tombstoneBeforeTimestamp: number;
  /** Bound on the distinct keys tracked in memory (default 1,000,000). */
  maxKeys?: number;
  /** Bound on the memory of the key map, estimated from the keys' lengths (default 64 MiB). */
  maxKeyBytes?: number;
}

export interface CompactionPlan {
  /** Base offsets of one or more adjacent sealed segments, ascending. More than one are merged. */
  segments: number[];
  /** Offsets to remove: sorted, non-overlapping half-open ranges (parts outside the segments are ignored). */
  dropRanges?: DropRange[];
  /** Drop records superseded by a newer record with the same compaction key (Kafka-style). */
  keyCompaction?: KeyCompactionPlan;
}

export interface NormalizedCompactionPlan {
  segments: number[];
  dropRanges: DropRange[];
  keyCompaction: Required<KeyCompactionPlan> | null;
}

/** One segment as the log saw it when the compaction was prepared. */
export interface SegmentSnapshot {
  /** The log's identity of the segment object: an install checks the same segments are still there. */
  id: number;
  baseOffset: number;
  /** The offset after the segment's range (the next segment's base offset). */
  endOffset: number;
  /** Bytes to read: the whole file for a sealed segment, the durable prefix for the active one. */
  sizeBytes: number;
  logPath: string;
}

/**
 * Everything the rewrite needs, serializable: produced by `Log.prepareCompaction`, run by
 * `rewriteSegments` (in the compaction worker), installed by `Log.installCompaction`.
 */
export interface CompactionTask {
  /** 16 hex digits; names the temporary files. */
  taskId: string;
  dir: string;
  plan: NormalizedCompactionPlan;
  /** The segments rewritten into one. */
  group: SegmentSnapshot[];
  /** With key compaction: the segments before the group (checked before a tombstone may go). */
  earlier: SegmentSnapshot[];
  /** With key compaction: the segments after the group, up to the durable end when prepared. */
  later: SegmentSnapshot[];
  segmentBytes: number;
  indexIntervalBytes: number;
}

export const DEFAULT_COMPACTION_IO_BYTES_PER_SECOND = 32 * 2 ** 20;
/**
 * Reads and writes of a compaction go in chunks of this size (default), between these bounds. Small
 * enough that one chunk's write-back (synced as it goes) never queues long ahead of the log's own
 * group-commit fsync on the disk (docs/storage.md, "Running one").
 */
export const DEFAULT_COMPACTION_CHUNK_BYTES = 256 * 1024;
export const MIN_COMPACTION_CHUNK_BYTES = 64 * 1024;
export const MAX_COMPACTION_CHUNK_BYTES = 16 * 2 ** 20;
export const DEFAULT_MAX_KEYS = 1_000_000;
export const DEFAULT_MAX_KEY_BYTES = 64 * 2 ** 20;
const MAX_KEYS_LIMIT = 100_000_000;
/** Byte positions in a segment are u32 and the log keeps them below 2^31 (options.ts). */
export const MAX_SEGMENT_FILE_BYTES = 2 ** 31 - 1;
/** A segment's offsets are stored relative to its base in 32 bits. */
export const MAX_SEGMENT_OFFSET_SPAN = 0xffff_ffff;

function invalid(message: string): StorageError {
  return new StorageError('INVALID_ARGUMENT', `compaction plan: ${message}`);
}

function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Check a plan's shape (not yet against the log) and fill in the defaults. */
export function normalizePlan(plan: CompactionPlan): NormalizedCompactionPlan {
  if (plan === null || typeof plan !== 'object') throw invalid('must be an object');
  const { segments, dropRanges = [], keyCompaction } = plan;
  if (!Array.isArray(segments) || segments.length === 0) throw invalid('segments must be a non-empty array of base offsets');
  segments.forEach((base, i) => {
    if (!isOffset(base)) throw invalid(`segments[${i}] is not an offset`);
    if (i > 0 && base <= segments[i - 1]!) throw invalid('segments must be ascending');
  });
  if (!Array.isArray(dropRanges)) throw invalid('dropRanges must be an array');
  const ranges: DropRange[] = dropRanges.map((range, i) => {
    if (range === null || typeof range !== 'object' || !isOffset(range.from) || !isOffset(range.to) || range.from >= range.to) {
      throw invalid(`dropRanges[${i}] must be { from, to } offsets with from < to`);
    }
    if (i > 0 && range.from < dropRanges[i - 1]!.to) throw invalid('dropRanges must be sorted and must not overlap');
    return { from: range.from, to: range.to };
  });
  let keys: Required<KeyCompactionPlan> | null = null;
  if (keyCompaction !== undefined && keyCompaction !== null) {
    const { tombstoneBeforeTimestamp, maxKeys = DEFAULT_MAX_KEYS, maxKeyBytes = DEFAULT_MAX_KEY_BYTES } = keyCompaction;
    if (typeof tombstoneBeforeTimestamp !== 'number' || Number.isNaN(tombstoneBeforeTimestamp)) {
      throw invalid('keyCompaction.tombstoneBeforeTimestamp must be a number of ms since the epoch');
    }
    if (!Number.isSafeInteger(maxKeys) || maxKeys <= 0 || maxKeys > MAX_KEYS_LIMIT) throw invalid(`keyCompaction.maxKeys must be 1..${MAX_KEYS_LIMIT}`);
    if (!Number.isSafeInteger(maxKeyBytes) || maxKeyBytes <= 0) throw invalid('keyCompaction.maxKeyBytes must be a positive integer');
    keys = { tombstoneBeforeTimestamp, maxKeys, maxKeyBytes };
  }
  return { segments: [...segments], dropRanges: ranges, keyCompaction: keys };
}

/** Answers "is this offset in a drop range?" for offsets asked in ascending order, in O(1) amortized. */
export class DropRangeCursor {
  private next = 0;

  constructor(private readonly ranges: readonly DropRange[]) {}

  covers(offset: number): boolean {
    const ranges = this.ranges;
    while (this.next < ranges.length && ranges[this.next]!.to <= offset) this.next++;
    return this.next < ranges.length && ranges[this.next]!.from <= offset;
  }
}

/** Clamp a chunk size option to its bounds. */
export function resolveChunkBytes(chunkBytes: number | undefined): number {
  const value = chunkBytes ?? DEFAULT_COMPACTION_CHUNK_BYTES;
  if (!Number.isSafeInteger(value) || value < MIN_COMPACTION_CHUNK_BYTES || value > MAX_COMPACTION_CHUNK_BYTES) {
    throw new StorageError('INVALID_ARGUMENT', `compaction chunkBytes must be an integer in ${MIN_COMPACTION_CHUNK_BYTES}..${MAX_COMPACTION_CHUNK_BYTES}, got ${value}`);
  }
  return value;
}
