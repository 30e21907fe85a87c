import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Log } from '../../native-free-storage/index.js';
import { appendAll } from '../helpers/append-pipeline.js';
import { type ExpectedRecord, expectedOffsetForTime, expectSameRecord } from '../helpers/expected-log.js';
import type { AppendRecordInput } from '../helpers/log-types.js';
import { Prng } from '../helpers/prng.js';
import { copyDir, listSegments, type SegmentFiles } from '../helpers/segment-files.js';
import { TempDirs } from '../helpers/temp-dirs.js';

/** Small segments and a dense sparse index so every index file has many entries. */
const OPTIONS = { segmentBytes: 32 * 1024, indexIntervalBytes: 256, fsync: 'interval', fsyncIntervalMs: 1 } as const;

interface Answers {
  byOffset: Array<{ offset: number; timestamp: number } | undefined>;
  byTime: Array<number | null>;
}

const fixtureDirs = new TempDirs();
const workDirs = new TempDirs();
let sourceDir: string;
let expected: ExpectedRecord[];
let timeQueries: number[];
let answersBefore: Answers;

/** Every offset lookup and a spread of time lookups: the answers that must survive any index damage. */
function lookUpEverything(log: Log): Answers {
  return {
    byOffset: expected.map((r) => {
      const got = log.read(r.offset, { maxRecords: 1 })[0];
      return got && { offset: got.offset, timestamp: got.timestamp };
    }),
    byTime: timeQueries.map((t) => log.offsetForTime(t)),
  };
}

beforeAll(async () => {
  sourceDir = await fixtureDirs.make('nfs-index-src-');
  const rng = new Prng(41);
  const t0 = Date.now();
  let clock = t0;
  const batches: AppendRecordInput[][] = Array.from({ length: 400 }, () =>
    Array.from({ length: rng.int(1, 8) }, () => {
      clock += rng.int(0, 4);
      return { body: rng.bytes(rng.int(0, 500)), timestamp: clock, stream: rng.int(0, 2) };
    }),
  );
  const log = await Log.open(sourceDir, OPTIONS);
  const model = await appendAll(log, batches, 16);
  expected = model.records(0);
  timeQueries = [t0 - 1, clock + 1];
  for (let i = 0; i < expected.length; i += 7) {
    const t = (expected[i] as ExpectedRecord).timestamp;
    timeQueries.push(t - 1, t, t + 1);
  }
  answersBefore = lookUpEverything(log);
  await log.close();
  expect((await listSegments(sourceDir)).length, 'fixture spans many segments').toBeGreaterThan(8);
});

afterAll(async () => {
  await fixtureDirs.cleanup();
});

afterEach(async () => {
  await workDirs.cleanup();
});

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Entry width of an index kind, inferred as the gcd of its file sizes (entries are fixed-width;
 * with many files of different entry counts the gcd is the width).
 */
async function entryWidth(paths: string[]): Promise<number> {
  const sizes = (await Promise.all(paths.map(async (p) => (await stat(p)).size))).filter((s) => s > 0);
  const width = sizes.reduce((acc, s) => gcd(acc, s), 0);
  expect(width, 'index files hold fixed-width entries').toBeGreaterThanOrEqual(4);
  expect(width).toBeLessThanOrEqual(64);
  return width;
}

type Damage = (path: string, width: number) => Promise<void>;

const damages: Array<{ name: string; damage: Damage }> = [
  { name: 'deleted', damage: (path) => rm(path) },
  {
    name: 'overwritten with random bytes',
    damage: async (path) => writeFile(path, new Prng(path.length).bytes((await stat(path)).size || 64)),
  },
  {
    name: 'truncated to a non-multiple of the entry width',
    damage: async (path) => {
      const size = (await stat(path)).size;
      expect(size, `${path} has entries to damage`).toBeGreaterThanOrEqual(2);
      await truncate(path, size % 2 === 0 ? size - 1 : size - 2);
    },
  },
  {
    name: 'first and last entries swapped',
    damage: async (path, width) => {
      const bytes = await readFile(path);
      const count = bytes.length / width;
      expect(count, `${path} has at least two entries`).toBeGreaterThanOrEqual(2);
      const first = Buffer.from(bytes.subarray(0, width));
      bytes.copy(bytes, 0, (count - 1) * width, count * width);
      first.copy(bytes, (count - 1) * width);
      await writeFile(path, bytes);
    },
  },
];

/** Damages the index files of the first, a middle, and the last (active) segment. */
async function damageIndexes(dir: string, damage: Damage): Promise<SegmentFiles[]> {
  const segments = await listSegments(dir);
  const indexWidth = await entryWidth(segments.map((s) => s.indexPath));
  const timeWidth = await entryWidth(segments.map((s) => s.timeIndexPath));
  const victims = [0, Math.floor(segments.length / 2), segments.length - 1].map((i) => segments[i] as SegmentFiles);
  for (const segment of victims) {
    await damage(segment.indexPath, indexWidth);
    await damage(segment.timeIndexPath, timeWidth);
  }
  return victims;
}

describe('index rebuild', () => {
  it('the fixture answers match the model (so equal answers after damage mean correct answers)', () => {
    answersBefore.byOffset.forEach((got, i) => expect(got, `offset ${i}`).toEqual({ offset: i, timestamp: expected[i]?.timestamp }));
    answersBefore.byTime.forEach((got, i) =>
      expect(got, `time ${timeQueries[i]}`).toBe(expectedOffsetForTime(expected, timeQueries[i] as number)),
    );
  });

  describe.each([
    { keepCheckpoint: true, label: 'clean checkpoint in place' },
    { keepCheckpoint: false, label: 'checkpoint deleted' },
  ])('$label', ({ keepCheckpoint }) => {
    it.each(damages)('index files $name: reopen rebuilds them and every lookup is unchanged', async ({ damage }) => {
      const dir = await workDirs.make('nfs-index-');
      await copyDir(sourceDir, dir);
      await damageIndexes(dir, damage);
      if (!keepCheckpoint) await rm(`${dir}/checkpoint`);

      const log = await Log.open(dir, OPTIONS);
      try {
        expect(log.recovery.indexesRebuilt, 'damaged indexes are rebuilt').toBeGreaterThan(0);
        expect(log.nextOffset).toBe(expected.length);
        expect(log.recovery.truncatedBytes, 'index damage never costs log data').toBe(0);
        expect(lookUpEverything(log)).toEqual(answersBefore);
        for (let i = 0; i < expected.length; i += 97) {
          expectSameRecord(log.read(i, { maxRecords: 1 })[0], expected[i] as ExpectedRecord);
        }
      } finally {
        await log.close();
      }

      // The rebuilt state persists: a second reopen gives the same answers, and new appends are indexed.
      const again = await Log.open(dir, OPTIONS);
      try {
        expect(lookUpEverything(again)).toEqual(answersBefore);
        const t = (expected[expected.length - 1] as ExpectedRecord).timestamp + 10;
        await again.append([{ body: Buffer.from('after rebuild'), timestamp: t }]);
        expect(again.offsetForTime(t)).toBe(expected.length);
        expect(again.read(expected.length)[0]?.body.toString()).toBe('after rebuild');
      } finally {
        await again.close();
      }
    });
  });
});
