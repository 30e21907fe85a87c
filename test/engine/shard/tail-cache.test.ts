import { describe, expect, it } from 'vitest';
import { TailCache } from '../../../src/engine/shard/tail-cache.js';

/** What the test added at one offset, to compare with what the cache answers. */
interface Added {
  offset: number;
  type: string;
  sender: string | null;
  buffer: Uint8Array;
  start: number;
  end: number;
  attributes: number;
  priority: number;
  mustParse: boolean;
  expiresAt: number;
}

/** A record for `offset` whose every field depends on the offset, in a shared batch buffer. */
function recordAt(offset: number, buffer: Uint8Array, bodyBytes = 10): Added {
  const start = (offset * 7) % 50;
  return {
    offset,
    type: `type/${offset % 5}`,
    sender: offset % 3 === 0 ? null : `sender-${offset}`,
    buffer,
    start,
    end: start + bodyBytes,
    attributes: offset % 4,
    priority: offset % 10,
    mustParse: offset % 2 === 1,
    expiresAt: offset % 4 === 0 ? 0 : 1_700_000_000_000 + offset * 1_000 + 0.5,
  };
}

function add(cache: TailCache, r: Added): void {
  cache.add(r.offset, r.type, r.sender, r.buffer, r.start, r.end, r.attributes, r.priority, r.mustParse, r.expiresAt);
}

/** Everything the cache answers for `offset`, or null when it is not cached. */
function cached(cache: TailCache, offset: number): Added | null {
  const slot = cache.slotOf(offset);
  if (slot < 0) return null;
  return {
    offset,
    type: cache.type(slot),
    sender: cache.sender(slot),
    buffer: cache.buffer(slot),
    start: cache.start(slot),
    end: cache.end(slot),
    attributes: cache.attributes(slot),
    priority: cache.priority(slot),
    mustParse: cache.mustParse(slot),
    expiresAt: cache.expiresAt(slot),
  };
}

/** Offsets in [from, to) that the cache holds. */
function cachedOffsets(cache: TailCache, from: number, to: number): number[] {
  const out: number[] = [];
  for (let offset = from; offset < to; offset++) if (cache.slotOf(offset) >= 0) out.push(offset);
  return out;
}

function expectCached(cache: TailCache, records: readonly Added[]): void {
  for (const r of records) {
    const got = cached(cache, r.offset);
    expect(got, `offset ${r.offset} is cached`).not.toBeNull();
    expect(got!.buffer, `offset ${r.offset} keeps its own buffer`).toBe(r.buffer);
    expect(got).toEqual(r);
  }
}

const batchA = new Uint8Array(100);
const batchB = new Uint8Array(100);

describe('TailCache', () => {
  it('answers -1 for every offset while empty', () => {
    const cache = new TailCache(8, 1 << 20);
    for (const offset of [-1, 0, 1, 7, 1_000]) expect(cache.slotOf(offset)).toBe(-1);
  });

  it('returns from every accessor what was added, and slotOf is -1 outside the cached run', () => {
    const cache = new TailCache(16, 1 << 20);
    const records = [100, 101, 102, 103, 104, 105].map((offset) => recordAt(offset, offset < 103 ? batchA : batchB));
    for (const r of records) add(cache, r);
    expectCached(cache, records);
    expect(cache.endOffset).toBe(106);
    expect(cache.slotOf(99)).toBe(-1);
    expect(cache.slotOf(106)).toBe(-1);
    expect(cache.slotOf(10_000)).toBe(-1);
    // Distinct offsets have distinct slots within the ring.
    const slots = records.map((r) => cache.slotOf(r.offset));
    expect(new Set(slots).size).toBe(records.length);
    for (const slot of slots) {
      expect(slot).toBeGreaterThanOrEqual(0);
      expect(slot).toBeLessThan(16);
    }
  });

  it('keeps the values of each field exactly (priorities 0-9, kinds, large expiry times, empty type)', () => {
    const cache = new TailCache(32, 1 << 20);
    const records: Added[] = [];
    for (let i = 0; i < 10; i++) {
      records.push({
        offset: i,
        type: i === 0 ? '' : `orders/ü/${i}`,
        sender: i % 2 === 0 ? `client-${i}-東京` : null,
        buffer: batchA,
        start: i,
        end: i * 2,
        attributes: i % 4,
        priority: i,
        mustParse: i % 3 === 0,
        expiresAt: i === 0 ? 0 : Number.MAX_SAFE_INTEGER - i,
      });
    }
    for (const r of records) add(cache, r);
    expectCached(cache, records);
  });

  it('wraps around the ring when more than maxEvents are added: the oldest are dropped, the newest stay right', () => {
    const maxEvents = 8;
    const cache = new TailCache(maxEvents, 1 << 20);
    const records: Added[] = [];
    for (let offset = 0; offset < 8 * maxEvents + 3; offset++) {
      const r = recordAt(offset, offset % 2 === 0 ? batchA : batchB);
      records.push(r);
      add(cache, r);
      const firstCached = Math.max(0, offset + 1 - maxEvents);
      expect(cachedOffsets(cache, 0, offset + 5), `after adding ${offset}`).toEqual(records.slice(firstCached).map((x) => x.offset));
      expect(cache.endOffset).toBe(offset + 1);
      expectCached(cache, records.slice(firstCached));
    }
    // The slots are reused: every slot index stays within the ring.
    for (const r of records.slice(-maxEvents)) expect(cache.slotOf(r.offset)).toBeLessThan(maxEvents);
  });

  it('drops the oldest first when over the byte bound, but always keeps the newest record', () => {
    const cache = new TailCache(100, 100);
    const r0 = recordAt(0, batchA, 40);
    const r1 = recordAt(1, batchA, 40);
    add(cache, r0);
    add(cache, r1);
    expect(cachedOffsets(cache, 0, 10)).toEqual([0, 1]); // 80 bytes
    const r2 = recordAt(2, batchB, 20);
    add(cache, r2);
    expect(cachedOffsets(cache, 0, 10), 'exactly at the bound: nothing dropped').toEqual([0, 1, 2]);
    const r3 = recordAt(3, batchB, 1);
    add(cache, r3);
    expect(cachedOffsets(cache, 0, 10), '101 bytes: the oldest goes').toEqual([1, 2, 3]);
    expectCached(cache, [r1, r2, r3]);

    // A record above the bound on its own: everything older goes, the record itself stays.
    const big = recordAt(4, batchA, 0);
    big.start = 0;
    big.end = 100;
    const huge = { ...recordAt(5, new Uint8Array(500), 0), start: 0, end: 500 };
    add(cache, big);
    expect(cachedOffsets(cache, 0, 10)).toEqual([4]);
    add(cache, huge);
    expect(cachedOffsets(cache, 0, 10)).toEqual([5]);
    expectCached(cache, [huge]);
    expect(cache.endOffset).toBe(6);

    // The byte count follows the drops: small records fill up to the bound again after the huge one goes.
    const smalls = [6, 7, 8, 9, 10].map((offset) => recordAt(offset, batchB, 20));
    for (const r of smalls) add(cache, r);
    expect(cachedOffsets(cache, 0, 20)).toEqual([6, 7, 8, 9, 10]);
    expectCached(cache, smalls);
    add(cache, recordAt(11, batchB, 20));
    expect(cachedOffsets(cache, 0, 20)).toEqual([7, 8, 9, 10, 11]);
  });

  it('counts bytes of dropped records when wrapping by count, so the byte bound stays exact', () => {
    const cache = new TailCache(4, 40);
    for (let offset = 0; offset < 20; offset++) add(cache, recordAt(offset, batchA, 10));
    // Four records of 10 bytes fill both bounds exactly; none is dropped for bytes.
    expect(cachedOffsets(cache, 0, 30)).toEqual([16, 17, 18, 19]);
    add(cache, recordAt(20, batchA, 10));
    expect(cachedOffsets(cache, 0, 30)).toEqual([17, 18, 19, 20]);
  });

  it('restarts at a gap in offsets (forward or backward)', () => {
    const cache = new TailCache(8, 1 << 20);
    for (let offset = 10; offset < 15; offset++) add(cache, recordAt(offset, batchA));
    const after = recordAt(20, batchB);
    add(cache, after);
    expect(cachedOffsets(cache, 0, 40)).toEqual([20]);
    expectCached(cache, [after]);
    expect(cache.endOffset).toBe(21);
    // It continues from the new start.
    const next = [21, 22].map((offset) => recordAt(offset, batchB));
    for (const r of next) add(cache, r);
    expectCached(cache, [after, ...next]);
    // A step back (an offset already cached, or older) restarts as well.
    const back = recordAt(21, batchA);
    add(cache, back);
    expect(cachedOffsets(cache, 0, 40)).toEqual([21]);
    expectCached(cache, [back]);
    expect(cache.endOffset).toBe(22);
  });

  it('restarts at a gap after having wrapped, with the whole ring available again', () => {
    const cache = new TailCache(4, 1 << 20);
    for (let offset = 0; offset < 7; offset++) add(cache, recordAt(offset, batchA));
    const records = [100, 101, 102, 103, 104, 105].map((offset) => recordAt(offset, batchB));
    for (const r of records) add(cache, r);
    expect(cachedOffsets(cache, 0, 200)).toEqual([102, 103, 104, 105]);
    expectCached(cache, records.slice(2));
  });

  it('dropBelow forgets the records below an offset and keeps the rest', () => {
    const cache = new TailCache(8, 1 << 20);
    const records = [0, 1, 2, 3, 4, 5].map((offset) => recordAt(offset, batchA));
    for (const r of records) add(cache, r);
    cache.dropBelow(0);
    expect(cachedOffsets(cache, 0, 10)).toEqual([0, 1, 2, 3, 4, 5]);
    cache.dropBelow(3);
    expect(cachedOffsets(cache, 0, 10)).toEqual([3, 4, 5]);
    expectCached(cache, records.slice(3));
    expect(cache.endOffset).toBe(6);
    // Adding continues the run.
    const r6 = recordAt(6, batchB);
    add(cache, r6);
    expectCached(cache, [...records.slice(3), r6]);

    // Below everything: empty, and the end offset stays where the run ended.
    cache.dropBelow(100);
    expect(cachedOffsets(cache, 0, 200)).toEqual([]);
    expect(cache.endOffset).toBe(7);
    // An empty cache takes any offset as its new start.
    const r50 = recordAt(50, batchA);
    add(cache, r50);
    expectCached(cache, [r50]);
    expect(cache.endOffset).toBe(51);
  });

  it('dropBelow frees the byte budget of what it drops', () => {
    const cache = new TailCache(100, 50);
    for (let offset = 0; offset < 5; offset++) add(cache, recordAt(offset, batchA, 10)); // 50 bytes
    cache.dropBelow(3); // 20 bytes left
    for (let offset = 5; offset < 8; offset++) add(cache, recordAt(offset, batchA, 10)); // 50 bytes again
    expect(cachedOffsets(cache, 0, 20)).toEqual([3, 4, 5, 6, 7]);
  });

  it('clear empties the cache and lets it start anywhere, with the full byte budget', () => {
    const cache = new TailCache(4, 30);
    const old = [0, 1, 2, 3, 4].map((offset) => recordAt(offset, batchA, 10));
    for (const r of old) add(cache, r);
    const slots = [2, 3, 4].map((offset) => cache.slotOf(offset));
    cache.clear();
    expect(cachedOffsets(cache, 0, 20)).toEqual([]);
    // The cleared slots no longer pin their batch buffers.
    for (const slot of slots) expect(cache.buffer(slot)).toBeNull();
    const fresh = [7, 8, 9].map((offset) => recordAt(offset, batchB, 10));
    for (const r of fresh) add(cache, r);
    expect(cachedOffsets(cache, 0, 20)).toEqual([7, 8, 9]);
    expectCached(cache, fresh);
    expect(cache.endOffset).toBe(10);
    cache.clear();
    cache.clear(); // twice is harmless
    expect(cache.slotOf(9)).toBe(-1);
  });

  it('dropped slots do not pin their batch buffers', () => {
    const cache = new TailCache(2, 1 << 20);
    const first = recordAt(0, new Uint8Array(100));
    add(cache, first);
    const slot = cache.slotOf(0);
    add(cache, recordAt(1, batchA));
    add(cache, recordAt(2, batchA)); // drops offset 0 and reuses its slot
    expect(cache.slotOf(0)).toBe(-1);
    expect(cache.buffer(slot)).toBe(batchA);
    cache.dropBelow(2);
    expect(cache.buffer(cache.slotOf(2))).toBe(batchA);
    const freed = (cache.slotOf(2) + 1) % 2;
    expect(cache.buffer(freed)).toBeNull();
  });

  it('endOffset is the offset after the newest cached record', () => {
    const cache = new TailCache(3, 1 << 20);
    add(cache, recordAt(41, batchA));
    expect(cache.endOffset).toBe(42);
    for (let offset = 42; offset < 50; offset++) add(cache, recordAt(offset, batchA));
    expect(cache.endOffset).toBe(50);
    expect(cachedOffsets(cache, 0, 60)).toEqual([47, 48, 49]);
  });
});
