import fs from 'node:fs';
import { readAt } from './file-io.js';

/**
 * The "memory-mapped" image of a fixed-width index file, without native code: the entries live in a
 * growable SharedArrayBuffer (so worker threads can read them without copying) and every new entry is
 * written through to the index file with a positional write. The file has no header: entry i is at
 * byte i * entryWidth. The file is a cache of the log: it is never fsynced on the append path, and a
 * missing or inconsistent file is rebuilt from the log on open.
 *
 * Image layout: bytes [0, 8) hold the published entry count (Int32, read with Atomics so a reader in
 * another thread never sees an entry before it is complete); entries start at byte 8.
 */
const IMAGE_HEADER_BYTES = 8;
const INITIAL_ENTRIES = 64;

export abstract class IndexImage {
  readonly path: string;
  readonly entryWidth: number;
  readonly maxEntries: number;
  readonly buffer: SharedArrayBuffer;
  protected readonly view: DataView;
  private readonly header: Int32Array;
  private fd: number | null = null;
  /** Entries [0, persistedCount) are already in the file. */
  private persistedCount = 0;

  /**
   * With `shared`, the index is a read-only view of an image owned by another thread (received with
   * postMessage, which shares a SharedArrayBuffer instead of copying it); it sees new entries as the
   * owner publishes them.
   */
  protected constructor(path: string, entryWidth: number, maxEntries: number, shared?: SharedArrayBuffer) {
    this.path = path;
    this.entryWidth = entryWidth;
    this.maxEntries = maxEntries;
    const initial = IMAGE_HEADER_BYTES + Math.min(INITIAL_ENTRIES, maxEntries) * entryWidth;
    this.buffer = shared ?? new SharedArrayBuffer(initial, { maxByteLength: IMAGE_HEADER_BYTES + maxEntries * entryWidth });
    this.view = new DataView(this.buffer);
    this.header = new Int32Array(this.buffer, 0, 2);
  }

  get count(): number {
    return Atomics.load(this.header, 0);
  }

  get isFull(): boolean {
    return this.count >= this.maxEntries;
  }

  protected entryPosition(i: number): number {
    return IMAGE_HEADER_BYTES + i * this.entryWidth;
  }

  /** Reserve room for one more entry and return its byte position in the image. */
  protected nextEntryPosition(): number {
    const count = this.count;
    const needed = this.entryPosition(count + 1);
    if (needed > this.buffer.byteLength) {
      this.buffer.grow(Math.min(this.buffer.maxByteLength, Math.max(needed, this.buffer.byteLength * 2)));
    }
    return this.entryPosition(count);
  }

  /** Entries a shared image can hold at most, from its reserved size. */
  protected static capacityOf(shared: SharedArrayBuffer, entryWidth: number): number {
    return Math.floor((shared.maxByteLength - IMAGE_HEADER_BYTES) / entryWidth);
  }

  protected publishOne(): void {
    Atomics.store(this.header, 0, this.count + 1);
  }

  /**
   * Load the entries from the index file. Returns false when the file is missing or its size is not a
   * whole number of entries (a torn write); the caller then rebuilds it.
   */
  loadFromFile(): boolean {
    let size: number;
    try {
      size = fs.statSync(this.path).size;
    } catch {
      return false;
    }
    if (size % this.entryWidth !== 0 || size / this.entryWidth > this.maxEntries) return false;
    const count = size / this.entryWidth;
    if (count > 0) {
      const fd = fs.openSync(this.path, 'r');
      try {
        const bytes = readAt(fd, 0, size);
        if (bytes.length !== size) return false;
        const needed = this.entryPosition(count);
        if (needed > this.buffer.byteLength) this.buffer.grow(needed);
        new Uint8Array(this.buffer, IMAGE_HEADER_BYTES, size).set(bytes);
      } finally {
        fs.closeSync(fd);
      }
    }
    Atomics.store(this.header, 0, count);
    this.persistedCount = count;
    return true;
  }

  /** Drop entries from `count` on, in the image and in the file. */
  truncateTo(count: number): void {
    if (count >= this.count) return;
    Atomics.store(this.header, 0, count);
    this.persistedCount = Math.min(this.persistedCount, count);
    this.openForWrite();
    fs.ftruncateSync(this.fd!, count * this.entryWidth);
  }

  /** Forget every entry and truncate the file: the first step of a rebuild. */
  reset(): void {
    Atomics.store(this.header, 0, 0);
    this.persistedCount = 0;
    this.openForWrite();
    fs.ftruncateSync(this.fd!, 0);
  }

  /** Write the entries added since the last call through to the file, in one positional write. */
  writeThrough(): void {
    const count = this.count;
    if (count === this.persistedCount) return;
    this.openForWrite();
    const from = this.entryPosition(this.persistedCount);
    const bytes = new Uint8Array(this.buffer, from, (count - this.persistedCount) * this.entryWidth);
    fs.writeSync(this.fd!, bytes, 0, bytes.length, this.persistedCount * this.entryWidth);
    this.persistedCount = count;
  }

  /**
   * Write through, flush the file, and release its descriptor (the image stays readable). The file
   * exists afterwards even with no entries, so a clean reopen finds it.
   */
  seal(): void {
    this.writeThrough();
    this.openForWrite();
    fs.fsyncSync(this.fd!);
    this.closeFile();
  }

  closeFile(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  private openForWrite(): void {
    if (this.fd === null) this.fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  }
}
