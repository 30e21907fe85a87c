import { IndexImage } from './index-image.js';

/**
 * Sparse time index of one segment, in the style of Kafka's TimeIndex.
 *
 * Entry (12 bytes, little-endian): u64 timestamp in ms (as two u32, low first), u32 relative offset of
 * the record with that timestamp. Entries are added at the same records as the offset index, and one
 * for the last record when the segment is sealed, so a sealed segment's last entry gives its newest
 * timestamp. Timestamps within a log are non-decreasing, so entries are sorted by both fields.
 *
 * Crash semantics: as for the offset index, a cache rebuilt from the log when inconsistent.
 */
export const TIME_INDEX_ENTRY_BYTES = 12;
const TWO_32 = 0x1_0000_0000;

export class TimeIndex extends IndexImage {
  readonly baseOffset: number;

  constructor(path: string, baseOffset: number, maxEntries: number, shared?: SharedArrayBuffer) {
    super(path, TIME_INDEX_ENTRY_BYTES, maxEntries, shared);
    this.baseOffset = baseOffset;
  }

  /** A read-only view, in any thread, of an index image shared by its owner (see IndexImage). */
  static attach(shared: SharedArrayBuffer, baseOffset: number): TimeIndex {
    return new TimeIndex('', baseOffset, IndexImage.capacityOf(shared, TIME_INDEX_ENTRY_BYTES), shared);
  }

  timestampAt(i: number): number {
    const at = this.entryPosition(i);
    return this.view.getUint32(at, true) + this.view.getUint32(at + 4, true) * TWO_32;
  }

  offsetAt(i: number): number {
    return this.baseOffset + this.view.getUint32(this.entryPosition(i) + 8, true);
  }

  append(timestamp: number, offset: number): void {
    if (this.isFull) return;
    const count = this.count;
    if (count > 0 && this.offsetAt(count - 1) >= offset) return;
    const at = this.nextEntryPosition();
    this.view.setUint32(at, timestamp % TWO_32, true);
    this.view.setUint32(at + 4, Math.floor(timestamp / TWO_32), true);
    this.view.setUint32(at + 8, offset - this.baseOffset, true);
    this.publishOne();
  }

  /**
   * The offset of the last entry whose timestamp is strictly below `timestamp`, or null. Every record
   * before that entry is older than `timestamp` too, so a search for the first record at or after
   * `timestamp` can start scanning there.
   */
  lastOffsetBefore(timestamp: number): number | null {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.timestampAt(mid) < timestamp) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found < 0 ? null : this.offsetAt(found);
  }

  /** Drop entries for offsets at or past `offset`. */
  truncateToOffset(offset: number): void {
    let keep = this.count;
    while (keep > 0 && this.offsetAt(keep - 1) >= offset) keep--;
    this.truncateTo(keep);
  }

  /** Structural check: sorted by timestamp and offset, offsets below `nextOffset`. */
  isConsistent(nextOffset: number): boolean {
    let previousTimestamp = -1;
    let previousOffset = -1;
    for (let i = 0; i < this.count; i++) {
      const timestamp = this.timestampAt(i);
      const offset = this.offsetAt(i);
      if (timestamp < previousTimestamp || offset <= previousOffset || offset >= nextOffset) return false;
      previousTimestamp = timestamp;
      previousOffset = offset;
    }
    return true;
  }
}
