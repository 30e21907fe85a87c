import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomicAsync } from '../../../native-free-storage/index.js';
import { EngineError } from '../errors.js';
import { KeyHeap, less } from './key-heap.js';

/** One scheduled delivery: when it is due and the main-log offset of the record it derives from. */
export interface ScheduleEntry {
  dueAt: number;
  source: number;
}

/** Tuning of a ScheduleIndex. */
export interface ScheduleIndexOptions {
  /** Width of one time bucket (one file per bucket); default 1000. Fixed per directory once checkpointed. */
  bucketMs: number;
  /** Entries in buckets starting before now + lookaheadMs go straight to memory; default 1000. */
  lookaheadMs: number;
  /** Pending file writes are flushed when more than this many are buffered; default 65536. */
  maxBufferedEntries: number;
  /** Near buckets load ahead of their time while memory holds fewer entries than this (default 65536). */
  preloadMaxEntries: number;
}

const DEFAULTS: ScheduleIndexOptions = { bucketMs: 1000, lookaheadMs: 1000, maxBufferedEntries: 65536, preloadMaxEntries: 65536 };
const ENTRY_BYTES = 16;
const FILE_NAME = /^(\d{16})\.sched$/;
const CHECKPOINT = 'checkpoint.json';
const FSYNC_PARALLEL = 16; // bucket files fsynced at once by a checkpoint

const fail = (what: string, cause: unknown) =>
  new EngineError('STORAGE_FAILED', `schedule index: ${what}: ${(cause as Error)?.message ?? cause}`, { cause });

/**
 * The durable, memory-bounded time index of a shard's scheduled and deferred deliveries, ordered by
 * (dueAt, source). Entries derive from event-log records, so bucket files are fsynced only at
 * checkpoints: after a crash the shard re-adds sources from `indexedTo` and re-learns the last fired
 * key from the copies in the log. Near buckets live in a heap; far ones stay in files until time
 * reaches them, so memory follows the lookahead window rather than the number of scheduled entries.
 */
export class ScheduleIndex {
  private readonly heap = new KeyHeap();
  private readonly unloaded = new Map<number, number>(); // bucket -> entries on disk + buffered
  private readonly unloadedBuckets = new KeyHeap(); // those buckets' numbers (source 0), however far ahead
  private unloadedCount = 0;
  private readonly buffers = new Map<number, KeyHeap>(); // per bucket: entries not yet in its file
  private buffered = 0;
  /** Buckets below this are near: new adds go to the heap, files load as soon as the heap reaches them. */
  private horizon = -Infinity;
  /** Loaded (or found fired) buckets, whose files go once everything in them has fired. */
  private readonly done = new Set<number>();
  private readonly touched = new Set<string>();
  private peeked: { bucket: number; dueAt: number } | null = null;
  private fired: ScheduleEntry | null;
  private seenTo: number;
  private checkpointed: number;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly options: ScheduleIndexOptions,
    indexedTo: number,
    lastFired: ScheduleEntry | null,
  ) {
    this.checkpointed = this.seenTo = indexedTo;
    this.fired = lastFired;
  }

  /** Open (creating) the index in `dir`: reads checkpoint.json and lists the bucket files. */
  static async open(dir: string, options: Partial<ScheduleIndexOptions> = {}): Promise<ScheduleIndex> {
    const opts = { ...DEFAULTS, ...options };
    const valid = Number.isSafeInteger(opts.bucketMs) && opts.bucketMs >= 1 && opts.lookaheadMs >= 0;
    if (!valid || !(opts.maxBufferedEntries >= 1) || !(opts.preloadMaxEntries >= 0)) {
      const message = `schedule index: bad options ${JSON.stringify(opts)}`;
      throw new EngineError('INVALID_ARGUMENT', message, { field: 'options' });
    }
    let names: string[];
    let saved: ReturnType<typeof parseCheckpoint>;
    try {
      await fs.promises.mkdir(dir, { recursive: true });
      names = await fs.promises.readdir(dir);
      const file = path.join(dir, CHECKPOINT);
      saved = parseCheckpoint(fs.existsSync(file) ? await fs.promises.readFile(file, 'utf8') : '');
    } catch (error) {
      throw fail(`cannot open ${dir}`, error);
    }
    // The file layout depends on bucketMs, so the one recorded with the directory wins.
    if (saved) opts.bucketMs = saved.bucketMs;
    const index = new ScheduleIndex(dir, opts, saved?.indexedTo ?? 0, saved?.lastFired ?? null);
    for (const name of names) {
      const start = Number(FILE_NAME.exec(name)?.[1] ?? NaN);
      if (Number.isNaN(start)) continue;
      if (start % opts.bucketMs !== 0) {
        const message = `schedule index: ${name} does not fit bucketMs ${opts.bucketMs}`;
        throw new EngineError('INVALID_ARGUMENT', message, { field: 'bucketMs' });
      }
      index.registerFile(start / opts.bucketMs, path.join(dir, name));
    }
    if (!saved) await index.checkpoint(); // records bucketMs before anything is written
    return index;
  }

  /** Every schedule source below this main-log offset was added before the last checkpoint (0 when none). */
  get indexedTo(): number {
    return this.checkpointed;
  }

  /** Key of the last entry taken (or noted fired); entries at or below it are dropped. */
  get lastFired(): ScheduleEntry | null {
    return this.fired && { ...this.fired };
  }

  /** Entries waiting (in memory + on disk, approximate after recovery: counts file entries). */
  get pending(): number {
    return this.heap.size + this.unloadedCount;
  }

  /** Entries held in memory now (for bounded-memory tests/benchmarks): heap plus buffered file writes. */
  get inMemory(): number {
    return this.heap.size + this.buffered;
  }

  /**
   * Add an entry. Recovery re-adds are deduplicated by source when their bucket loads; a re-add into
   * an already loaded bucket must carry the same dueAt, so the copy is dropped as <= lastFired.
   * May flush buffered writes (synchronously; throws STORAGE_FAILED if that fails).
   */
  add(dueAt: number, source: number): void {
    this.assertOpen();
    if (!(dueAt >= 0 && dueAt < 1e16) || !Number.isSafeInteger(source) || source < 0) {
      throw new EngineError('INVALID_ARGUMENT', `schedule index: bad entry (${dueAt}, ${source})`, { field: 'entry' });
    }
    if (this.isFired(dueAt, source)) return;
    const bucket = Math.floor(dueAt / this.options.bucketMs);
    if (bucket < this.horizon && !this.unloaded.has(bucket)) {
      this.heap.push(dueAt, source);
      this.done.add(bucket);
    } else {
      const count = this.unloaded.get(bucket);
      if (count === undefined) this.unloadedBuckets.push(bucket, 0);
      this.unloaded.set(bucket, (count ?? 0) + 1);
      this.unloadedCount++;
      if (this.peeked?.bucket === bucket && dueAt < this.peeked.dueAt) this.peeked.dueAt = dueAt;
    }
    let buffer = this.buffers.get(bucket);
    if (!buffer) this.buffers.set(bucket, (buffer = new KeyHeap(4)));
    buffer.push(dueAt, source);
    if (++this.buffered > this.options.maxBufferedEntries) this.flushBuffers();
  }

  /** Recovery: a copy for this key was found in the log (raise lastFired if greater). */
  noteFired(entry: ScheduleEntry): void {
    if (this.isFired(entry.dueAt, entry.source)) return;
    this.fired = { dueAt: entry.dueAt, source: entry.source };
    this.peeked = null;
  }

  /** Every source below `offset` has been added (advances what the next checkpoint records). */
  markSeen(offset: number): void {
    if (offset > this.seenTo) this.seenTo = offset;
  }

  /**
   * Earliest due time among pending entries, or null when none. Loads the buckets now + lookahead
   * reaches; when memory is still empty, reads the next bucket on disk for its earliest entry.
   */
  nextDue(nowMs: number): number | null {
    this.assertOpen();
    this.advance(nowMs);
    this.fill();
    if (this.heap.size > 0) return this.heap.due[0]!;
    // Nothing near: look into the next bucket without loading it, so the heap keeps only the
    // lookahead window however far away that bucket is.
    while (this.unloadedBuckets.size > 0) {
      const bucket = this.unloadedBuckets.due[0]!;
      if (this.peeked?.bucket === bucket) return this.peeked.dueAt;
      let min = Infinity;
      this.readBucket(bucket, (d) => void (min = Math.min(min, d)));
      if (min < Infinity) return (this.peeked = { bucket, dueAt: min }).dueAt;
      this.takeUnloaded(bucket); // everything in it already fired
    }
    return null;
  }

  /**
   * Remove and return up to `max` entries with dueAt <= nowMs, in key order; they become lastFired.
   * Loads buckets as time passes.
   */
  takeDue(nowMs: number, max: number): ScheduleEntry[] {
    this.assertOpen();
    this.advance(nowMs);
    const taken: ScheduleEntry[] = [];
    while (taken.length < max) {
      this.fill();
      if (this.heap.size === 0 || this.heap.due[0]! > nowMs) break;
      taken.push((this.fired = { dueAt: this.heap.due[0]!, source: this.heap.src[0]! }));
      this.heap.pop();
    }
    return taken;
  }

  /**
   * Flush buffered entries, fsync touched bucket files, write checkpoint.json atomically
   * ({v:1, indexedTo, lastFired, bucketMs}), delete bucket files whose entries are all fired.
   * Call it only once the copies of everything taken so far are durable in the log.
   */
  checkpoint(): Promise<void> {
    this.assertOpen();
    const run = () => this.writeCheckpoint();
    return (this.chain = this.chain.then(run, run));
  }

  /** Checkpoint, then release memory; the index cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.checkpoint();
    this.closed = true;
    this.heap.size = 0;
    this.heap.due = this.heap.src = new Float64Array(0);
  }

  private async writeCheckpoint(): Promise<void> {
    this.flushBuffers();
    // What the checkpoint may claim is fixed now: everything added so far is in the files.
    const state = { v: 1, indexedTo: this.seenTo, lastFired: this.fired, bucketMs: this.options.bucketMs };
    const files = [...this.touched];
    this.touched.clear();
    const deletable = [...this.done].filter((b) => this.allFired(b));
    try {
      for (let i = 0; i < files.length; i += FSYNC_PARALLEL) {
        await Promise.all(files.slice(i, i + FSYNC_PARALLEL).map(fsyncPath));
      }
      // Its directory fsync also makes the names of newly created bucket files durable.
      await writeFileAtomicAsync(path.join(this.dir, CHECKPOINT), JSON.stringify(state));
      this.checkpointed = state.indexedTo;
      for (const bucket of deletable) {
        if (!this.allFired(bucket)) continue; // written to or refilled while syncing
        this.done.delete(bucket);
        // Synchronous, so no append to this file can slip in between the check and the unlink.
        fs.rmSync(this.fileOf(bucket), { force: true });
      }
    } catch (error) {
      throw fail('checkpoint failed', error);
    }
  }

  private registerFile(bucket: number, file: string): void {
    let size: number;
    try {
      size = fs.statSync(file).size;
      // A torn final entry from a crash is dropped, so later appends stay 16-byte aligned.
      if (size % ENTRY_BYTES !== 0) fs.truncateSync(file, (size -= size % ENTRY_BYTES));
    } catch (error) {
      throw fail(`cannot read ${file}`, error);
    }
    this.unloaded.set(bucket, size / ENTRY_BYTES);
    this.unloadedBuckets.push(bucket, 0);
    this.unloadedCount += size / ENTRY_BYTES;
  }

  /** Move the horizon to the buckets starting before now + lookahead (and the one holding now). */
  private advance(nowMs: number): void {
    const { bucketMs, lookaheadMs } = this.options;
    const below = Math.max(Math.ceil((nowMs + lookaheadMs) / bucketMs), Math.floor(nowMs / bucketMs) + 1);
    if (below > this.horizon) this.horizon = below;
  }

  /**
   * Drop fired keys from the heap top (a re-add that reached the heap twice repeats a taken key), and
   * load near buckets one at a time.
   */
  private fill(): void {
    for (;;) {
      while (this.heap.size > 0 && this.isFired(this.heap.due[0]!, this.heap.src[0]!)) this.heap.pop();
      const bucket = this.unloadedBuckets.size > 0 ? this.unloadedBuckets.due[0]! : Infinity;
      if (bucket >= this.horizon) return;
      // A near bucket loads ahead of its time (a load at its start would delay its first entries)
      // unless memory already holds plenty due earlier: after downtime, that keeps one bucket of
      // overdue entries in memory rather than all of them.
      if (this.heap.size >= this.options.preloadMaxEntries && this.heap.due[0]! < bucket * this.options.bucketMs) return;
      this.readBucket(bucket, (d, s) => this.heap.push(d, s));
      this.takeUnloaded(bucket);
    }
  }

  /** Visit the live entries of a bucket (file, then buffer), each source once. */
  private readBucket(bucket: number, visit: (dueAt: number, source: number) => void): void {
    const seen = new Set<number>();
    const take = (d: number, s: number) => {
      if (seen.has(s) || this.isFired(d, s)) return;
      seen.add(s);
      visit(d, s);
    };
    let data: Buffer;
    try {
      data = fs.readFileSync(this.fileOf(bucket));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fail(`cannot read bucket ${bucket}`, error);
      data = Buffer.alloc(0);
    }
    for (let at = 0; at + ENTRY_BYTES <= data.length; at += ENTRY_BYTES) {
      take(data.readDoubleLE(at), data.readDoubleLE(at + 8));
    }
    const buffer = this.buffers.get(bucket);
    for (let i = 0; buffer && i < buffer.size; i++) take(buffer.due[i]!, buffer.src[i]!);
  }

  /** Take the minimum unloaded bucket out of the unloaded set (its buffer stays as pending writes). */
  private takeUnloaded(bucket: number): void {
    this.unloadedBuckets.pop();
    this.unloadedCount -= this.unloaded.get(bucket)!;
    this.unloaded.delete(bucket);
    this.done.add(bucket);
    if (this.peeked?.bucket === bucket) this.peeked = null;
  }

  /** True when a bucket holds nothing unfired: not waiting on disk, and no live heap entry at or before it. */
  private allFired(bucket: number): boolean {
    if (this.unloaded.has(bucket) || this.buffers.has(bucket)) return false;
    return this.heap.size === 0 || Math.floor(this.heap.due[0]! / this.options.bucketMs) > bucket;
  }

  private flushBuffers(): void {
    for (const [bucket, buffer] of this.buffers) {
      const file = this.fileOf(bucket);
      const bytes = Buffer.allocUnsafe(buffer.size * ENTRY_BYTES);
      for (let i = 0; i < buffer.size; i++) {
        bytes.writeDoubleLE(buffer.due[i]!, i * ENTRY_BYTES);
        bytes.writeDoubleLE(buffer.src[i]!, i * ENTRY_BYTES + 8);
      }
      let fd = -1;
      let size = 0;
      try {
        fd = fs.openSync(file, 'a');
        size = fs.fstatSync(fd).size;
        for (let at = 0; at < bytes.length; ) at += fs.writeSync(fd, bytes, at, bytes.length - at, size + at);
      } catch (error) {
        if (fd >= 0) truncateQuietly(fd, size); // no torn entry may misalign later appends
        throw fail(`cannot write ${file}`, error);
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
      this.touched.add(file);
      this.buffers.delete(bucket);
      this.buffered -= buffer.size;
    }
  }

  private isFired(dueAt: number, source: number): boolean {
    const f = this.fired;
    return f !== null && !less(f.dueAt, f.source, dueAt, source);
  }

  private fileOf(bucket: number): string {
    return path.join(this.dir, `${String(bucket * this.options.bucketMs).padStart(16, '0')}.sched`);
  }

  private assertOpen(): void {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', `schedule index ${this.dir} is closed`);
  }
}

/** Undo a partial append; the write error is the one to report (and open() drops a torn tail anyway). */
function truncateQuietly(fd: number, size: number): void {
  try {
    fs.ftruncateSync(fd, size);
  } catch {
    // reported by the caller as the write failure
  }
}

async function fsyncPath(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null; // deleted as fully fired: nothing left to make durable
    throw error;
  });
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface SavedState {
  indexedTo: number;
  lastFired: ScheduleEntry | null;
  bucketMs: number;
}

/** Parse checkpoint.json; anything malformed counts as no checkpoint (start from scratch). */
function parseCheckpoint(text: string): SavedState | null {
  let value: { v?: unknown; indexedTo?: unknown; lastFired?: unknown; bucketMs?: unknown };
  try {
    value = JSON.parse(text) ?? {};
  } catch {
    return null;
  }
  const { v, indexedTo, lastFired, bucketMs } = value;
  const fired = (lastFired ?? {}) as { dueAt?: unknown; source?: unknown };
  const validFired = lastFired === null || (Number.isFinite(fired.dueAt) && Number.isSafeInteger(fired.source));
  if (v !== 1 || !validFired || !isCount(indexedTo) || !isCount(bucketMs) || bucketMs === 0) return null;
  const entry = lastFired === null ? null : { dueAt: fired.dueAt as number, source: fired.source as number };
  return { indexedTo, bucketMs, lastFired: entry };
}

const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
