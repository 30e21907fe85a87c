import { describe, expect, it } from 'vitest';
import { HeldTimes } from '../../src/observability/held-times.js';
import { Prng } from '../helpers/prng.js';

/** What `take` found, or undefined: read through the fields right after the call. */
function take(held: HeldTimes, offset: number): [number, number] | undefined {
  return held.take(offset) ? [held.handedAt, held.publishedAt] : undefined;
}

/** The reference: a Map keeps insertion order; delete + set moves a key to the newest end. */
class Model {
  readonly map = new Map<number, [number, number]>();

  constructor(private readonly bound: number) {}

  get size(): number {
    return this.map.size;
  }

  set(offset: number, handedAt: number, publishedAt: number): void {
    this.map.delete(offset);
    this.map.set(offset, [handedAt, publishedAt]);
    if (this.map.size > this.bound) this.map.delete(this.map.keys().next().value!);
  }

  take(offset: number): [number, number] | undefined {
    const times = this.map.get(offset);
    if (times) this.map.delete(offset);
    return times;
  }

  clear(): void {
    this.map.clear();
  }
}

/** Offsets above any a scenario uses, for probing the order of what is held. */
const FRESH = 2 ** 50;

/**
 * Both hold the same offsets with the same times: take each (oldest first) and put it back with
 * the same times, which leaves the order as it was in both.
 */
function checkContents(held: HeldTimes, model: Model, where: string): void {
  if (held.size !== model.size) throw new Error(`${where}: size ${held.size}, model ${model.size}`);
  for (const [offset, [handedAt, publishedAt]] of [...model.map]) {
    const got = take(held, offset);
    if (!got || got[0] !== handedAt || got[1] !== publishedAt) {
      throw new Error(`${where}: offset ${offset} gave ${JSON.stringify(got)}, model [${handedAt},${publishedAt}]`);
    }
    held.set(offset, handedAt, publishedAt);
  }
  if (held.size !== model.size) throw new Error(`${where}: size ${held.size} after the check, model ${model.size}`);
}

/**
 * Both evict in the same order: fill up to the bound with fresh offsets, then each further fresh
 * offset must evict exactly the model's next-oldest entry. Ends with both holding only fresh offsets.
 */
function checkOrder(held: HeldTimes, model: Model, bound: number, where: string): void {
  checkContents(held, model, where);
  const old = [...model.map.keys()];
  let fresh = FRESH;
  while (model.size < bound) {
    held.set(fresh, -1, -2);
    model.set(fresh++, -1, -2);
  }
  for (const offset of old) {
    held.set(fresh, -1, -2);
    model.set(fresh++, -1, -2);
    if (held.size !== bound) throw new Error(`${where}: size ${held.size} while evicting, bound ${bound}`);
    // Not held any more (a take of an unheld offset changes nothing).
    if (held.take(offset)) throw new Error(`${where}: offset ${offset} survived ${bound} newer entries`);
  }
  for (const offset of [...model.map.keys()]) {
    if (!held.take(offset)) throw new Error(`${where}: fresh offset ${offset} was evicted too early`);
    model.take(offset);
  }
  if (held.size !== 0) throw new Error(`${where}: size ${held.size} after draining`);
}

class Checked {
  readonly held: HeldTimes;
  readonly model: Model;
  ops = 0;

  constructor(
    readonly bound: number,
    readonly label: string,
  ) {
    this.held = new HeldTimes(bound);
    this.model = new Model(bound);
  }

  private where(): string {
    return `${this.label} op ${this.ops}`;
  }

  set(offset: number, handedAt: number, publishedAt: number): void {
    this.ops++;
    this.held.set(offset, handedAt, publishedAt);
    this.model.set(offset, handedAt, publishedAt);
    this.checkSize();
  }

  take(offset: number): boolean {
    this.ops++;
    const got = take(this.held, offset);
    const want = this.model.take(offset);
    if (got?.[0] !== want?.[0] || got?.[1] !== want?.[1]) {
      throw new Error(`${this.where()}: take(${offset}) gave ${JSON.stringify(got)}, model ${JSON.stringify(want)}`);
    }
    this.checkSize();
    return want !== undefined;
  }

  clear(): void {
    this.ops++;
    this.held.clear();
    this.model.clear();
    this.checkSize();
  }

  private checkSize(): void {
    if (this.held.size !== this.model.size) throw new Error(`${this.where()}: size ${this.held.size}, model ${this.model.size}`);
  }

  checkContents(): void {
    checkContents(this.held, this.model, this.where());
  }

  finish(): void {
    checkOrder(this.held, this.model, this.bound, `${this.label} end`);
  }
}

/** Offsets from a small range (collisions, re-insertions), some moved above 2^32 or 2^40. */
function smallRange(bound: number, seed: number, ops: number): Checked {
  const rng = new Prng(seed);
  const run = new Checked(bound, `small range, bound ${bound}, seed ${seed}`);
  let range = bound + 1;
  let setShare = 0.5;
  for (let i = 0; i < ops; i++) {
    if (i % 2_000 === 0) range = rng.pick([1, 2, bound, bound + 1, 2 * bound + 3, 4 * bound + 8]);
    // Phases of mostly sets (evictions), balance, and mostly takes (few live entries, held long).
    if (i % 5_000 === 0) setShare = rng.pick([0.2, 0.5, 0.8]);
    const low = rng.int(0, range - 1);
    const r = rng.next();
    // Same low bits with a high part: XOR-folding collisions in the index.
    const offset = r < 0.15 ? low + 2 ** 32 * rng.int(1, 3) : r < 0.2 ? low + 2 ** 40 : low;
    const op = rng.next();
    if (op < setShare) run.set(offset, i, i * 2 + 0.5);
    else if (op < 0.9998) run.take(offset);
    else run.clear();
    if (i % 10_007 === 0) run.checkContents();
  }
  run.finish();
  return run;
}

/**
 * The common pattern: increasing offsets handed out and acked mostly in order, while a few are
 * held long (nacked, slow) and many newer ones come and go past them, and some are redelivered.
 */
function slidingWindow(bound: number, seed: number, ops: number, base: number): Checked {
  const rng = new Prng(seed);
  const run = new Checked(bound, `sliding window, bound ${bound}, seed ${seed}`);
  let next = base;
  let ackCursor = base;
  const sticky: number[] = [];
  const stickySet = new Set<number>();
  const recent: number[] = [];
  let target = bound;
  for (let i = 0; i < ops; i++) {
    if (i % 3_000 === 0) target = Math.max(1, Math.round(bound * rng.pick([0.1, 0.3, 0.6, 0.9, 0.9, 1.5, 3])));
    const handedAt = 1_700_000_000_000 + i;
    const publishedAt = handedAt - rng.int(0, 5_000);
    const inFlight = next - ackCursor;
    const op = rng.next();
    if (op < (inFlight < target ? 0.6 : 0.3)) {
      const offset = next++;
      run.set(offset, handedAt, publishedAt);
      if (recent.length < 256) recent.push(offset);
      else recent[rng.int(0, 255)] = offset;
      if (rng.next() < 0.01 && sticky.length < Math.max(2, bound / 4)) {
        sticky.push(offset);
        stickySet.add(offset);
      }
    } else if (op < 0.85) {
      // Acked in order, skipping the ones held long.
      while (ackCursor < next && stickySet.has(ackCursor)) ackCursor++;
      run.take(ackCursor < next ? ackCursor++ : next);
    } else if (op < 0.9) {
      if (recent.length > 0) run.take(rng.pick(recent)); // held or already gone
    } else if (op < 0.94) {
      if (recent.length > 0) run.set(rng.pick(recent), handedAt, publishedAt); // redelivered: the newest now
    } else if (op < 0.967) {
      if (sticky.length > 0 && rng.next() < 0.1) {
        // Any of them, not the oldest first: the oldest may stay at the ring's head a long time.
        const at = rng.int(0, sticky.length - 1);
        const offset = sticky[at]!;
        sticky[at] = sticky[sticky.length - 1]!;
        sticky.pop();
        stickySet.delete(offset);
        run.take(offset);
      }
    } else if (op < 0.985) {
      run.take(rng.next() < 0.5 ? next + rng.int(0, 10) : Math.max(0, base - rng.int(1, 100))); // never handed
    } else if (op < 0.99995) {
      ackCursor = Math.max(base, Math.min(next, ackCursor + rng.int(-20, 20))); // duplicate or skipped acks
    } else {
      run.clear();
    }
    if (i % 9_973 === 0) run.checkContents();
  }
  run.finish();
  return run;
}

describe('HeldTimes', () => {
  it('refuses a bound that is not a positive integer', () => {
    for (const bound of [0, -1, 1.5, Number.NaN]) expect(() => new HeldTimes(bound)).toThrow(RangeError);
  });

  it('gives back the times set for an offset, once', () => {
    const held = new HeldTimes(16);
    held.set(5, 1_000, 900);
    held.set(6, 2_000, 1_900);
    expect(held.size).toBe(2);
    expect(held.take(5)).toBe(true);
    expect([held.handedAt, held.publishedAt]).toEqual([1_000, 900]);
    expect(held.size).toBe(1);
    expect(held.take(5)).toBe(false);
    expect(held.take(6)).toBe(true);
    expect([held.handedAt, held.publishedAt]).toEqual([2_000, 1_900]);
    expect(held.size).toBe(0);
  });

  it('answers false for an offset never set, and leaves the last times alone', () => {
    const held = new HeldTimes(4);
    expect(held.take(0)).toBe(false);
    held.set(1, 10, 9);
    expect(held.take(2)).toBe(false);
    expect(held.take(1)).toBe(true);
    expect(held.take(1)).toBe(false);
    expect([held.handedAt, held.publishedAt]).toEqual([10, 9]);
    expect(held.size).toBe(0);
  });

  it('replaces the times of an offset set again and makes it the newest', () => {
    const held = new HeldTimes(3);
    held.set(1, 10, 1);
    held.set(2, 20, 2);
    held.set(3, 30, 3);
    held.set(1, 11, 1.5); // 1 is now the newest: 2 goes first
    expect(held.size).toBe(3);
    held.set(4, 40, 4);
    expect(held.size).toBe(3);
    expect(held.take(2)).toBe(false);
    held.set(5, 50, 5); // 3 goes next
    expect(held.take(3)).toBe(false);
    expect(take(held, 1)).toEqual([11, 1.5]);
    expect(take(held, 4)).toEqual([40, 4]);
    expect(take(held, 5)).toEqual([50, 5]);
  });

  it('evicts the oldest live entry past the bound, skipping taken ones', () => {
    const held = new HeldTimes(3);
    for (const offset of [10, 11, 12]) held.set(offset, offset, offset);
    expect(held.take(10)).toBe(true); // the oldest is gone: nothing to evict for the next
    held.set(13, 13, 13);
    expect(held.size).toBe(3);
    held.set(14, 14, 14); // evicts 11
    expect(held.size).toBe(3);
    expect(held.take(11)).toBe(false);
    expect(held.take(12)).toBe(true); // taken from the middle
    held.set(15, 15, 15);
    held.set(16, 16, 16); // evicts 13
    expect(held.take(13)).toBe(false);
    expect([take(held, 14), take(held, 15), take(held, 16)]).toEqual([
      [14, 14],
      [15, 15],
      [16, 16],
    ]);
  });

  it('holds one entry with a bound of 1', () => {
    const held = new HeldTimes(1);
    held.set(1, 1, 1);
    held.set(2, 2, 2);
    expect(held.size).toBe(1);
    expect(held.take(1)).toBe(false);
    held.set(2, 3, 3);
    expect(take(held, 2)).toEqual([3, 3]);
    expect(held.size).toBe(0);
  });

  it('clears, and is usable afterwards', () => {
    const held = new HeldTimes(8);
    for (let offset = 0; offset < 6; offset++) held.set(offset, offset, offset);
    held.clear();
    expect(held.size).toBe(0);
    for (let offset = 0; offset < 6; offset++) expect(held.take(offset)).toBe(false);
    held.set(3, 30, 31);
    expect(held.size).toBe(1);
    expect(take(held, 3)).toEqual([30, 31]);
  });

  it('keeps offset 0 and offsets above 2^32 apart, also those sharing their low 32 bits', () => {
    const held = new HeldTimes(64);
    const offsets = [0, 1, 2 ** 32, 2 ** 32 + 1, 2 ** 33, 2 ** 33 + 1, 2 ** 32 * 3, 2 ** 40 + 5, 5, 2 ** 52 + 1, Number.MAX_SAFE_INTEGER, 0xffff_ffff];
    offsets.forEach((offset, i) => held.set(offset, i * 10, i * 10 + 1));
    expect(held.size).toBe(offsets.length);
    // Taken in an order other than the one set, so the index's deletions shift entries around.
    for (const i of [3, 0, 7, 11, 1, 2, 10, 5, 4, 6, 9, 8]) {
      expect(take(held, offsets[i]!), `offset ${offsets[i]}`).toEqual([i * 10, i * 10 + 1]);
      expect(held.take(offsets[i]!)).toBe(false);
    }
    expect(held.size).toBe(0);
  });

  it('keeps a long-held entry and the order while many newer ones come and go past it', () => {
    // Bound 4: the ring has 8 positions, so this fills it with dead ones behind the held ones many times.
    const held = new HeldTimes(4);
    held.set(0, 100, 99);
    held.set(1, 101, 98);
    for (let offset = 2; offset < 1_000; offset++) {
      held.set(offset, offset, offset);
      expect(held.take(offset)).toBe(true);
      expect(held.size).toBe(2);
    }
    held.set(1_000, 1, 1);
    held.set(1_001, 2, 2);
    held.set(1_002, 3, 3); // past the bound: 0 is still the oldest
    expect(held.take(0)).toBe(false);
    expect(take(held, 1)).toEqual([101, 98]);
    expect([take(held, 1_000), take(held, 1_001), take(held, 1_002)]).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it('agrees with a Map model over offsets from small ranges', () => {
    let ops = 0;
    for (const [bound, seed] of [
      [1, 11],
      [3, 12],
      [64, 13],
      [1000, 14],
    ] as const) {
      ops += smallRange(bound, seed, 75_000).ops;
    }
    expect(ops).toBeGreaterThanOrEqual(200_000);
  });

  it('agrees with a Map model over a sliding window of offsets acked mostly in order', () => {
    let ops = 0;
    for (const [bound, seed, base] of [
      [1, 21, 0],
      [3, 22, 2 ** 32 - 5_000],
      [64, 23, 0],
      [1000, 24, 2 ** 32 - 20_000],
      [1000, 25, 2 ** 45],
    ] as const) {
      ops += slidingWindow(bound, seed, 60_000, base).ops;
    }
    expect(ops).toBeGreaterThanOrEqual(200_000);
  });
});
