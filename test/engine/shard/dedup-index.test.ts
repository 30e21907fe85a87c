import { describe, expect, it } from 'vitest';
import type { Receipt } from '../../../src/engine/delivery.js';
import { DedupIndex } from '../../../src/engine/shard/dedup-index.js';

function receipt(type: string, id: string, offset: number): Receipt {
  return { id, type, offset, shard: 0, duplicate: true };
}

describe('DedupIndex', () => {
  it('finds an id of a type within the window, not of another type, not after the window', () => {
    const index = new DedupIndex(1_000, 100);
    index.add(receipt('orders/created', 'a', 5), 10_000, null);
    expect(index.get('orders/created', 'a', 10_500)?.receipt.offset).toBe(5);
    expect(index.get('orders/created', 'a', 11_000)?.receipt.offset).toBe(5);
    expect(index.get('orders/paid', 'a', 10_500)).toBeUndefined();
    expect(index.get('orders/created', 'b', 10_500)).toBeUndefined();
    expect(index.get('orders/created', 'a', 11_001)).toBeUndefined();
  });

  it('does not confuse type and id boundaries', () => {
    const index = new DedupIndex(1_000, 100);
    index.add(receipt('a/b', 'c', 1), 0, null);
    expect(index.get('a', 'b/c', 0)).toBeUndefined();
    expect(index.get('a/b', 'c', 0)?.receipt.offset).toBe(1);
  });

  it('expires entries older than the window, oldest first', () => {
    const index = new DedupIndex(1_000, 100);
    for (let i = 0; i < 10; i++) index.add(receipt('t', `id-${i}`, i), i * 100, null);
    index.expire(1_450); // horizon 450: entries published at 0..400 go
    expect(index.size).toBe(5);
    expect(index.get('t', 'id-4', 1_450)).toBeUndefined();
    expect(index.get('t', 'id-5', 1_450)?.receipt.offset).toBe(5);
  });

  it('holds at most maxEntries, forgetting the oldest', () => {
    const index = new DedupIndex(60_000, 3);
    for (let i = 0; i < 5; i++) index.add(receipt('t', `id-${i}`, i), 1_000 + i, null);
    expect(index.size).toBe(3);
    expect(index.get('t', 'id-0', 1_010)).toBeUndefined();
    expect(index.get('t', 'id-1', 1_010)).toBeUndefined();
    expect(index.get('t', 'id-4', 1_010)?.receipt.offset).toBe(4);
  });

  it('replaces an entry added again and forgets a removed one', async () => {
    const index = new DedupIndex(60_000, 10);
    const durable = Promise.resolve(true);
    index.add(receipt('t', 'x', 7), 1_000, durable);
    expect(index.get('t', 'x', 1_000)?.durable).toBe(durable);
    index.add(receipt('t', 'x', 7), 1_000, null);
    expect(index.size).toBe(1);
    expect(index.get('t', 'x', 1_000)?.durable).toBeNull();
    index.remove('t', 'x');
    expect(index.get('t', 'x', 1_000)).toBeUndefined();
  });
});
