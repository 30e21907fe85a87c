import { describe, expect, it } from 'vitest';
import { OffsetRangeSet } from '../../../src/engine/shard/offset-range-set.js';
import { Prng } from '../../helpers/prng.js';

/** The ranges a set of offsets must collapse to: sorted, disjoint, not touching. */
function rangesOf(offsets: Iterable<number>): Array<[number, number]> {
  const sorted = [...new Set(offsets)].sort((a, b) => a - b);
  const ranges: Array<[number, number]> = [];
  for (const offset of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === offset) last[1] = offset + 1;
    else ranges.push([offset, offset + 1]);
  }
  return ranges;
}

describe('OffsetRangeSet', () => {
  it('keeps in-order adds as one range', () => {
    const set = new OffsetRangeSet();
    for (let offset = 100; offset < 10_100; offset++) set.add(offset);
    expect(set.toJSON()).toEqual([[100, 10_100]]);
    expect(set.has(99)).toBe(false);
    expect(set.has(100)).toBe(true);
    expect(set.has(10_099)).toBe(true);
    expect(set.has(10_100)).toBe(false);
  });

  it('merges ranges when a gap is filled from either side or in the middle', () => {
    const set = new OffsetRangeSet();
    for (const offset of [10, 12, 14, 11]) set.add(offset);
    expect(set.toJSON()).toEqual([[10, 13], [14, 15]]);
    set.add(13);
    expect(set.toJSON()).toEqual([[10, 15]]);
    set.add(8);
    set.add(9); // joins the next range from below
    set.add(5);
    expect(set.toJSON()).toEqual([[5, 6], [8, 15]]);
    set.add(10); // already present: no change
    expect(set.toJSON()).toEqual([[5, 6], [8, 15]]);
  });

  it('matches a model of random adds, membership and drops (seed 7)', () => {
    const rng = new Prng(7);
    for (let round = 0; round < 50; round++) {
      const set = new OffsetRangeSet();
      const model = new Set<number>();
      for (let i = 0; i < 300; i++) {
        const offset = rng.int(0, 400);
        set.add(offset);
        model.add(offset);
      }
      expect(set.toJSON(), `round ${round}`).toEqual(rangesOf(model));
      for (let offset = -1; offset <= 401; offset++) expect(set.has(offset), `round ${round} offset ${offset}`).toBe(model.has(offset));
      const cut = rng.int(0, 400);
      set.dropBelow(cut);
      expect(set.toJSON(), `round ${round} drop below ${cut}`).toEqual(rangesOf([...model].filter((o) => o >= cut)));
      expect(set.rangeCount).toBe(rangesOf([...model].filter((o) => o >= cut)).length);
    }
  });

  it('round-trips through JSON', () => {
    const set = new OffsetRangeSet();
    for (const offset of [1, 2, 3, 7, 9, 10]) set.add(offset);
    const copy = OffsetRangeSet.fromJSON(JSON.parse(JSON.stringify(set.toJSON())) as Array<[number, number]>);
    expect(copy.toJSON()).toEqual([[1, 4], [7, 8], [9, 11]]);
    copy.add(8);
    expect(copy.toJSON()).toEqual([[1, 4], [7, 11]]);
  });

  it('drops a range partly below the cut to start at the cut', () => {
    const set = OffsetRangeSet.fromJSON([[0, 10], [20, 30]]);
    set.dropBelow(5);
    expect(set.toJSON()).toEqual([[5, 10], [20, 30]]);
    set.dropBelow(10);
    expect(set.toJSON()).toEqual([[20, 30]]);
    set.dropBelow(100);
    expect(set.toJSON()).toEqual([]);
  });
  it('deletes single offsets, splitting and trimming ranges, and clears', () => {
    const set = new OffsetRangeSet();
    for (let o = 10; o < 20; o++) set.add(o);
    set.delete(15);
    expect(set.toJSON()).toEqual([[10, 15], [16, 20]]);
    set.delete(10);
    set.delete(19);
    expect(set.toJSON()).toEqual([[11, 15], [16, 19]]);
    set.delete(16);
    set.delete(17);
    set.delete(18);
    expect(set.toJSON()).toEqual([[11, 15]]);
    set.delete(3);
    expect(set.has(12)).toBe(true);
    set.clear();
    expect(set.toJSON()).toEqual([]);
    expect(set.has(12)).toBe(false);
  });
});
