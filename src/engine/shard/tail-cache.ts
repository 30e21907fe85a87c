/**
 * The shard's most recently stored records, kept in memory so that subscriptions keeping up with
 * the head are fed without reading their own writes back from the log. Bounded by record count
 * (the ring's size) and by bytes; anything older is read from the log as usual.
 *
 * A ring of columns rather than an object per record: a record is a slot, and its body is copied
 * into the current chunk, one of a few fixed buffers the cache recycles as its oldest records go
 * (so caching neither allocates per record nor keeps the publish batches it came in: those go back
 * to the engine for reuse). With each record the cache keeps what routing needs (type, sender,
 * priority, expiry), so a subscription at the head reads no body to choose it. A body larger than a
 * quarter chunk is not cached: the run restarts after it.
 */
const CHUNK_BYTES = 1024 * 1024;

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
  /** The chunk records are copied into now, and how much of it is used. */
  private chunk: Uint8Array | null = null;
  private chunkUsed = 0;
  /** Chunks holding cached records (oldest first), besides `chunk`; and emptied ones for reuse. */
  private readonly full: Uint8Array[] = [];
  private readonly free: Uint8Array[] = [];
  private readonly maxChunks: number;

  constructor(
    private readonly maxEvents: number,
    maxBytes: number,
  ) {
    this.maxChunks = Math.max(2, Math.ceil(maxBytes / CHUNK_BYTES));
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
   * Add a durable record, copying its body (bytes [start, end) of `source`). Offsets must continue
   * the cached run; a gap restarts the cache. `type`: its event's type ('' for a record that
   * carries no event); `sender`: the event's sender when known; `mustParse`: routing needs the body
   * read (a key, recipients, or a copy record).
   */
  add(
    offset: number,
    type: string,
    sender: string | null,
    source: Uint8Array,
    start: number,
    end: number,
    attributes: number,
    priority: number,
    mustParse: boolean,
    expiresAt: number,
  ): void {
    if (this.size > 0 && this.first + this.size !== offset) this.clear();
    const length = end - start;
    if (length > CHUNK_BYTES / 4) {
      this.clear(); // not cached: the next record starts a new run
      return;
    }
    // The count bound first: room() may then reuse what the dropped record held.
    if (this.size === this.maxEvents) this.dropOldest();
    const at = this.room(length);
    const chunk = this.chunk!;
    chunk.set(start === 0 && end === source.length ? source : source.subarray(start, end), at);
    if (this.size === 0) this.first = offset;
    this.put(chunk, at, at + length, type, sender, attributes, priority, mustParse, expiresAt);
  }

  /**
   * Copy a run of bodies (bytes [start, end) of `source`, a publish batch whose first record is
   * `firstOffset`) in one go; its records are then added with `addCopied`, in order, their bodies
   * given from the position this answers. Returns where the run
   * starts, or -1 when it is larger than a chunk (add its records one by one then).
   */
  copyRun(firstOffset: number, source: Uint8Array, start: number, end: number): number {
    const length = end - start;
    if (length > CHUNK_BYTES) return -1;
    if (this.size > 0 && this.first + this.size !== firstOffset) this.clear();
    const at = this.room(length);
    this.chunk!.set(start === 0 && end === source.length ? source : source.subarray(start, end), at);
    return at;
  }

  /** Add a record whose body is bytes [start, end) of the run `copyRun` just copied (positions from its answer). */
  addCopied(offset: number, type: string, sender: string | null, start: number, end: number, attributes: number, priority: number, mustParse: boolean, expiresAt: number): void {
    // copyRun restarted the run if it did not continue; within a run offsets follow each other.
    if (this.size > 0 && this.first + this.size !== offset) throw new Error(`tail cache: record ${offset} does not follow ${this.first + this.size - 1}`);
    if (this.size === this.maxEvents) this.dropOldest();
    if (this.size === 0) this.first = offset;
    this.put(this.chunk!, start, end, type, sender, attributes, priority, mustParse, expiresAt);
  }

  private put(chunk: Uint8Array, start: number, end: number, type: string, sender: string | null, attributes: number, priority: number, mustParse: boolean, expiresAt: number): void {
    const slot = (this.head + this.size) % this.maxEvents;
    this.size++;
    this.buffers[slot] = chunk;
    this.starts[slot] = start;
    this.ends[slot] = end;
    this.typeNames[slot] = type;
    this.senderNames[slot] = sender;
    this.kinds[slot] = attributes;
    this.priorityValues[slot] = priority;
    this.parse[slot] = mustParse ? 1 : 0;
    this.expiries[slot] = expiresAt;
  }

  /** Where `length` bytes go in the current chunk: a new one when it is full, dropping the oldest records past the bound. */
  private room(length: number): number {
    if (this.chunk !== null && this.chunkUsed + length <= this.chunk.length) {
      const at = this.chunkUsed;
      this.chunkUsed += length;
      return at;
    }
    if (this.chunk !== null) {
      // The newest record is always in the current chunk: without it, the chunk holds none (the
      // count bound dropped them) and is free at once.
      const newest = this.size > 0 ? this.buffers[(this.head + this.size - 1) % this.maxEvents] : null;
      (newest === this.chunk ? this.full : this.free).push(this.chunk);
    }
    // The oldest chunk goes (with its records) while the bound is reached.
    while (this.full.length >= this.maxChunks && this.size > 0) this.dropOldest();
    this.chunk = this.free.pop() ?? new Uint8Array(CHUNK_BYTES);
    this.chunkUsed = length;
    return 0;
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
    if (this.size === 0) this.chunkUsed = 0;
  }

  clear(): void {
    while (this.size > 0) this.dropOldest();
    this.first = -1;
    this.head = 0;
    this.chunkUsed = 0; // the current chunk holds no record now
  }

  private dropOldest(): void {
    const slot = this.head;
    const chunk = this.buffers[slot]!;
    this.buffers[slot] = null;
    this.senderNames[slot] = null;
    this.head = (this.head + 1) % this.maxEvents;
    this.first++;
    this.size--;
    // The chunk's last record went: it is reused (records fill chunks in order, oldest first).
    const next = this.size > 0 ? this.buffers[this.head] : null;
    if (next !== chunk && this.full[0] === chunk) this.free.push(this.full.shift()!);
  }
}
