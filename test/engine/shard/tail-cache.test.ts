import { describe, expect, it } from 'vitest';
import { TailCache } from '../../../src/engine/shard/tail-cache.js';

/** The cache's chunk size and the largest body it caches (a quarter chunk). */
const CHUNK = 1024 * 1024;
const QUARTER = CHUNK / 4;

/** Deterministic pseudo-random numbers (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A source of body bytes: pseudo-random, so that a body taken from the wrong place shows. */
const PATTERN = (() => {
  const random = prng(12345);
  const bytes = new Uint8Array(CHUNK + 4096);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
})();

/** Where in PATTERN the body of `offset` (of `length` bytes) starts. */
function patternStart(offset: number, length: number): number {
  const room = PATTERN.length - length + 1;
  return (Math.imul(offset + 17, 2654435761) >>> 0) % room;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** What the test adds at one offset; the body is bytes [start, end) of `source`. */
interface Added {
  offset: number;
  type: string;
  sender: string | null;
  source: Uint8Array;
  start: number;
  end: number;
  attributes: number;
  priority: number;
  mustParse: boolean;
  expiresAt: number;
}

/** A record for `offset` whose every field depends on the offset, its body taken from PATTERN. */
function recordAt(offset: number, length = 10): Added {
  const start = patternStart(offset, length);
  return {
    offset,
    type: `type/${offset % 5}`,
    sender: offset % 3 === 0 ? null : `sender-${offset}`,
    source: PATTERN,
    start,
    end: start + length,
    attributes: offset % 4,
    priority: offset % 10,
    mustParse: offset % 2 === 1,
    expiresAt: offset % 4 === 0 ? 0 : 1_700_000_000_000 + offset * 1_000 + 0.5,
  };
}

function add(cache: TailCache, r: Added): void {
  cache.add(r.offset, r.type, r.sender, r.source, r.start, r.end, r.attributes, r.priority, r.mustParse, r.expiresAt);
}

/** Add the PATTERN record of `length` bytes at `offset`, and return the buffer it was copied into. */
function addAt(cache: TailCache, offset: number, length: number): Uint8Array {
  add(cache, recordAt(offset, length));
  const slot = cache.slotOf(offset);
  expect(slot, `offset ${offset} is cached once added`).toBeGreaterThanOrEqual(0);
  return cache.buffer(slot);
}

/** The body bytes the cache holds for `offset` (a view into its chunk). */
function cachedBody(cache: TailCache, offset: number): Uint8Array {
  const slot = cache.slotOf(offset);
  expect(slot, `offset ${offset} is cached`).toBeGreaterThanOrEqual(0);
  return cache.buffer(slot).subarray(cache.start(slot), cache.end(slot));
}

/** Offsets in [from, to) that the cache holds. */
function cachedOffsets(cache: TailCache, from: number, to: number): number[] {
  const out: number[] = [];
  for (let offset = from; offset < to; offset++) if (cache.slotOf(offset) >= 0) out.push(offset);
  return out;
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

/** Every field of each record comes back as added, its body is equal to the source's and lies in a chunk of the cache's own. */
function expectCached(cache: TailCache, records: readonly Added[]): void {
  for (const r of records) {
    const slot = cache.slotOf(r.offset);
    expect(slot, `offset ${r.offset} is cached`).toBeGreaterThanOrEqual(0);
    expect({
      type: cache.type(slot),
      sender: cache.sender(slot),
      attributes: cache.attributes(slot),
      priority: cache.priority(slot),
      mustParse: cache.mustParse(slot),
      expiresAt: cache.expiresAt(slot),
      length: cache.end(slot) - cache.start(slot),
    }).toEqual({
      type: r.type,
      sender: r.sender,
      attributes: r.attributes,
      priority: r.priority,
      mustParse: r.mustParse,
      expiresAt: r.expiresAt,
      length: r.end - r.start,
    });
    const buffer = cache.buffer(slot);
    expect(buffer !== r.source, `offset ${r.offset} is copied, not kept in its source`).toBe(true);
    expect(buffer.buffer !== r.source.buffer).toBe(true);
    expect(buffer.length).toBe(CHUNK);
    expect(cache.start(slot)).toBeGreaterThanOrEqual(0);
    expect(cache.end(slot)).toBeLessThanOrEqual(CHUNK);
    expect(sameBytes(cachedBody(cache, r.offset), r.source.subarray(r.start, r.end)), `body of ${r.offset}`).toBe(true);
  }
}

/** Offsets in [from, to) whose cached body differs from its PATTERN body of `length` bytes (they must all be cached). */
function wrongBodies(cache: TailCache, from: number, to: number, length: number): number[] {
  const wrong: number[] = [];
  for (let offset = from; offset < to; offset++) {
    const slot = cache.slotOf(offset);
    if (slot < 0) {
      wrong.push(offset);
      continue;
    }
    const start = patternStart(offset, length);
    const body = cache.buffer(slot).subarray(cache.start(slot), cache.end(slot));
    if (!sameBytes(body, PATTERN.subarray(start, start + length))) wrong.push(offset);
  }
  return wrong;
}

describe('TailCache', () => {
  it('answers -1 for every offset while empty', () => {
    const cache = new TailCache(8, 1 << 20);
    for (const offset of [-1, 0, 1, 7, 1_000]) expect(cache.slotOf(offset)).toBe(-1);
  });

  it('returns from every accessor what was added, and slotOf is -1 outside the cached run', () => {
    const cache = new TailCache(16, 1 << 20);
    const records = [100, 101, 102, 103, 104, 105].map((offset) => recordAt(offset, 10 + offset));
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

  it('keeps the values of each field exactly (priorities 0-9, kinds, large expiry times, empty type and body)', () => {
    const cache = new TailCache(32, 1 << 20);
    const records: Added[] = [];
    for (let i = 0; i < 10; i++) {
      records.push({
        offset: i,
        type: i === 0 ? '' : `orders/ü/${i}`,
        sender: i % 2 === 0 ? `client-${i}-東京` : null,
        source: PATTERN,
        start: i * 3,
        end: i * 5, // offset 0: an empty body
        attributes: i % 4,
        priority: i,
        mustParse: i % 3 === 0,
        expiresAt: i === 0 ? 0 : Number.MAX_SAFE_INTEGER - i,
      });
    }
    for (const r of records) add(cache, r);
    expectCached(cache, records);
    expect(cache.end(cache.slotOf(0)) - cache.start(cache.slotOf(0))).toBe(0);
  });

  it('copies each body: the bytes equal the source range, and changing the source afterwards changes nothing', () => {
    const cache = new TailCache(16, 1 << 20);
    // A source that is a view into a larger buffer, a body in its middle.
    const backing = new ArrayBuffer(300);
    const view = new Uint8Array(backing, 50, 200);
    for (let i = 0; i < view.length; i++) view[i] = (i * 37 + 11) & 0xff;
    const middle: Added = { ...recordAt(0), source: view, start: 20, end: 120 };
    // A source that is the whole body (start 0, end its length).
    const whole = new Uint8Array(64).map((_, i) => 255 - i);
    const all: Added = { ...recordAt(1), source: whole, start: 0, end: whole.length };
    // One scratch buffer refilled for each record, as a caller reusing its batch buffer would.
    const scratch = new Uint8Array(32);
    const reused: Added[] = [];
    const expected = new Map<number, Uint8Array>();
    add(cache, middle);
    add(cache, all);
    for (let offset = 2; offset < 6; offset++) {
      scratch.fill(offset * 10);
      const r: Added = { ...recordAt(offset), source: scratch, start: 4, end: 28 };
      add(cache, r);
      reused.push(r);
      expected.set(offset, new Uint8Array(24).fill(offset * 10));
    }
    const middleBytes = view.slice(20, 120);
    const wholeBytes = whole.slice();
    expectCached(cache, [middle, all]);
    expect(sameBytes(cachedBody(cache, 0), middleBytes)).toBe(true);

    view.fill(0);
    whole.fill(7);
    scratch.fill(1);
    expect(sameBytes(cachedBody(cache, 0), middleBytes), 'the copy of a view outlives changes to it').toBe(true);
    expect(sameBytes(cachedBody(cache, 1), wholeBytes), 'the copy of a whole buffer outlives changes to it').toBe(true);
    for (const r of reused) {
      expect(sameBytes(cachedBody(cache, r.offset), expected.get(r.offset)!), `offset ${r.offset} keeps its own bytes though its source was reused`).toBe(true);
      expect(cache.buffer(cache.slotOf(r.offset)) !== scratch).toBe(true);
    }
    // Writing into the cached copy does not write into a source either.
    cachedBody(cache, 1).fill(9);
    expect(whole.every((b) => b === 7)).toBe(true);
  });

  it('lays the records of one chunk back to back in one shared buffer, and starts a new chunk at 0 when one is full', () => {
    const cache = new TailCache(64, 8 * CHUNK);
    const lengths = [10, 0, 1, 1000, 77, 4096, 3];
    let offset = 0;
    for (const length of lengths) addAt(cache, offset++, length);
    const chunk = cache.buffer(cache.slotOf(0));
    expect(chunk.length).toBe(CHUNK);
    let at = 0;
    for (let o = 0; o < lengths.length; o++) {
      const slot = cache.slotOf(o);
      expect(cache.buffer(slot) === chunk, `offset ${o} shares the chunk`).toBe(true);
      expect(cache.start(slot), `offset ${o} follows the one before`).toBe(at);
      expect(cache.end(slot)).toBe(at + lengths[o]!);
      at = cache.end(slot);
    }
    expect(wrongBodies(cache, 1, 2, 0)).toEqual([]);
    expect(wrongBodies(cache, 3, 4, 1000)).toEqual([]);

    // Bodies of exactly a quarter chunk fill a chunk exactly: four in one, the fifth in the next.
    const exact = new TailCache(64, 8 * CHUNK);
    const buffers = range(0, 9).map((o) => addAt(exact, o, QUARTER));
    expect(new Set(buffers.slice(0, 4)).size).toBe(1);
    expect(new Set(buffers.slice(4, 8)).size).toBe(1);
    expect(buffers[4] !== buffers[0]).toBe(true);
    expect(buffers[8] !== buffers[4]).toBe(true);
    expect(buffers[8] !== buffers[0]).toBe(true);
    expect(range(0, 9).map((o) => exact.start(exact.slotOf(o)))).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0].map((i) => i * QUARTER));
    expect(range(0, 9).map((o) => exact.end(exact.slotOf(o)))).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 1].map((i) => i * QUARTER));
    expect(wrongBodies(exact, 0, 9, QUARTER)).toEqual([]);

    // A body that does not fit in what is left of the chunk goes to the next one, at 0.
    const partial = new TailCache(64, 8 * CHUNK);
    const first = addAt(partial, 0, 200_000); // 5 fit in a chunk (1,000,000 bytes)
    for (let o = 1; o < 5; o++) expect(addAt(partial, o, 200_000) === first).toBe(true);
    expect(partial.start(partial.slotOf(4))).toBe(800_000);
    const second = addAt(partial, 5, 200_000);
    expect(second !== first).toBe(true);
    expect(partial.start(partial.slotOf(5))).toBe(0);
    // Records go into the current chunk only: a small one follows the sixth, not the 48,576 bytes left in the first.
    expect(addAt(partial, 6, 10) === second).toBe(true);
    expect(partial.start(partial.slotOf(6))).toBe(200_000);
    expect(wrongBodies(partial, 0, 6, 200_000)).toEqual([]);
    expect(wrongBodies(partial, 6, 7, 10)).toEqual([]);
  });

  it('wraps around the ring when more than maxEvents are added: the oldest are dropped, the newest stay right', () => {
    const maxEvents = 8;
    const cache = new TailCache(maxEvents, 1 << 20);
    const records: Added[] = [];
    for (let offset = 0; offset < 8 * maxEvents + 3; offset++) {
      const r = recordAt(offset, 5 + (offset % 7) * 3);
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

  it('holds at most two chunks for maxBytes of 2 MiB: the oldest chunk goes with its records, and no third chunk ever appears', () => {
    const cache = new TailCache(30_000, 2 * CHUNK);
    const length = 100;
    const perChunk = Math.floor(CHUNK / length); // 10485 records, 76 bytes left over
    const seen = new Set<Uint8Array>();
    const mismatches: string[] = [];
    let offset = 0;
    const addOne = (): void => {
      add(cache, recordAt(offset, length));
      const newest = cache.slotOf(offset);
      seen.add(cache.buffer(newest));
      // Records fill chunks in order, each chunk from 0: the chunk of `offset` and the one before it are cached.
      const chunkIndex = Math.floor(offset / perChunk);
      const firstCached = Math.max(0, (chunkIndex - 1) * perChunk);
      if (cache.start(newest) !== (offset % perChunk) * length) mismatches.push(`start of ${offset}`);
      if (firstCached > 0 && cache.slotOf(firstCached - 1) !== -1) mismatches.push(`${firstCached - 1} still cached after ${offset}`);
      if (cache.slotOf(firstCached) < 0) mismatches.push(`${firstCached} not cached after ${offset}`);
      offset++;
    };

    // Two chunks' worth: nothing dropped yet, the 76 bytes left at a chunk's end unused.
    while (offset < 2 * perChunk) addOne();
    expect(mismatches).toEqual([]);
    expect(cachedOffsets(cache, 0, offset)).toHaveLength(2 * perChunk);
    expect(seen.size).toBe(2);
    const [a, b] = [...seen];
    expect(cache.buffer(cache.slotOf(0)) === a).toBe(true);
    expect(cache.buffer(cache.slotOf(perChunk)) === b).toBe(true);
    expect(cache.end(cache.slotOf(perChunk - 1))).toBe(perChunk * length);

    // The next record needs a third chunk: the first one's records go, and it is reused.
    addOne();
    expect(cache.slotOf(0)).toBe(-1);
    expect(cache.slotOf(perChunk - 1)).toBe(-1);
    expect(cache.slotOf(perChunk)).toBeGreaterThanOrEqual(0);
    expect(cache.buffer(cache.slotOf(2 * perChunk)) === a).toBe(true);
    expect(cache.start(cache.slotOf(2 * perChunk))).toBe(0);

    // Past 2 MiB added (25,000 records, 2.5 MB): the oldest gone, the newest kept, two buffers.
    while (offset < 25_000) addOne();
    expect(mismatches).toEqual([]);
    expect(cachedOffsets(cache, 0, 25_010)).toEqual(range(perChunk, 25_000));
    expect(wrongBodies(cache, perChunk, 25_000, length)).toEqual([]);
    expect(new Set(range(perChunk, 25_000).map((o) => cache.buffer(cache.slotOf(o)))).size).toBe(2);
    expect(cache.endOffset).toBe(25_000);

    // Many more chunks' worth (12 MB in all): the two chunks alternate, never a third, and the bodies stay right.
    while (offset < 120_000) {
      addOne();
      if (offset % 20_000 === 0) {
        const firstCached = (Math.floor((offset - 1) / perChunk) - 1) * perChunk;
        expect(wrongBodies(cache, firstCached, offset, length), `bodies after ${offset}`).toEqual([]);
      }
    }
    expect(mismatches).toEqual([]);
    expect(seen.size).toBe(2);
    for (const o of [offset - 1, offset - perChunk - 1]) {
      const expectedChunk = Math.floor(o / perChunk) % 2 === 0 ? a : b;
      expect(cache.buffer(cache.slotOf(o)) === expectedChunk, `offset ${o} is in the chunk its position says`).toBe(true);
    }
  });

  it('rounds maxBytes up to whole chunks, at least two', () => {
    const cases: Array<[maxBytes: number, chunks: number]> = [
      [0, 2],
      [1, 2],
      [CHUNK, 2],
      [CHUNK + 1, 2],
      [2 * CHUNK, 2],
      [2 * CHUNK + 1, 3],
      [2.5 * CHUNK, 3],
      [3 * CHUNK, 3],
      [3 * CHUNK + 1, 4],
    ];
    for (const [maxBytes, chunks] of cases) {
      const cache = new TailCache(1_000, maxBytes);
      const seen = new Set<Uint8Array>();
      // Four quarter-chunk bodies fill a chunk: `chunks` full chunks are all kept.
      for (let offset = 0; offset < 4 * chunks; offset++) seen.add(addAt(cache, offset, QUARTER));
      expect(cachedOffsets(cache, 0, 100), `maxBytes ${maxBytes}: ${chunks} chunks kept`).toEqual(range(0, 4 * chunks));
      expect(seen.size).toBe(chunks);
      // One more chunk is needed: the oldest goes, its buffer is reused.
      const reused = addAt(cache, 4 * chunks, QUARTER);
      expect(cachedOffsets(cache, 0, 100), `maxBytes ${maxBytes}: the oldest chunk goes`).toEqual(range(4, 4 * chunks + 1));
      expect(seen.has(reused)).toBe(true);
      for (let offset = 4 * chunks + 1; offset < 4 * chunks + 12; offset++) seen.add(addAt(cache, offset, QUARTER));
      expect(seen.size).toBe(chunks);
      expect(cachedOffsets(cache, 0, 100)).toEqual(range(12, 4 * chunks + 12));
      expect(wrongBodies(cache, 12, 4 * chunks + 12, QUARTER)).toEqual([]);
    }
  });

  it('reuses a chunk whose records the count bound dropped before it filled: few distinct buffers over many records', () => {
    // 10 KiB bodies: about a hundred fill a chunk; the count bound keeps only 4, the byte bound (64 chunks) is far away.
    const length = 10 * 1024;
    const small = new TailCache(4, 64 * CHUNK);
    const seen = new Set<Uint8Array>();
    for (let offset = 0; offset < 2_000; offset++) {
      seen.add(addAt(small, offset, length));
      if (offset % 250 === 0) expect(wrongBodies(small, Math.max(0, offset - 3), offset + 1, length)).toEqual([]);
    }
    expect(seen.size, 'a chunk emptied by the count bound is reused').toBeLessThanOrEqual(2);
    expect(cachedOffsets(small, 1_990, 2_010)).toEqual([1_996, 1_997, 1_998, 1_999]);
    expect(wrongBodies(small, 1_996, 2_000, length)).toEqual([]);

    // 150 records span at most three chunks at a time: never more buffers than that.
    const wider = new TailCache(150, 64 * CHUNK);
    const seenWider = new Set<Uint8Array>();
    for (let offset = 0; offset < 2_000; offset++) seenWider.add(addAt(wider, offset, length));
    expect(seenWider.size).toBeLessThanOrEqual(3);
    expect(cachedOffsets(wider, 0, 2_010)).toEqual(range(1_850, 2_000));
    expect(wrongBodies(wider, 1_850, 2_000, length)).toEqual([]);

    // A ring of one record.
    const single = new TailCache(1, 2 * CHUNK);
    const seenSingle = new Set<Uint8Array>();
    for (let offset = 0; offset < 500; offset++) {
      seenSingle.add(addAt(single, offset, 3_000 + (offset % 7) * 5_000));
      expect(cachedOffsets(single, offset - 2, offset + 2)).toEqual([offset]);
    }
    expect(seenSingle.size).toBeLessThanOrEqual(2);
    expect(wrongBodies(single, 499, 500, 3_000 + (499 % 7) * 5_000)).toEqual([]);
  });

  it('does not cache a body larger than a quarter chunk: the cache is cleared and the next offset starts a new run', () => {
    const cache = new TailCache(100, 2 * CHUNK);
    for (let offset = 0; offset < 5; offset++) addAt(cache, offset, 100);
    // Exactly a quarter chunk is cached.
    addAt(cache, 5, QUARTER);
    expect(cachedOffsets(cache, 0, 10)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(wrongBodies(cache, 5, 6, QUARTER)).toEqual([]);

    // One byte more is not, and everything before it goes.
    add(cache, recordAt(6, QUARTER + 1));
    expect(cachedOffsets(cache, 0, 20)).toEqual([]);
    // The next offset starts a new run, and the run continues.
    const next = [7, 8, 9].map((offset) => recordAt(offset, 50));
    for (const r of next) add(cache, r);
    expect(cachedOffsets(cache, 0, 20)).toEqual([7, 8, 9]);
    expectCached(cache, next);
    expect(cache.endOffset).toBe(10);

    // An oversized body while empty leaves it empty; the one after it is cached.
    const empty = new TailCache(10, 2 * CHUNK);
    add(empty, recordAt(3, CHUNK));
    expect(cachedOffsets(empty, 0, 10)).toEqual([]);
    addAt(empty, 4, 10);
    expect(cachedOffsets(empty, 0, 10)).toEqual([4]);
    expect(empty.endOffset).toBe(5);
  });

  it('has the whole budget again after an oversized body, in the chunks it already has', () => {
    const cache = new TailCache(1_000, 2 * CHUNK);
    const seen = new Set<Uint8Array>();
    for (let offset = 0; offset < 6; offset++) seen.add(addAt(cache, offset, QUARTER)); // a chunk and a half
    expect(seen.size).toBe(2);
    add(cache, recordAt(6, QUARTER + 1));
    // Two whole chunks again, none dropped, no new buffer.
    for (let offset = 7; offset < 15; offset++) seen.add(addAt(cache, offset, QUARTER));
    expect(cachedOffsets(cache, 0, 30)).toEqual(range(7, 15));
    expect(seen.size).toBe(2);
    expect(wrongBodies(cache, 7, 15, QUARTER)).toEqual([]);
    seen.add(addAt(cache, 15, QUARTER));
    expect(cachedOffsets(cache, 0, 30)).toEqual(range(11, 16));
    expect(seen.size).toBe(2);
  });

  it('restarts at a gap in offsets (forward or backward), with the whole budget', () => {
    const cache = new TailCache(8, 1 << 20);
    for (let offset = 10; offset < 15; offset++) add(cache, recordAt(offset));
    const after = recordAt(20);
    add(cache, after);
    expect(cachedOffsets(cache, 0, 40)).toEqual([20]);
    expectCached(cache, [after]);
    expect(cache.endOffset).toBe(21);
    // It continues from the new start.
    const next = [21, 22].map((offset) => recordAt(offset));
    for (const r of next) add(cache, r);
    expectCached(cache, [after, ...next]);
    // A step back (an offset already cached, or older) restarts as well.
    const back = recordAt(21, 33);
    add(cache, back);
    expect(cachedOffsets(cache, 0, 40)).toEqual([21]);
    expectCached(cache, [back]);
    expect(cache.endOffset).toBe(22);

    // After a gap, two whole chunks fit again in the two chunks there are.
    const bytes = new TailCache(1_000, 2 * CHUNK);
    const seen = new Set<Uint8Array>();
    for (let offset = 0; offset < 7; offset++) seen.add(addAt(bytes, offset, QUARTER));
    for (let offset = 100; offset < 108; offset++) seen.add(addAt(bytes, offset, QUARTER));
    expect(cachedOffsets(bytes, 0, 200)).toEqual(range(100, 108));
    expect(seen.size).toBe(2);
    expect(wrongBodies(bytes, 100, 108, QUARTER)).toEqual([]);
  });

  it('restarts at a gap after having wrapped, with the whole ring available again', () => {
    const cache = new TailCache(4, 1 << 20);
    for (let offset = 0; offset < 7; offset++) add(cache, recordAt(offset));
    const records = [100, 101, 102, 103, 104, 105].map((offset) => recordAt(offset));
    for (const r of records) add(cache, r);
    expect(cachedOffsets(cache, 0, 200)).toEqual([102, 103, 104, 105]);
    expectCached(cache, records.slice(2));
  });

  it('dropBelow forgets the records below an offset and keeps the rest', () => {
    const cache = new TailCache(8, 1 << 20);
    const records = [0, 1, 2, 3, 4, 5].map((offset) => recordAt(offset));
    for (const r of records) add(cache, r);
    cache.dropBelow(0);
    expect(cachedOffsets(cache, 0, 10)).toEqual([0, 1, 2, 3, 4, 5]);
    cache.dropBelow(3);
    expect(cachedOffsets(cache, 0, 10)).toEqual([3, 4, 5]);
    expectCached(cache, records.slice(3));
    expect(cache.endOffset).toBe(6);
    // Adding continues the run.
    const r6 = recordAt(6);
    add(cache, r6);
    expectCached(cache, [...records.slice(3), r6]);

    // Below everything: empty, and the end offset stays where the run ended.
    cache.dropBelow(100);
    expect(cachedOffsets(cache, 0, 200)).toEqual([]);
    expect(cache.endOffset).toBe(7);
    // An empty cache takes any offset as its new start.
    const r50 = recordAt(50);
    add(cache, r50);
    expectCached(cache, [r50]);
    expect(cache.endOffset).toBe(51);
  });

  it('dropBelow frees the chunks it empties for reuse', () => {
    const cache = new TailCache(1_000, 2 * CHUNK);
    const buffers = range(0, 8).map((offset) => addAt(cache, offset, QUARTER)); // two full chunks
    const [a, b] = [buffers[0]!, buffers[4]!];
    cache.dropBelow(4); // the first chunk is emptied
    expect(cachedOffsets(cache, 0, 20)).toEqual([4, 5, 6, 7]);
    // The next chunk's worth goes into the first chunk, and nothing is dropped for it.
    for (let offset = 8; offset < 12; offset++) expect(addAt(cache, offset, QUARTER) === a).toBe(true);
    expect(cachedOffsets(cache, 0, 20)).toEqual(range(4, 12));
    expect(wrongBodies(cache, 4, 12, QUARTER)).toEqual([]);
    // Then the second chunk is the oldest: it goes and is reused.
    expect(addAt(cache, 12, QUARTER) === b).toBe(true);
    expect(cachedOffsets(cache, 0, 20)).toEqual(range(8, 13));

    // A chunk left partly used by dropBelow still holds its records, and goes with them when the bound is reached.
    const partly = new TailCache(1_000, 2 * CHUNK);
    const chunks = range(0, 8).map((offset) => addAt(partly, offset, QUARTER));
    partly.dropBelow(2);
    expect(cachedOffsets(partly, 0, 20)).toEqual(range(2, 8));
    expect(addAt(partly, 8, QUARTER) === chunks[0]).toBe(true);
    expect(cachedOffsets(partly, 0, 20)).toEqual(range(4, 9));

    // Below everything: the whole budget is there again, in the same two buffers.
    const all = new TailCache(1_000, 2 * CHUNK);
    const seen = new Set(range(0, 7).map((offset) => addAt(all, offset, QUARTER)));
    all.dropBelow(1_000);
    expect(cachedOffsets(all, 0, 20)).toEqual([]);
    expect(all.endOffset).toBe(7);
    for (let offset = 7; offset < 15; offset++) seen.add(addAt(all, offset, QUARTER));
    expect(cachedOffsets(all, 0, 20)).toEqual(range(7, 15));
    expect(seen.size).toBe(2);
    expect(wrongBodies(all, 7, 15, QUARTER)).toEqual([]);
  });

  it('clear empties the cache and lets it start anywhere, with the whole budget in the chunks it has', () => {
    const cache = new TailCache(1_000, 2 * CHUNK);
    const seen = new Set(range(0, 7).map((offset) => addAt(cache, offset, QUARTER)));
    const slots = [2, 3, 4].map((offset) => cache.slotOf(offset));
    cache.clear();
    expect(cachedOffsets(cache, 0, 20)).toEqual([]);
    // The cleared slots no longer point at a chunk.
    for (const slot of slots) expect(cache.buffer(slot) === null).toBe(true);
    // Two whole chunks again, none dropped, no new buffer.
    const fresh = range(40, 48).map((offset) => recordAt(offset, QUARTER));
    for (const r of fresh) {
      add(cache, r);
      seen.add(cache.buffer(cache.slotOf(r.offset)));
    }
    expect(cachedOffsets(cache, 0, 100)).toEqual(range(40, 48));
    expectCached(cache, fresh);
    expect(seen.size).toBe(2);
    expect(cache.endOffset).toBe(48);
    cache.clear();
    cache.clear(); // twice is harmless
    expect(cache.slotOf(47)).toBe(-1);
    const r = recordAt(3, 20);
    add(cache, r);
    expectCached(cache, [r]);
    expect(cache.endOffset).toBe(4);
  });

  it('endOffset is the offset after the newest cached record', () => {
    const cache = new TailCache(3, 1 << 20);
    add(cache, recordAt(41));
    expect(cache.endOffset).toBe(42);
    for (let offset = 42; offset < 50; offset++) add(cache, recordAt(offset));
    expect(cache.endOffset).toBe(50);
    expect(cachedOffsets(cache, 0, 60)).toEqual([47, 48, 49]);
    // Dropping by the byte bound does not move it either.
    const bytes = new TailCache(100, 2 * CHUNK);
    for (let offset = 0; offset < 13; offset++) add(bytes, recordAt(offset, QUARTER));
    expect(bytes.endOffset).toBe(13);
    expect(cachedOffsets(bytes, 0, 20)).toEqual(range(8, 13));
  });

  it('agrees with a model of chunks over random runs of adds, gaps, oversized bodies, dropBelow and clear', () => {
    interface ModelRecord {
      offset: number;
      chunk: number;
      at: number;
      length: number;
    }
    const configs: Array<[maxEvents: number, maxBytes: number, seed: number]> = [
      [2, 2 * CHUNK, 1],
      [3, 0, 2],
      [7, 2 * CHUNK, 3],
      [64, 2 * CHUNK, 4],
      [64, 3 * CHUNK, 5],
      [3_000, 2 * CHUNK, 6],
      [3_000, 2 * CHUNK + 1, 7],
    ];
    for (const [maxEvents, maxBytes, seed] of configs) {
      const random = prng(seed);
      const maxChunks = Math.max(2, Math.ceil(maxBytes / CHUNK));
      const cache = new TailCache(maxEvents, maxBytes);
      // The model: the cached records oldest first, the chunk being filled and how much of it is used.
      let records: ModelRecord[] = [];
      let current = -1;
      let used = 0;
      let chunks = 0;
      const modelClear = (): void => {
        records = [];
        used = 0;
      };
      const lengths = new Map<number, number>();
      const seen = new Set<Uint8Array>();
      let offset = 0;
      const problems: string[] = [];
      const where = (step: number): string => `maxEvents ${maxEvents}, maxBytes ${maxBytes}, step ${step}`;

      for (let step = 0; step < 1_500 && problems.length === 0; step++) {
        const op = random();
        if (op < 0.02) {
          const below = offset - Math.floor(random() * (records.length + 3));
          cache.dropBelow(below);
          while (records.length > 0 && records[0]!.offset < below) records.shift();
          if (records.length === 0) used = 0;
        } else if (op < 0.025) {
          cache.clear();
          modelClear();
        } else {
          if (op < 0.04) offset += random() < 0.5 ? 2 + Math.floor(random() * 10) : -Math.floor(random() * 5) - 1; // a gap
          const size = random();
          const length =
            size < 0.6
              ? Math.floor(random() * 300)
              : size < 0.85
                ? 1_000 + Math.floor(random() * 40_000)
                : size < 0.97
                  ? 100_000 + Math.floor(random() * (QUARTER - 100_000 + 1))
                  : QUARTER + 1 + Math.floor(random() * 50_000);
          add(cache, recordAt(offset, length));
          lengths.set(offset, length);
          // The model's add.
          if (records.length > 0 && records[0]!.offset + records.length !== offset) modelClear();
          if (length > QUARTER) {
            modelClear();
          } else {
            let at: number;
            if (current >= 0 && used + length <= CHUNK) {
              at = used;
              used += length;
            } else {
              while (new Set(records.map((r) => r.chunk)).size >= maxChunks) records.shift();
              current = chunks++;
              at = 0;
              used = length;
            }
            if (records.length === maxEvents) records.shift();
            records.push({ offset, chunk: current, at, length });
          }
          offset++;
        }

        // The cache holds exactly the model's records, where the model says, in as many buffers as the model has chunks.
        const lo = records.length > 0 ? records[0]!.offset : offset;
        for (const o of [lo - 2, lo - 1, offset, offset + 1]) if (cache.slotOf(o) !== -1) problems.push(`${where(step)}: ${o} is cached`);
        if (records.length > 0 && cache.endOffset !== offset) problems.push(`${where(step)}: endOffset ${cache.endOffset}, not ${offset}`);
        const bufferOf = new Map<number, Uint8Array>();
        const chunkOf = new Map<Uint8Array, number>();
        for (const r of records) {
          const slot = cache.slotOf(r.offset);
          if (slot < 0) {
            problems.push(`${where(step)}: ${r.offset} is not cached`);
            continue;
          }
          const buffer = cache.buffer(slot);
          seen.add(buffer);
          if (cache.start(slot) !== r.at || cache.end(slot) !== r.at + r.length) {
            problems.push(`${where(step)}: ${r.offset} at [${cache.start(slot)}, ${cache.end(slot)}), not [${r.at}, ${r.at + r.length})`);
          }
          if ((bufferOf.get(r.chunk) ?? buffer) !== buffer || (chunkOf.get(buffer) ?? r.chunk) !== r.chunk) {
            problems.push(`${where(step)}: ${r.offset} is not in the buffer of its chunk ${r.chunk}`);
          }
          bufferOf.set(r.chunk, buffer);
          chunkOf.set(buffer, r.chunk);
          if (cache.type(slot) !== `type/${r.offset % 5}` || cache.priority(slot) !== r.offset % 10) problems.push(`${where(step)}: ${r.offset} has wrong fields`);
        }
        if (seen.size > maxChunks) problems.push(`${where(step)}: ${seen.size} buffers, more than ${maxChunks} chunks`);
        // The bodies: the newest each step, all of them now and then.
        const check = step % 100 === 0 ? records : records.slice(-1);
        for (const r of check) {
          if (cache.slotOf(r.offset) < 0) continue;
          if (wrongBodies(cache, r.offset, r.offset + 1, lengths.get(r.offset)!).length > 0) problems.push(`${where(step)}: body of ${r.offset}`);
        }
      }
      expect(problems.slice(0, 5)).toEqual([]);
      expect(seen.size).toBeGreaterThan(0);
    }
  });
});

describe('TailCache runs (a publish batch copied at once)', () => {
  /** A batch of `count` bodies of 10 to 300 bytes back to back in one buffer, as the engine packs them. */
  function batchOf(count: number, seed: number): { bytes: Uint8Array; ends: number[] } {
    const random = prng(seed);
    const ends: number[] = [];
    let total = 0;
    for (let i = 0; i < count; i++) ends.push((total += 10 + Math.floor(random() * 290)));
    const bytes = new Uint8Array(total);
    for (let i = 0; i < total; i++) bytes[i] = Math.floor(random() * 256);
    return { bytes, ends };
  }

  function addRun(cache: TailCache, base: number, batch: { bytes: Uint8Array; ends: number[] }): number {
    const at = cache.copyRun(base, batch.bytes, 0, batch.ends.at(-1)!);
    if (at < 0) return at;
    batch.ends.forEach((end, i) => {
      const start = i === 0 ? 0 : batch.ends[i - 1]!;
      cache.addCopied(base + i, `t/${i % 3}`, `p${i % 2}`, at + start, at + end, 0, i % 10, i % 4 === 0, i);
    });
    return at;
  }

  function expectRecord(cache: TailCache, offset: number, batch: { bytes: Uint8Array; ends: number[] }, i: number): void {
    const slot = cache.slotOf(offset);
    expect(slot, `offset ${offset}`).toBeGreaterThanOrEqual(0);
    const start = i === 0 ? 0 : batch.ends[i - 1]!;
    expect(sameBytes(cache.buffer(slot).subarray(cache.start(slot), cache.end(slot)), batch.bytes.subarray(start, batch.ends[i]))).toBe(true);
    expect([cache.type(slot), cache.sender(slot), cache.priority(slot), cache.mustParse(slot), cache.expiresAt(slot)]).toEqual([`t/${i % 3}`, `p${i % 2}`, i % 10, i % 4 === 0, i]);
  }

  it('keeps each record of runs, across chunks, as a copy of its batch', () => {
    const cache = new TailCache(100_000, 4 * CHUNK);
    const batches = Array.from({ length: 40 }, (_, b) => batchOf(1000, 100 + b));
    let base = 0;
    const bases: number[] = [];
    for (const batch of batches) {
      bases.push(base);
      expect(addRun(cache, base, batch)).toBeGreaterThanOrEqual(0);
      base += batch.ends.length;
    }
    expect(cache.endOffset).toBe(base);
    // The newest batches are kept whole and right (the byte bound dropped the oldest ones).
    for (let b = batches.length - 3; b < batches.length; b++) for (let i = 0; i < 1000; i++) expectRecord(cache, bases[b]! + i, batches[b]!, i);
    expect(cache.slotOf(0)).toBe(-1);
    // Changing a batch afterwards does not change the cache.
    batches.at(-1)!.bytes.fill(0);
    expect(sameBytes(cache.buffer(cache.slotOf(base - 1)).subarray(cache.start(cache.slotOf(base - 1)), cache.end(cache.slotOf(base - 1))), new Uint8Array(cache.end(cache.slotOf(base - 1)) - cache.start(cache.slotOf(base - 1))))).toBe(false);
  });

  it('restarts the run at a gap before a run, and keeps runs after single adds', () => {
    const cache = new TailCache(1000, 2 * CHUNK);
    add(cache, recordAt(0));
    add(cache, recordAt(1));
    const batch = batchOf(50, 7);
    addRun(cache, 10, batch); // offsets 2..9 never came: the cache restarts at 10
    expect(cache.slotOf(1)).toBe(-1);
    for (let i = 0; i < 50; i++) expectRecord(cache, 10 + i, batch, i);
    add(cache, recordAt(60));
    expect(cache.slotOf(60)).toBeGreaterThanOrEqual(0);
    expectRecord(cache, 59, batch, 49);
  });

  it('holds the count bound inside a run: the newest records of the run stay right', () => {
    const cache = new TailCache(64, 2 * CHUNK);
    const batch = batchOf(500, 9);
    addRun(cache, 0, batch);
    for (let i = 0; i < 436; i++) expect(cache.slotOf(i)).toBe(-1);
    for (let i = 436; i < 500; i++) expectRecord(cache, i, batch, i);
    const next = batchOf(300, 10);
    addRun(cache, 500, next);
    for (let i = 236; i < 300; i++) expectRecord(cache, 500 + i, next, i);
  });

  it('answers -1 for a run larger than a chunk (its records are added one by one instead)', () => {
    const cache = new TailCache(1000, 2 * CHUNK);
    expect(cache.copyRun(0, PATTERN, 0, CHUNK + 1)).toBe(-1);
    expect(cache.copyRun(0, PATTERN, 0, CHUNK)).toBe(0);
  });

  it('refuses a record of a run out of order (a bug, not data)', () => {
    const cache = new TailCache(1000, 2 * CHUNK);
    const at = cache.copyRun(5, PATTERN, 0, 20);
    cache.addCopied(5, 't', null, at, at + 10, 0, 4, false, 0);
    expect(() => cache.addCopied(7, 't', null, at + 10, at + 20, 0, 4, false, 0)).toThrow(/does not follow/);
  });
});
