import { IndexImage } from './index-image.js';

/**
 * Sparse offset index of one segment, in the style of Kafka's OffsetIndex.
 *
 * Entry (8 bytes, little-endian): u32 relative offset (offset - segment base), u32 byte position of
 * that record in the segment's .log file. One entry is added every `indexIntervalBytes` of log, and
 * one for the last record when the segment is sealed. Entries are strictly increasing in both fields.
 *
 * Crash semantics: the file is a cache written through without fsync; on open it is checked against
 * the log (sizes, ordering, the final entry) and rebuilt from the log when it does not match.
 */
export const OFFSET_INDEX_ENTRY_BYTES = 8;

export class OffsetIndex extends IndexImage {
  readonly baseOffset: number;

  constructor(path: string, baseOffset: number, maxEntries: number, shared?: SharedArrayBuffer) {
    super(path, OFFSET_INDEX_ENTRY_BYTES, maxEntries, shared);
    this.baseOffset = baseOffset;
  }

  /** A read-only view, in any thread, of an index image shared by its owner (see IndexImage). */
  static attach(shared: SharedArrayBuffer, baseOffset: number): OffsetIndex {
    return new OffsetIndex('', baseOffset, IndexImage.capacityOf(shared, OFFSET_INDEX_ENTRY_BYTES), shared);
  }

  relativeOffsetAt(i: number): number {
    return this.view.getUint32(this.entryPosition(i), true);
  }

  positionAt(i: number): number {
    return this.view.getUint32(this.entryPosition(i) + 4, true);
  }

  offsetAt(i: number): number {
    return this.baseOffset + this.relativeOffsetAt(i);
  }

  append(offset: number, position: number): void {
    if (this.isFull) return; // sparse: a full index only means longer scans
    const count = this.count;
    if (count > 0 && this.offsetAt(count - 1) >= offset) return;
    const at = this.nextEntryPosition();
    this.view.setUint32(at, offset - this.baseOffset, true);
    this.view.setUint32(at + 4, position, true);
    this.publishOne();
  }

  /** Index of the last entry whose offset is <= `offset`, or -1. */
  private floorEntry(offset: number): number {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    const relative = offset - this.baseOffset;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.relativeOffsetAt(mid) <= relative) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }

  /** Where to start scanning for `offset`: the floor entry's offset and position, or the segment start. */
  lookup(offset: number): { offset: number; position: number } {
    const i = this.floorEntry(offset);
    return i < 0 ? { offset: this.baseOffset, position: 0 } : { offset: this.offsetAt(i), position: this.positionAt(i) };
  }

  /** Drop entries at or past `position` (used when the log is truncated there). */
  truncateToPosition(position: number): void {
    let keep = this.count;
    while (keep > 0 && this.positionAt(keep - 1) >= position) keep--;
    this.truncateTo(keep);
  }

  /** Structural check against a segment of `segmentBytes` bytes. */
  isConsistent(segmentBytes: number): boolean {
    let previousOffset = -1;
    let previousPosition = -1;
    for (let i = 0; i < this.count; i++) {
      const relative = this.relativeOffsetAt(i);
      const position = this.positionAt(i);
      if (relative <= previousOffset || position <= previousPosition || position >= segmentBytes) return false;
      previousOffset = relative;
      previousPosition = position;
    }
    return true;
  }
}
