/**
 * Buffers for publish batches, reused: a batch's buffer is transferred to its shard's worker,
 * which hands it back with the batch's result once it has stored (and copied) the events. A fresh
 * buffer per batch cost the engine's thread more (allocation, page faults, collection of external
 * memory) than encoding the events into it. Buffers come in power-of-two sizes; each size keeps at
 * most MAX_PER_SIZE returned buffers, and all together at most MAX_POOLED_BYTES (a burst's extra
 * ones are left to the collector).
 */
const MAX_PER_SIZE = 16;
const MAX_POOLED_BYTES = 64 * 1024 * 1024;
const MIN_BYTES = 4 * 1024;

export class BatchBufferPool {
  private readonly bySize = new Map<number, ArrayBuffer[]>();
  private pooledBytes = 0;

  /** A buffer of at least `bytes` (rounded up to a power of two, at least 4 KiB). */
  take(bytes: number): Buffer {
    const size = sizeFor(bytes);
    const reused = this.bySize.get(size)?.pop();
    if (!reused) return Buffer.allocUnsafeSlow(size);
    this.pooledBytes -= size;
    return Buffer.from(reused, 0, size);
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
    if (free.length < MAX_PER_SIZE && this.pooledBytes + size <= MAX_POOLED_BYTES) {
      free.push(buffer);
      this.pooledBytes += size;
    }
  }

  /** Bytes of the buffers waiting for reuse. */
  get bytes(): number {
    return this.pooledBytes;
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
