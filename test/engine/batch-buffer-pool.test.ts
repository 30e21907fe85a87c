import { describe, expect, it } from 'vitest';
import { BatchBufferPool } from '../../src/engine/batch-buffer-pool.js';

describe('BatchBufferPool', () => {
  it('hands out power-of-two buffers of at least 4 KiB, and the same memory again once given back', () => {
    const pool = new BatchBufferPool();
    const first = pool.take(5000);
    expect(first.length).toBe(8192);
    expect(pool.take(1).length).toBe(4096);
    const memory = first.buffer;
    pool.give(memory as ArrayBuffer);
    expect(pool.pooled).toBe(1);
    expect(pool.bytes).toBe(8192);
    expect(pool.take(6000).buffer).toBe(memory);
    expect(pool.pooled).toBe(0);
    expect(pool.bytes).toBe(0);
    expect(pool.take(6000).buffer).not.toBe(memory);
  });

  it('ignores buffers not of its sizes, and keeps at most 16 per size and 64 MiB in all', () => {
    const pool = new BatchBufferPool();
    pool.give(new ArrayBuffer(5000));
    expect(pool.pooled).toBe(0);
    for (let i = 0; i < 20; i++) pool.give(new ArrayBuffer(4096));
    expect(pool.pooled).toBe(16);
    for (let i = 0; i < 10; i++) pool.give(new ArrayBuffer(8 * 1024 * 1024));
    expect(pool.bytes).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(pool.bytes).toBe(16 * 4096 + 7 * 8 * 1024 * 1024);
  });
});
