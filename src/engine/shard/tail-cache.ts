/**
 * The shard's most recently stored records, kept in memory so that subscriptions keeping up with
 * the head are fed without reading their own writes back from the log. Bounded by record count
 * (the ring's size) and by bytes; anything older is read from the log as usual.
 *
 * A ring of columns rather than an object per record: a record is a slot, and its body is bytes
 * [start, end) of the buffer it arrived in (a publish batch, shared by the batch's records), so
 * caching a record allocates nothing. With each record the cache keeps what routing it needs
 * (type, sender, priority, expiry), so a subscription at the head reads no body to choose it.
 */
export class TailCache {
  private readonly buffers: Array<Uint8Array | null>;
  private readonly starts: Uint32Array;
  private readonly ends: Uint32Array;
  private readonly typeNames: string[];
  private readonly senderNames: Array<string | null>;
  private readonly kinds: Uint8Array;
  private readonly priorityValues: Uint8Array;
  private readonly parse: Uint8Array;
  private readonly expiries: Float64Array;
  /** Offset of the oldest cached record (-1 when empty) and its slot. */
  private first = -1;
  private head = 0;
  private size = 0;
  private bytes = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {
    this.buffers = new Array<Uint8Array | null>(maxEvents).fill(null);
    this.starts = new Uint32Array(maxEvents);
    this.ends = new Uint32Array(maxEvents);
    this.typeNames = new Array<string>(maxEvents).fill('');
    this.senderNames = new Array<string | null>(maxEvents).fill(null);
    this.kinds = new Uint8Array(maxEvents);
    this.priorityValues = new Uint8Array(maxEvents);
    this.parse = new Uint8Array(maxEvents);
    this.expiries = new Float64Array(maxEvents);
  }

  /**
   * Add a durable record (offsets must continue the cached run; a gap restarts the cache). `type`:
   * its event's type ('' for a record that carries no event); `sender`: the event's sender when
   * known; `mustParse`: routing needs the body read (a key, recipients, or a copy record).
   */
  add(
    offset: number,
    type: string,
    sender: string | null,
    buffer: Uint8Array,
    start: number,
    end: number,
    attributes: number,
    priority: number,
    mustParse: boolean,
    expiresAt: number,
  ): void {
    if (this.size > 0 && this.first + this.size !== offset) this.clear();
    if (this.size === 0) this.first = offset;
    if (this.size === this.maxEvents) this.dropOldest();
    const slot = (this.head + this.size) % this.maxEvents;
    this.size++;
    this.buffers[slot] = buffer;
    this.starts[slot] = start;
    this.ends[slot] = end;
    this.typeNames[slot] = type;
    this.senderNames[slot] = sender;
    this.kinds[slot] = attributes;
    this.priorityValues[slot] = priority;
    this.parse[slot] = mustParse ? 1 : 0;
    this.expiries[slot] = expiresAt;
    this.bytes += end - start;
    while (this.bytes > this.maxBytes && this.size > 1) this.dropOldest();
  }

  /** The slot of `offset`, or -1 when it is not cached. */
  slotOf(offset: number): number {
    const i = offset - this.first;
    return i >= 0 && i < this.size ? (this.head + i) % this.maxEvents : -1;
  }

  /** The offset after the newest cached record (the first offset when empty). */
  get endOffset(): number {
    return this.first + this.size;
  }

  buffer(slot: number): Uint8Array {
    return this.buffers[slot]!;
  }

  start(slot: number): number {
    return this.starts[slot]!;
  }

  end(slot: number): number {
    return this.ends[slot]!;
  }

  type(slot: number): string {
    return this.typeNames[slot]!;
  }

  sender(slot: number): string | null {
    return this.senderNames[slot]!;
  }

  attributes(slot: number): number {
    return this.kinds[slot]!;
  }

  priority(slot: number): number {
    return this.priorityValues[slot]!;
  }

  mustParse(slot: number): boolean {
    return this.parse[slot] === 1;
  }

  expiresAt(slot: number): number {
    return this.expiries[slot]!;
  }

  /** Forget cached records below `offset` (compaction removed some of them from the log). */
  dropBelow(offset: number): void {
    while (this.size > 0 && this.first < offset) this.dropOldest();
  }

  clear(): void {
    while (this.size > 0) this.dropOldest();
    this.first = -1;
    this.head = 0;
  }

  private dropOldest(): void {
    const slot = this.head;
    this.bytes -= this.ends[slot]! - this.starts[slot]!;
    this.buffers[slot] = null; // the batch buffer is freed once no slot holds it
    this.senderNames[slot] = null;
    this.head = (this.head + 1) % this.maxEvents;
    this.first++;
    this.size--;
  }
}
