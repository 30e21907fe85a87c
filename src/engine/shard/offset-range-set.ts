/**
 * A set of offsets kept as sorted, disjoint half-open ranges [start, end). Acks mostly arrive in
 * order, so the set stays a handful of ranges however many offsets it holds; adding at the end is
 * O(1), elsewhere O(ranges).
 */
export class OffsetRangeSet {
  private starts: number[] = [];
  private ends: number[] = [];

  get rangeCount(): number {
    return this.starts.length;
  }

  has(offset: number): boolean {
    const i = this.floor(offset);
    return i >= 0 && offset < this.ends[i]!;
  }

  add(offset: number): void {
    const last = this.starts.length - 1;
    if (last >= 0 && this.ends[last] === offset) {
      this.ends[last] = offset + 1;
      return;
    }
    if (last < 0 || this.ends[last]! < offset) {
      this.starts.push(offset);
      this.ends.push(offset + 1);
      return;
    }
    const i = this.floor(offset);
    if (i >= 0 && offset < this.ends[i]!) return;
    const joinsPrevious = i >= 0 && this.ends[i] === offset;
    const joinsNext = i + 1 < this.starts.length && this.starts[i + 1] === offset + 1;
    if (joinsPrevious && joinsNext) {
      this.ends[i] = this.ends[i + 1]!;
      this.starts.splice(i + 1, 1);
      this.ends.splice(i + 1, 1);
    } else if (joinsPrevious) {
      this.ends[i] = offset + 1;
    } else if (joinsNext) {
      this.starts[i + 1] = offset;
    } else {
      this.starts.splice(i + 1, 0, offset);
      this.ends.splice(i + 1, 0, offset + 1);
    }
  }

  /** Remove one offset (splitting its range if needed). */
  delete(offset: number): void {
    const i = this.floor(offset);
    if (i < 0 || offset >= this.ends[i]!) return;
    const start = this.starts[i]!;
    const end = this.ends[i]!;
    if (start === offset && end === offset + 1) {
      this.starts.splice(i, 1);
      this.ends.splice(i, 1);
    } else if (start === offset) {
      this.starts[i] = offset + 1;
    } else if (end === offset + 1) {
      this.ends[i] = offset;
    } else {
      this.ends[i] = offset;
      this.starts.splice(i + 1, 0, offset + 1);
      this.ends.splice(i + 1, 0, end);
    }
  }

  clear(): void {
    this.starts = [];
    this.ends = [];
  }

  /** Forget every offset below `offset`. */
  dropBelow(offset: number): void {
    let cut = 0;
    while (cut < this.starts.length && this.ends[cut]! <= offset) cut++;
    if (cut > 0) {
      this.starts.splice(0, cut);
      this.ends.splice(0, cut);
    }
    if (this.starts.length > 0 && this.starts[0]! < offset) this.starts[0] = offset;
  }

  /** Forget every offset in [from, to). */
  dropBetween(from: number, to: number): void {
    if (to <= from) return;
    const starts: number[] = [];
    const ends: number[] = [];
    for (let i = 0; i < this.starts.length; i++) {
      const start = this.starts[i]!;
      const end = this.ends[i]!;
      if (end <= from || start >= to) {
        starts.push(start);
        ends.push(end);
        continue;
      }
      if (start < from) {
        starts.push(start);
        ends.push(from);
      }
      if (end > to) {
        starts.push(to);
        ends.push(end);
      }
    }
    this.starts = starts;
    this.ends = ends;
  }

  toJSON(): Array<[number, number]> {
    return this.starts.map((start, i) => [start, this.ends[i]!]);
  }

  static fromJSON(ranges: Array<[number, number]>): OffsetRangeSet {
    const set = new OffsetRangeSet();
    for (const [start, end] of ranges) {
      set.starts.push(start);
      set.ends.push(end);
    }
    return set;
  }

  /** Index of the last range starting at or before `offset`, or -1. */
  private floor(offset: number): number {
    let low = 0;
    let high = this.starts.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.starts[mid]! <= offset) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }
}
