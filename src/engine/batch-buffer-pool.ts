/**
 * Buffers for publish batches, reused: a batch's buffer is transferred to its shard's worker,
 * which hands it back with the batch's result once it has stored (and copied) the events. A fresh
 * buffer per batch cost the engine's thread more (allocation, page faults, collection of external
 * memory) than encoding the events into it. Buffers come in power-of-two sizes; each size keeps at
 * most MAX_PER_SIZE returned buffers (a burst's extra ones are left to the collector).
 */
const MAX_PER_SIZE = 16;
const MIN_BYTES = 4 * 1024;

export class BatchBufferPool {
  private readonly bySize = new Map<number, ArrayBuffer[]>();

  /** A buffer of at least `bytes` (rounded up to a power of two, at least 4 KiB). */
  take(bytes: number): Buffer {
    const size = sizeFor(bytes);
    const reused = this.bySize.get(size)?.pop();
    return reused ? Buffer.from(reused, 0, size) : Buffer.allocUnsafeSlow(size);
  }

  /** A buffer back from a worker (transferred, so nothing else holds it). */
  give(buffer: ArrayBuffer): void {
    const size = buffer.byteLength;
    if (size !== sizeFor(size)) return; // not one of ours
    let free = this.bySize.get(size);
    if (!free) {
      free = [];
      this.bySize.set(size, free);
    }
    if (free.length < MAX_PER_SIZE) free.push(buffer);
  }

  /** Buffers waiting for reuse (for tests). */
  get pooled(): number {
    let count = 0;
    for (const free of this.bySize.values()) count += free.length;
    return count;
  }
}

function sizeFor(bytes: number): number {
  return Math.max(MIN_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
}
