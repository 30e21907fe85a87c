import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ScheduleIndex, type ScheduleEntry } from '../../../src/engine/shard/schedule-index.js';
import { Prng } from '../../helpers/prng.js';
import { TempDirs } from '../../helpers/temp-dirs.js';

const temps = new TempDirs();
afterEach(() => temps.cleanup());

const T0 = 1_700_000_000_000; // a fake clock's start; every call passes its time explicitly
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const byKey = (a: ScheduleEntry, b: ScheduleEntry) => a.dueAt - b.dueAt || a.source - b.source;
const fileName = (bucketStartMs: number) => `${String(bucketStartMs).padStart(16, '0')}.sched`;
const schedFiles = (dir: string) => fs.readdirSync(dir).filter((name) => name.endsWith('.sched')).sort();

function errorCode(action: () => void): string | undefined {
  try {
    action();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

/** Take everything due by `nowMs`, in batches of `batch`. */
function drain(index: ScheduleIndex, nowMs: number, batch = 1000): ScheduleEntry[] {
  const out: ScheduleEntry[] = [];
  for (let taken = index.takeDue(nowMs, batch); taken.length > 0; taken = index.takeDue(nowMs, batch)) {
    out.push(...taken);
  }
  return out;
}

describe('ScheduleIndex', () => {
  it('returns due entries in (dueAt, source) order, ties broken by source, and only up to now', async () => {
    const dir = await temps.make('schedule-');
    const index = await ScheduleIndex.open(dir);
    const added = [
      { dueAt: T0 + 5_000, source: 3 },
      { dueAt: T0 + 5_000, source: 1 },
      { dueAt: T0 + 4_000, source: 9 },
      { dueAt: T0 + 5_000, source: 2 },
      { dueAt: T0 + 60_000, source: 0 },
    ];
    for (const e of added) index.add(e.dueAt, e.source);
    expect(index.pending).toBe(5);
    expect(index.nextDue(T0)).toBe(T0 + 4_000);
    expect(index.takeDue(T0 + 3_999, 10)).toEqual([]);
    expect(index.takeDue(T0 + 5_000, 2)).toEqual([added[2], added[1]]);
    expect(index.lastFired).toEqual(added[1]);
    expect(index.takeDue(T0 + 5_000, 10)).toEqual([added[3], added[0]]);
    expect(index.nextDue(T0 + 5_000)).toBe(T0 + 60_000);
    index.add(T0 + 5_000, 2); // a re-add of a fired key is dropped
    expect(index.takeDue(T0 + 60_000, 10)).toEqual([added[4]]);
    expect(index.nextDue(T0 + 60_000)).toBeNull();
    expect(index.pending).toBe(0);
    await index.close();
  });

  it('keeps far-future entries out of memory and returns all of them in order as time advances', async () => {
    const dir = await temps.make('schedule-');
    const options = { bucketMs: 10 * MINUTE, lookaheadMs: 1_000, maxBufferedEntries: 10_000 };
    const index = await ScheduleIndex.open(dir, options);
    const prng = new Prng(7);
    const expected: ScheduleEntry[] = [];
    for (let source = 0; source < 200_000; source++) {
      const entry = { dueAt: T0 + prng.int(0, 3 * DAY), source };
      expected.push(entry);
      index.add(entry.dueAt, entry.source);
      if (source % 1_000 === 0) expect(index.inMemory).toBeLessThanOrEqual(options.maxBufferedEntries);
    }
    expected.sort(byKey);
    expect(index.pending).toBe(200_000);
    await index.checkpoint(); // flushes the write buffer: from here on memory holds only what is near
    expect(index.inMemory).toBe(0);
    expect(index.nextDue(T0)).toBe(expected[0]!.dueAt);

    const out: ScheduleEntry[] = [];
    let peak = 0;
    for (let now = T0; out.length < expected.length; now += 10 * MINUTE) {
      out.push(...drain(index, now));
      peak = Math.max(peak, index.inMemory);
      const next = index.nextDue(now);
      if (out.length < expected.length) expect(next).toBeGreaterThan(now);
      else expect(next).toBeNull();
    }
    expect(out.length).toBe(expected.length);
    expect(out.findIndex((e, i) => byKey(e, expected[i]!) !== 0)).toBe(-1);
    // ~463 entries per 10-minute bucket: memory holds the bucket at hand, never the days ahead.
    expect(peak).toBeLessThan(1_000);
    expect(index.pending).toBe(0);
    await index.close();
  });

  it('after downtime, hands out overdue entries in batches holding about one bucket beyond the preload bound in memory', async () => {
    const dir = await temps.make('schedule-');
    let index = await ScheduleIndex.open(dir, { bucketMs: 10 * MINUTE });
    const expected: ScheduleEntry[] = []; // a day of 10-minute buckets, ~139 entries each
    for (let source = 0; source < 20_000; source++) expected.push({ dueAt: T0 + (source % 144) * 10 * MINUTE, source });
    for (const e of expected) index.add(e.dueAt, e.source);
    await index.close();
    expected.sort(byKey);

    index = await ScheduleIndex.open(dir, { bucketMs: 10 * MINUTE, preloadMaxEntries: 100 });
    expect(index.pending).toBe(20_000);
    const out: ScheduleEntry[] = [];
    let peak = 0;
    for (let taken = index.takeDue(T0 + 2 * DAY, 5); taken.length > 0; taken = index.takeDue(T0 + 2 * DAY, 5)) {
      out.push(...taken);
      peak = Math.max(peak, index.inMemory);
    }
    expect(out).toEqual(expected);
    expect(peak).toBeLessThanOrEqual(100 + 2 * Math.ceil(20_000 / 144));
    await index.close();
  });

  it('reopens after checkpoint and close with its pending entries, lastFired and indexedTo', async () => {
    const dir = await temps.make('schedule-');
    let index = await ScheduleIndex.open(dir, { bucketMs: 1_000 });
    expect(index.indexedTo).toBe(0);
    for (let source = 0; source < 100; source++) index.add(T0 + source * 500, source);
    index.markSeen(100);
    const first = index.takeDue(T0 + 9_999, 1_000);
    expect(first).toHaveLength(20);
    await index.checkpoint();
    expect(index.indexedTo).toBe(100);
    index.add(T0 + 100_000, 100);
    index.markSeen(101);
    await index.close();

    index = await ScheduleIndex.open(dir, { bucketMs: 1_000 });
    expect(index.indexedTo).toBe(101);
    expect(index.lastFired).toEqual({ dueAt: T0 + 9_500, source: 19 });
    expect(index.pending).toBe(81);
    const rest = drain(index, T0 + 200_000);
    expect(rest.map((e) => e.source)).toEqual(Array.from({ length: 81 }, (_, i) => 20 + i));
    await index.close();
  });

  it('after a crash, re-adds and fired copies yield each entry once and none at or below lastFired', async () => {
    const dir = await temps.make('schedule-');
    const options = { bucketMs: 1_000, maxBufferedEntries: 50 };
    const prng = new Prng(11);
    const all: ScheduleEntry[] = [];
    for (let source = 0; source < 600; source++) all.push({ dueAt: T0 + prng.int(0, 60_000), source });
    let index = await ScheduleIndex.open(dir, options);
    all.forEach((e) => index.add(e.dueAt, e.source));
    const fired = index.takeDue(T0 + 20_000, 1_000);
    expect(fired.length).toBeGreaterThan(100);
    // Crash: no checkpoint, so some entries reached their files and the rest died in the write buffer.
    expect(schedFiles(dir).length).toBeGreaterThan(0);

    index = await ScheduleIndex.open(dir, options);
    expect(index.indexedTo).toBe(0);
    expect(index.lastFired).toBeNull();
    // Rescan of the log from indexedTo: the copies say what fired, and every source is re-added,
    // half of them before anything is loaded and half after (straight into the heap).
    const lastCopy = fired[fired.length - 1]!;
    index.noteFired(fired[3]!);
    index.noteFired(lastCopy);
    index.noteFired(fired[0]!); // lower than known: ignored
    all.slice(0, 300).forEach((e) => index.add(e.dueAt, e.source));
    expect(index.nextDue(T0 + 20_000)).toBeGreaterThan(lastCopy.dueAt - 1);
    all.slice(300).forEach((e) => index.add(e.dueAt, e.source));
    index.markSeen(600);

    const out = drain(index, T0 + 60_000, 7);
    const isAfter = (e: ScheduleEntry) => byKey(e, lastCopy) > 0;
    expect(out).toEqual(all.filter(isAfter).sort(byKey));
    expect(out.length + fired.length).toBe(all.length);
    await index.close();
  });

  it('dedupes entries written twice (before a crash and by the rescan) by source when their bucket loads', async () => {
    const dir = await temps.make('schedule-');
    let index = await ScheduleIndex.open(dir, { bucketMs: 1_000 });
    for (let source = 0; source < 50; source++) index.add(T0 + 10_000 + source, source);
    await index.checkpoint();
    // Crash, then a rescan re-adds every source; its checkpoint writes them to the file a second time.
    index = await ScheduleIndex.open(dir, { bucketMs: 1_000 });
    for (let source = 0; source < 50; source++) index.add(T0 + 10_000 + source, source);
    await index.checkpoint();
    expect(index.pending).toBe(100); // counted from the files, before loading
    expect(index.takeDue(T0 + 10_000, 1)).toEqual([{ dueAt: T0 + 10_000, source: 0 }]);
    expect(index.inMemory).toBe(49);
    expect(drain(index, T0 + 20_000).map((e) => e.source)).toEqual(Array.from({ length: 49 }, (_, i) => i + 1));
    await index.close();
  });

  it('ignores torn trailing bytes of a bucket file and keeps appending whole entries after them', async () => {
    const dir = await temps.make('schedule-');
    let index = await ScheduleIndex.open(dir, { bucketMs: 1_000 });
    for (let source = 0; source < 10; source++) index.add(T0 + 100_000 + source, source);
    await index.close();
    const [file] = schedFiles(dir);
    fs.appendFileSync(path.join(dir, file!), Buffer.from([1, 2, 3, 4, 5, 6, 7]));

    index = await ScheduleIndex.open(dir, { bucketMs: 1_000 });
    expect(index.pending).toBe(10);
    index.add(T0 + 100_500, 10);
    await index.close();
    index = await ScheduleIndex.open(dir, { bucketMs: 1_000 });
    const out = drain(index, T0 + 200_000);
    expect(out.map((e) => e.source)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(out[10]).toEqual({ dueAt: T0 + 100_500, source: 10 });
    await index.close();
  });

  it('deletes bucket files once every entry in them has fired', async () => {
    const dir = await temps.make('schedule-');
    const index = await ScheduleIndex.open(dir, { bucketMs: 1_000 });
    // Three buckets of ten: T0+10_000.., T0+11_010.., T0+12_020..
    for (let source = 0; source < 30; source++) {
      index.add(T0 + 10_000 + Math.floor(source / 10) * 1_000 + source, source);
    }
    await index.checkpoint();
    expect(schedFiles(dir)).toHaveLength(3);
    expect(index.takeDue(T0 + 11_015, 100)).toHaveLength(16); // the first bucket all fired, the second partly
    await index.checkpoint();
    expect(schedFiles(dir)).toEqual([fileName(T0 + 11_000), fileName(T0 + 12_000)]);
    expect(drain(index, T0 + 20_000)).toHaveLength(14);
    await index.checkpoint();
    expect(schedFiles(dir)).toEqual([]);
    index.add(T0 + 20_500, 30); // near now: straight to memory, and to a file for the checkpoint
    await index.checkpoint();
    expect(schedFiles(dir)).toEqual([fileName(T0 + 20_000)]);
    expect(index.takeDue(T0 + 20_500, 10)).toEqual([{ dueAt: T0 + 20_500, source: 30 }]);
    await index.checkpoint();
    expect(schedFiles(dir)).toEqual([]);
    await index.close();
  });

  it('finds the next due entry 30 days ahead without loading it', async () => {
    const dir = await temps.make('schedule-');
    let index = await ScheduleIndex.open(dir);
    const far = T0 + 30 * DAY + 123;
    index.add(far, 1);
    index.add(far + 5, 2);
    await index.close();

    index = await ScheduleIndex.open(dir);
    expect(index.nextDue(T0)).toBe(far);
    expect(index.inMemory).toBe(0);
    index.add(T0 + 2_000, 3); // a nearer entry in a bucket of its own comes first
    expect(index.nextDue(T0)).toBe(T0 + 2_000);
    expect(index.takeDue(T0 + 2_000, 10)).toEqual([{ dueAt: T0 + 2_000, source: 3 }]);
    expect(index.nextDue(T0 + 2_000)).toBe(far);
    index.add(far - 50, 4); // into the bucket just looked at
    expect(index.nextDue(T0 + 2_000)).toBe(far - 50);
    expect(index.takeDue(far - 51, 10)).toEqual([]);
    expect(index.takeDue(far + 5, 10)).toEqual([
      { dueAt: far - 50, source: 4 },
      { dueAt: far, source: 1 },
      { dueAt: far + 5, source: 2 },
    ]);
    await index.close();
  });

  it('starts from scratch on a corrupt checkpoint, keeping the bucket files', async () => {
    const dir = await temps.make('schedule-');
    let index = await ScheduleIndex.open(dir);
    index.add(T0 + 1_000, 1);
    index.add(T0 + 2_000, 2);
    index.markSeen(3);
    await index.close();
    fs.writeFileSync(path.join(dir, 'checkpoint.json'), '{"v":1,"indexedTo":"x"');

    index = await ScheduleIndex.open(dir);
    expect(index.indexedTo).toBe(0);
    expect(index.lastFired).toBeNull();
    index.noteFired({ dueAt: T0 + 1_000, source: 1 }); // what a rescan of the copies finds
    expect(drain(index, T0 + 5_000)).toEqual([{ dueAt: T0 + 2_000, source: 2 }]);
    await index.close();
  });

  it('keeps the bucket width it was created with, whatever a later open asks for', async () => {
    const dir = await temps.make('schedule-');
    let index = await ScheduleIndex.open(dir, { bucketMs: 1_000 });
    index.add(T0 + 1_500, 1);
    index.add(T0 + 61_500, 2);
    await index.close();
    index = await ScheduleIndex.open(dir, { bucketMs: MINUTE });
    expect(index.nextDue(T0)).toBe(T0 + 1_500);
    expect(drain(index, T0 + DAY)).toEqual([
      { dueAt: T0 + 1_500, source: 1 },
      { dueAt: T0 + 61_500, source: 2 },
    ]);
    await index.close();
  });

  it('reports a bucket file it cannot write as STORAGE_FAILED', async () => {
    const dir = await temps.make('schedule-');
    const index = await ScheduleIndex.open(dir, { bucketMs: 1_000, maxBufferedEntries: 2 });
    fs.mkdirSync(path.join(dir, fileName(T0 + 5_000))); // a directory where the bucket file belongs
    index.add(T0 + 5_100, 1);
    await expect(index.checkpoint()).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    index.add(T0 + 5_200, 2);
    expect(errorCode(() => index.add(T0 + 5_300, 3))).toBe('STORAGE_FAILED'); // the buffer bound forces a flush
  });

  it('rejects bad entries, use after close and an unusable directory with typed errors', async () => {
    const dir = await temps.make('schedule-');
    const index = await ScheduleIndex.open(dir);
    expect(errorCode(() => index.add(Number.NaN, 1))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => index.add(T0, -1))).toBe('INVALID_ARGUMENT');
    await index.close();
    expect(errorCode(() => index.add(T0, 1))).toBe('ENGINE_CLOSED');
    const notADir = path.join(dir, 'checkpoint.json');
    await expect(ScheduleIndex.open(notADir)).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
  });
});
