import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../../src/engine/errors.js';
import { LANE_SEGMENT_BYTES, PriorityLanes, type LaneEntry } from '../../../src/engine/shard/priority-lanes.js';
import { Prng } from '../../helpers/prng.js';
import { TempDirs } from '../../helpers/temp-dirs.js';

const temps = new TempDirs();
afterEach(() => temps.cleanup());

interface Indexed {
  mainOffset: number;
  priority: number;
  stream: number;
}

/** Entries for main offsets [from, to): priority and stream follow a fixed pattern of the offset. */
function mixed(from: number, to: number): Indexed[] {
  const entries: Indexed[] = [];
  for (let o = from; o < to; o++) entries.push({ mainOffset: o, priority: o % 10, stream: 100 + (o % 3) });
  return entries;
}

/** What a lane of `priority` must hold, given everything indexed. */
function expectedLane(entries: Indexed[], priority: number, stream?: number): LaneEntry[] {
  const lane = entries.filter((e) => e.priority === priority).map((e, position) => ({ position, mainOffset: e.mainOffset, stream: e.stream }));
  return stream === undefined ? lane : lane.filter((e) => e.stream === stream);
}

/** Every entry of a lane, read in pages of `page`. */
function readAll(lanes: PriorityLanes, priority: number, page = 777, stream?: number): LaneEntry[] {
  const all: LaneEntry[] = [];
  let position = 0;
  for (;;) {
    const entries = lanes.read(priority, position, page, stream);
    if (entries.length === 0) return all;
    all.push(...entries);
    position = entries[entries.length - 1]!.position + 1;
  }
}

function laneDirs(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => name.startsWith('lane-')).sort();
}

function addInBatches(lanes: PriorityLanes, entries: Indexed[], size: number): void {
  for (let i = 0; i < entries.length; i += size) lanes.add(entries.slice(i, i + size));
}

const NON_DEFAULT = [9, 8, 7, 6, 5, 3, 2, 1, 0];

describe('PriorityLanes', () => {
  it('indexes non-default priorities into lanes in main-offset order, filterable by stream', async () => {
    const dir = await temps.make('lanes-');
    const lanes = await PriorityLanes.open(dir);
    const entries = mixed(0, 2_000);
    addInBatches(lanes, entries, 300);
    lanes.markSeen(2_000);
    await lanes.settled();

    expect(lanes.priorities).toEqual(NON_DEFAULT);
    expect(laneDirs(dir)).toEqual(NON_DEFAULT.map((p) => `lane-${p}`).sort());
    for (const p of NON_DEFAULT) {
      expect(readAll(lanes, p), `lane ${p}`).toEqual(expectedLane(entries, p));
      expect(lanes.end(p)).toBe(200);
      for (const stream of [100, 101, 102]) {
        expect(readAll(lanes, p, 7, stream), `lane ${p} stream ${stream}`).toEqual(expectedLane(entries, p, stream));
      }
    }
    // Paging: at most `max`, continuing from a position.
    expect(lanes.read(7, 0, 5).map((e) => e.mainOffset)).toEqual([7, 17, 27, 37, 47]);
    expect(lanes.read(7, 5, 3).map((e) => e.position)).toEqual([5, 6, 7]);
    expect(lanes.read(7, 200, 10)).toEqual([]);
    // The default priority has no lane.
    expect(lanes.read(4, 0, 10)).toEqual([]);
    expect(lanes.end(4)).toBe(0);
    expect(lanes.positionFor(4, 0)).toBe(0);
    expect(lanes.visibleTo).toBe(2_000);
    await lanes.close();
  });

  it('creates lanes only for the priorities used', async () => {
    const dir = await temps.make('lanes-');
    const lanes = await PriorityLanes.open(dir);
    lanes.add([
      { mainOffset: 3, priority: 9, stream: 1 },
      { mainOffset: 4, priority: 4, stream: 1 },
      { mainOffset: 8, priority: 1, stream: 2 },
      { mainOffset: 9, priority: 9, stream: 2 },
    ]);
    await lanes.settled();
    expect(lanes.priorities).toEqual([9, 1]);
    expect(laneDirs(dir)).toEqual(['lane-1', 'lane-9']);
    expect(lanes.read(9, 0, 10)).toEqual([
      { position: 0, mainOffset: 3, stream: 1 },
      { position: 1, mainOffset: 9, stream: 2 },
    ]);
    expect(lanes.read(3, 0, 10)).toEqual([]);
    expect(lanes.positionFor(3, 5)).toBe(0);
    await lanes.close();
  });

  it('finds the lane position for a main offset across 12,000 entries', async () => {
    const dir = await temps.make('lanes-');
    const lanes = await PriorityLanes.open(dir);
    const rng = new Prng(20240611);
    const entries: Indexed[] = [];
    let offset = 0;
    for (let i = 0; i < 12_000; i++) {
      offset += rng.int(1, 5);
      entries.push({ mainOffset: offset, priority: rng.int(0, 9), stream: rng.int(0, 2) });
    }
    addInBatches(lanes, entries, 500);
    await lanes.settled();
    const perLane = new Map(NON_DEFAULT.map((p) => [p, entries.filter((e) => e.priority === p).map((e) => e.mainOffset)]));
    for (let q = 0; q < 2_000; q++) {
      const p = NON_DEFAULT[rng.int(0, NON_DEFAULT.length - 1)]!;
      const mainOffset = rng.int(0, offset + 10);
      const offsets = perLane.get(p)!;
      const expected = offsets.findIndex((o) => o >= mainOffset);
      expect(lanes.positionFor(p, mainOffset), `lane ${p}, main offset ${mainOffset}`).toBe(expected < 0 ? offsets.length : expected);
    }
    for (const [p, offsets] of perLane) {
      expect(lanes.end(p)).toBe(offsets.length);
      expect(lanes.positionFor(p, offsets[offsets.length - 1]!)).toBe(offsets.length - 1);
      expect(lanes.positionFor(p, offset + 1)).toBe(offsets.length);
    }
    await lanes.close();
  });

  it('keeps entries and the checkpoint across reopen, and re-adding a range does not duplicate', async () => {
    const dir = await temps.make('lanes-');
    let lanes = await PriorityLanes.open(dir);
    expect(lanes.indexedTo).toBe(0);
    const entries = mixed(0, 8_000);
    addInBatches(lanes, entries.slice(0, 5_000), 1_000);
    lanes.markSeen(5_000);
    await lanes.checkpoint();
    expect(lanes.indexedTo).toBe(5_000);
    addInBatches(lanes, entries.slice(5_000), 1_000);
    lanes.markSeen(8_000);
    await lanes.close();

    lanes = await PriorityLanes.open(dir);
    expect(lanes.indexedTo).toBe(5_000);
    expect(lanes.visibleTo).toBe(5_000);
    for (const p of NON_DEFAULT) expect(readAll(lanes, p)).toEqual(expectedLane(entries, p));
    // A rebuild re-adds from the checkpoint, and even from the start: nothing is indexed twice.
    addInBatches(lanes, entries.slice(5_000), 700);
    addInBatches(lanes, entries, 2_500);
    lanes.markSeen(8_000);
    await lanes.checkpoint();
    for (const p of NON_DEFAULT) expect(readAll(lanes, p)).toEqual(expectedLane(entries, p));
    await lanes.close();

    lanes = await PriorityLanes.open(dir);
    expect(lanes.indexedTo).toBe(8_000);
    const more = mixed(8_000, 8_100);
    lanes.add(more);
    await lanes.settled();
    for (const p of NON_DEFAULT) expect(readAll(lanes, p)).toEqual(expectedLane([...entries, ...more], p));
    await lanes.close();
  });

  it('after a crash that cut a lane tail, a rebuild from indexedTo restores it exactly', async () => {
    const dir = await temps.make('lanes-');
    const lanes = await PriorityLanes.open(dir);
    const entries = mixed(0, 6_000);
    addInBatches(lanes, entries.slice(0, 3_000), 500);
    lanes.markSeen(3_000);
    await lanes.checkpoint();
    addInBatches(lanes, entries.slice(3_000), 500);
    lanes.markSeen(6_000);
    await lanes.settled();
    // The state a killed process leaves (lane logs not closed), with the last 40 records of lane 9
    // lost and a torn half record in their place.
    const crashed = await temps.make('lanes-crash-');
    fs.cpSync(dir, crashed, { recursive: true });
    await lanes.close();
    const segment = path.join(crashed, 'lane-9', fs.readdirSync(path.join(crashed, 'lane-9')).find((n) => n.endsWith('.log'))!);
    fs.truncateSync(segment, (600 - 40) * 32 + 17);

    const reopened = await PriorityLanes.open(crashed);
    expect(reopened.indexedTo).toBe(3_000);
    expect(reopened.end(9)).toBe(560);
    addInBatches(reopened, entries.slice(3_000), 1_000);
    reopened.markSeen(6_000);
    await reopened.settled();
    for (const p of NON_DEFAULT) expect(readAll(reopened, p), `lane ${p}`).toEqual(expectedLane(entries, p));
    await reopened.close();
  });

  // Cut after the first unchecked entry, and exactly at it (the hole then starts where the check starts).
  it.each([30_000, 10_000])('deletes a lane with a hole past the checkpoint (cut at %i) and resets indexedTo, so a rebuild refills it', async (cut) => {
    const dir = await temps.make('lanes-');
    const lanes = await PriorityLanes.open(dir);
    const perSegment = LANE_SEGMENT_BYTES / 32;
    const total = perSegment + 5_000;
    const lane9: Indexed[] = [];
    for (let o = 0; o < total; o++) lane9.push({ mainOffset: 2 * o + 1, priority: 9, stream: o % 2 });
    lanes.add([{ mainOffset: 0, priority: 2, stream: 5 }]);
    addInBatches(lanes, lane9.slice(0, 10_000), 10_000);
    lanes.markSeen(20_000);
    await lanes.checkpoint();
    addInBatches(lanes, lane9.slice(10_000), 20_000);
    lanes.markSeen(2 * total);
    await lanes.settled();
    const crashed = await temps.make('lanes-crash-');
    fs.cpSync(dir, crashed, { recursive: true });
    await lanes.close();
    // A power loss dropped the unsynced end of lane 9's first (sealed) segment; the second survived.
    const laneDir = path.join(crashed, 'lane-9');
    const logs = fs.readdirSync(laneDir).filter((n) => n.endsWith('.log')).sort();
    expect(logs.length).toBeGreaterThanOrEqual(2);
    fs.truncateSync(path.join(laneDir, logs[0]!), cut * 32);

    const reopened = await PriorityLanes.open(crashed);
    expect(reopened.indexedTo).toBe(0);
    expect(reopened.priorities).toEqual([2]);
    expect(fs.readdirSync(crashed).filter((n) => n.startsWith('lane-'))).toEqual(['lane-2']);
    // The rebuild from 0 refills lane 9 completely and leaves lane 2 as it was.
    reopened.add([{ mainOffset: 0, priority: 2, stream: 5 }]);
    addInBatches(reopened, lane9, 50_000);
    reopened.markSeen(2 * total);
    await reopened.checkpoint();
    expect(reopened.end(9)).toBe(total);
    expect(reopened.end(2)).toBe(1);
    const tail = reopened.read(9, perSegment - 2, 4);
    expect(tail.map((e) => e.mainOffset)).toEqual([-2, -1, 0, 1].map((d) => 2 * (perSegment + d) + 1));
    expect(reopened.positionFor(9, 2 * 30_000)).toBe(30_000);
    await reopened.close();
    const again = await PriorityLanes.open(crashed);
    expect(again.indexedTo).toBe(2 * total);
    expect(again.end(9)).toBe(total);
    await again.close();
  });

  it('a stream-filtered read finds a match past a long stretch of other streams', async () => {
    const dir = await temps.make('lanes-');
    const lanes = await PriorityLanes.open(dir);
    // More than the storage reader skips in one call (32 MiB of 32-byte lane records).
    const others = 1_100_000;
    for (let from = 0; from < others; from += 100_000) {
      const batch: Indexed[] = [];
      for (let o = from; o < Math.min(others, from + 100_000); o++) batch.push({ mainOffset: o, priority: 8, stream: 1 });
      lanes.add(batch);
      // Adds to a lane whose log is still being created are queued (bounded): let the first settle.
      if (from === 0) await lanes.settled();
    }
    lanes.add([{ mainOffset: others, priority: 8, stream: 2 }]);
    await lanes.settled();
    expect(lanes.read(8, 0, 10, 2)).toEqual([{ position: others, mainOffset: others, stream: 2 }]);
    expect(lanes.read(8, 0, 10, 3)).toEqual([]);
    await lanes.close();
  });

  it('never reports as visible an entry that cannot be read yet', async () => {
    const dir = await temps.make('lanes-');
    const lanes = await PriorityLanes.open(dir);
    lanes.markSeen(10);
    lanes.add([{ mainOffset: 10, priority: 7, stream: 1 }]);
    lanes.markSeen(11);
    // The lane's log is still being created: the entry is not readable and visibleTo stops before it.
    expect(lanes.read(7, 0, 10)).toEqual([]);
    expect(lanes.visibleTo).toBe(10);
    await lanes.settled();
    expect(lanes.read(7, 0, 10)).toEqual([{ position: 0, mainOffset: 10, stream: 1 }]);
    expect(lanes.visibleTo).toBe(11);
    for (let o = 11; o < 200; o++) {
      lanes.add([{ mainOffset: o, priority: 7, stream: 1 }]);
      lanes.markSeen(o + 1);
      const readable = new Set(readAll(lanes, 7).map((e) => e.mainOffset));
      for (let m = 10; m < lanes.visibleTo; m++) expect(readable.has(m), `main offset ${m}`).toBe(true);
    }
    await lanes.settled();
    expect(lanes.visibleTo).toBe(200);
    await lanes.close();
  });

  it('after a lane fails, stops visibility before its entries and refuses further work until reopened', async () => {
    const dir = await temps.make('lanes-');
    let lanes = await PriorityLanes.open(dir);
    lanes.add([{ mainOffset: 1, priority: 2, stream: 0 }]);
    lanes.markSeen(2);
    await lanes.checkpoint();
    // A file where lane 7's directory must go: creating that lane fails.
    fs.writeFileSync(path.join(dir, 'lane-7'), 'in the way');
    lanes.add([
      { mainOffset: 5, priority: 7, stream: 0 },
      { mainOffset: 6, priority: 2, stream: 0 },
    ]);
    lanes.markSeen(10);
    const failure = await lanes.settled().then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(EngineError);
    expect((failure as EngineError).code).toBe('STORAGE_FAILED');
    expect(lanes.visibleTo).toBe(5);
    expect(() => lanes.add([{ mainOffset: 11, priority: 2, stream: 0 }])).toThrow(failure as EngineError);
    await expect(lanes.checkpoint()).rejects.toBe(failure);
    expect(lanes.read(2, 0, 10).map((e) => e.mainOffset)).toEqual([1, 6]);
    await lanes.close();

    fs.rmSync(path.join(dir, 'lane-7'));
    lanes = await PriorityLanes.open(dir);
    expect(lanes.indexedTo).toBe(2);
    // The rebuild replays the same main-log records from indexedTo (offsets 2-4 and 7-9 are default).
    lanes.add([
      { mainOffset: 5, priority: 7, stream: 0 },
      { mainOffset: 6, priority: 2, stream: 0 },
      { mainOffset: 11, priority: 2, stream: 0 },
    ]);
    lanes.markSeen(12);
    await lanes.checkpoint();
    expect(lanes.indexedTo).toBe(12);
    expect(lanes.read(7, 0, 10).map((e) => e.mainOffset)).toEqual([5]);
    expect(lanes.read(2, 0, 10).map((e) => e.mainOffset)).toEqual([1, 6, 11]);
    await lanes.close();
  });

  it('refuses malformed entries with typed errors and adds nothing from them', async () => {
    const dir = await temps.make('lanes-');
    const lanes = await PriorityLanes.open(dir);
    const refused = (call: () => unknown): EngineError => {
      try {
        call();
      } catch (error) {
        expect(error).toBeInstanceOf(EngineError);
        return error as EngineError;
      }
      throw new Error('expected an EngineError');
    };
    expect(refused(() => lanes.add([{ mainOffset: 1, priority: 10, stream: 0 }])).code).toBe('INTERNAL');
    expect(refused(() => lanes.add([{ mainOffset: 1, priority: 2.5, stream: 0 }])).field).toBe('priority');
    expect(refused(() => lanes.add([{ mainOffset: 1, priority: -1, stream: 0 }])).code).toBe('INTERNAL');
    expect(refused(() => lanes.add([{ mainOffset: 1, priority: 3, stream: 2 ** 32 }])).code).toBe('INTERNAL');
    const outOfOrder = [
      { mainOffset: 5, priority: 3, stream: 0 },
      { mainOffset: 5, priority: 6, stream: 0 },
    ];
    expect(refused(() => lanes.add(outOfOrder)).code).toBe('INTERNAL');
    expect(refused(() => lanes.read(11, 0, 1)).code).toBe('INTERNAL');
    expect(refused(() => lanes.read(3, -1, 1)).code).toBe('INTERNAL');
    expect(refused(() => lanes.positionFor(3, -1)).code).toBe('INTERNAL');
    await lanes.settled();
    expect(lanes.priorities).toEqual([]);
    expect(laneDirs(dir)).toEqual([]);
    await lanes.close();
    expect(refused(() => lanes.add([])).code).toBe('INTERNAL');
  });
});
