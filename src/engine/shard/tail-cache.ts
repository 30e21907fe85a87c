/**
 * The shard's most recently stored records, kept in memory so that subscriptions keeping up with
 * the head are fed without reading their own writes back from the log. Bounded by event count and
 * bytes; anything older is read from the log as usual.
 */
export interface CachedEvent {
  offset: number;
  /** The event's type ('' for a record that carries no event). */
  type: string;
  /** The record's body, as in the log. */
  body: Uint8Array;
  /** The record's attributes (its RecordKind). */
  attributes: number;
}

export class TailCache {
  private events: CachedEvent[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  /** Add durable events (offsets must continue the cached run; a gap restarts the cache). */
  add(offset: number, type: string, body: Uint8Array, attributes: number): void {
    const last = this.events[this.events.length - 1];
    if (last && last.offset + 1 !== offset) this.clear();
    this.events.push({ offset, type, body, attributes });
    this.bytes += body.length;
    while (this.events.length - this.head > this.maxEvents || this.bytes > this.maxBytes) {
      this.bytes -= this.events[this.head++]!.body.length;
    }
    if (this.head > 4096 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of `offset` in the cache, or -1 when it is not cached. */
  indexOf(offset: number): number {
    if (this.head >= this.events.length) return -1;
    const first = this.events[this.head]!.offset;
    const i = this.head + (offset - first);
    return offset >= first && i < this.events.length ? i : -1;
  }

  at(i: number): CachedEvent | undefined {
    return this.events[i];
  }

  get end(): number {
    return this.events.length;
  }

  /** Forget cached events below `offset` (compaction removed some of them from the log). */
  dropBelow(offset: number): void {
    while (this.head < this.events.length && this.events[this.head]!.offset < offset) this.bytes -= this.events[this.head++]!.body.length;
  }

  clear(): void {
    this.events = [];
    this.head = 0;
    this.bytes = 0;
  }
}
