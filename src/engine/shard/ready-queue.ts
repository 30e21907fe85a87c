/** What the queue needs of an item: its rank (0 goes first). */
export interface Ranked {
  rank: number;
}

/** What a scan does with each item: leave it and go on, remove it and go on, or leave it and stop. */
export const ScanStep = { Skip: 0, Take: 1, Stop: 2 } as const;
export type ScanStep = (typeof ScanStep)[keyof typeof ScanStep];

/**
 * A subscription's read-ahead: FIFO queues, one per rank (a priority lane or the main scan),
 * scanned lowest rank first. Removal from the middle (an ordered subscription skipping held keys)
 * leaves holes that are squeezed out as they accumulate, so the arrays stay bounded by the count.
 */
export class ReadyQueue<T extends Ranked> {
  private readonly queues: Array<Array<T | null>>;
  private readonly heads: number[];
  private readonly counts: number[];
  private total = 0;

  constructor(ranks: number) {
    this.queues = Array.from({ length: ranks }, () => []);
    this.heads = new Array<number>(ranks).fill(0);
    this.counts = new Array<number>(ranks).fill(0);
  }

  get count(): number {
    return this.total;
  }

  /** Items of rank at most `rank`. */
  countUpTo(rank: number): number {
    let n = 0;
    for (let r = 0; r <= rank; r++) n += this.counts[r]!;
    return n;
  }

  push(item: T): void {
    this.queues[item.rank]!.push(item);
    this.counts[item.rank]!++;
    this.total++;
  }

  /** Visit items lowest rank first, in arrival order within a rank. */
  scan(visit: (item: T) => ScanStep): void {
    for (let rank = 0; rank < this.queues.length; rank++) {
      if (this.counts[rank] === 0) continue;
      const queue = this.queues[rank]!;
      let stop = false;
      for (let i = this.heads[rank]!; i < queue.length; i++) {
        const item = queue[i];
        if (!item) continue;
        const step = visit(item);
        if (step === ScanStep.Take) this.removeAt(rank, i);
        else if (step === ScanStep.Stop) {
          stop = true;
          break;
        }
      }
      this.compact(rank);
      if (stop) return;
    }
  }

  /** Remove every item `matches` accepts; returns them. */
  removeWhere(matches: (item: T) => boolean): T[] {
    const removed: T[] = [];
    this.scan((item) => {
      if (!matches(item)) return ScanStep.Skip;
      removed.push(item);
      return ScanStep.Take;
    });
    return removed;
  }

  /** Remove up to `n` items of rank above `rank`, the highest ranks and latest arrivals first. */
  evictAbove(rank: number, n: number): T[] {
    const evicted: T[] = [];
    for (let r = this.queues.length - 1; r > rank && evicted.length < n; r--) {
      const queue = this.queues[r]!;
      for (let i = queue.length - 1; i >= this.heads[r]! && evicted.length < n; i--) {
        const item = queue[i];
        if (!item) continue;
        evicted.push(item);
        this.removeAt(r, i);
      }
      this.compact(r);
    }
    return evicted;
  }

  clear(): void {
    for (let r = 0; r < this.queues.length; r++) {
      this.queues[r] = [];
      this.heads[r] = 0;
      this.counts[r] = 0;
    }
    this.total = 0;
  }

  private removeAt(rank: number, i: number): void {
    this.queues[rank]![i] = null;
    this.counts[rank]!--;
    this.total--;
  }

  private compact(rank: number): void {
    let queue = this.queues[rank]!;
    let head = this.heads[rank]!;
    while (head < queue.length && queue[head] === null) head++;
    while (queue.length > head && queue[queue.length - 1] === null) queue.pop();
    const count = this.counts[rank]!;
    if (head === queue.length) {
      queue = [];
      head = 0;
    } else if (queue.length - head > 2 * count + 1024) {
      queue = queue.slice(head).filter((item) => item !== null);
      head = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
    this.queues[rank] = queue;
    this.heads[rank] = head;
  }
}
