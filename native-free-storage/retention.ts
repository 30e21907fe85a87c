import type { Segment } from './segment.js';

export interface RetentionPolicy {
  nowMs: number;
  retentionMs: number | null;
  retentionBytes: number | null;
  /** Whether a segment may go at all (sealed, and its data already durable). */
  deletable: (segment: Segment) => boolean;
}

export interface RetentionResult {
  segmentsDeleted: number;
  bytesDeleted: number;
}

/**
 * Delete whole segments from the front of the log: first those whose newest record is older than
 * `retentionMs`, then the oldest while the log is larger than `retentionBytes`. Only a prefix is ever
 * removed, so the log stays one contiguous range of offsets; the first segment that must stay stops it.
 * Deletes files only; the caller drops the first `segmentsDeleted` segments from its list.
 */
export function applyRetention(segments: readonly Segment[], policy: RetentionPolicy): RetentionResult {
  let total = 0;
  for (const segment of segments) total += segment.size;
  let deleted = 0;
  let bytesDeleted = 0;
  for (const segment of segments) {
    if (segment === segments[segments.length - 1] || !policy.deletable(segment)) break;
    // A sealed segment compaction emptied has nothing left to keep: expired at the front of the log.
    const expired = policy.retentionMs !== null && segment.recordCount > 0 && (segment.size === 0 || segment.lastTimestamp < policy.nowMs - policy.retentionMs);
    const oversized = policy.retentionBytes !== null && total > policy.retentionBytes;
    if (!expired && !oversized) break;
    total -= segment.size;
    bytesDeleted += segment.size;
    segment.delete();
    deleted++;
  }
  return { segmentsDeleted: deleted, bytesDeleted };
}
