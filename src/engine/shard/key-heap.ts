/** Key order of schedule entries: due time, then source offset. */
export const less = (d1: number, s1: number, d2: number, s2: number): boolean => d1 < d2 || (d1 === d2 && s1 < s2);

/**
 * Growable min-heap of (dueAt, source) keys in parallel Float64Arrays: no object per entry. Also
 * serves as a bucket's write buffer, where the order is irrelevant but the compact storage is not.
 */
export class KeyHeap {
  due: Float64Array;
  src: Float64Array;
  size = 0;

  constructor(capacity = 64) {
    this.due = new Float64Array(capacity);
    this.src = new Float64Array(capacity);
  }

  push(d: number, s: number): void {
    if (this.size === this.due.length) this.resize(this.size * 2);
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(d, s, this.due[p]!, this.src[p]!)) break;
      this.due[i] = this.due[p]!;
      this.src[i] = this.src[p]!;
      i = p;
    }
    this.due[i] = d;
    this.src[i] = s;
  }

  /** Remove the minimum (read it first from due[0], src[0]). */
  pop(): void {
    const n = --this.size;
    const d = this.due[n]!;
    const s = this.src[n]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && less(this.due[c + 1]!, this.src[c + 1]!, this.due[c]!, this.src[c]!)) c++;
      if (!less(this.due[c]!, this.src[c]!, d, s)) break;
      this.due[i] = this.due[c]!;
      this.src[i] = this.src[c]!;
      i = c;
    }
    this.due[i] = d;
    this.src[i] = s;
    // Give memory back after a burst, so the heap's footprint follows what it holds.
    if (this.due.length > 1024 && n < this.due.length / 4) this.resize(this.due.length / 2);
  }

  private resize(capacity: number): void {
    const due = new Float64Array(capacity);
    const src = new Float64Array(capacity);
    due.set(this.due.subarray(0, this.size));
    src.set(this.src.subarray(0, this.size));
    this.due = due;
    this.src = src;
  }
}
