import { open, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { Log } from '../../native-free-storage/index.js';
import { type ExpectedRecord, expectSameRecord, expectSameRecords } from '../helpers/expected-log.js';
import { Prng } from '../helpers/prng.js';
import { copyDir, fileSize, listSegments } from '../helpers/segment-files.js';
import { TempDirs } from '../helpers/temp-dirs.js';

/**
 * A log of N records closed cleanly, whose last record is small (~50-byte body) so that
 * damaging every single byte of it, one position at a time, stays fast.
 */
interface Fixture {
  dir: string;
  expected: ExpectedRecord[];
  logPath: string;
  lastStart: number;
  lastEnd: number;
}

const RECORDS = 30;
const OPTIONS = { fsync: 'always', segmentBytes: 1 << 20 } as const;

const fixtureDirs = new TempDirs();
const workDirs = new TempDirs();
let fixture: Fixture;

beforeAll(async () => {
  const dir = await fixtureDirs.make('nfs-torn-src-');
  const rng = new Prng(31);
  const t0 = Date.now();
  const expected: ExpectedRecord[] = Array.from({ length: RECORDS }, (_, offset) => ({
    offset,
    timestamp: t0 + offset * 3,
    attributes: rng.int(0, 0xffff),
    stream: rng.int(0, 9),
    body: offset === RECORDS - 1 ? rng.bytes(50) : rng.bytes(rng.int(0, 700)),
  }));
  const log = await Log.open(dir, OPTIONS);
  for (const record of expected.slice(0, -1)) await log.append([record]);
  await log.flush();
  const segments = await listSegments(dir);
  const logPath = (segments[segments.length - 1] as { logPath: string }).logPath;
  const lastStart = await fileSize(logPath);
  await log.append([expected[RECORDS - 1] as ExpectedRecord]);
  await log.close();
  expect((await listSegments(dir)).length, 'last record stays in the same segment').toBe(segments.length);
  const lastEnd = await fileSize(logPath);
  expect(lastEnd - lastStart, 'framed size of the 50-byte last record').toBeGreaterThan(50);
  expect(lastEnd - lastStart).toBeLessThan(150);
  fixture = { dir, expected, logPath, lastStart, lastEnd };
});

afterAll(async () => {
  await fixtureDirs.cleanup();
});

afterEach(async () => {
  await workDirs.cleanup();
});

type Damage = (logPath: string) => Promise<void>;

/** Copies the clean fixture, damages the copy, optionally removes the checkpoint. */
async function damagedCopy(damage: Damage, keepCheckpoint: boolean): Promise<{ dir: string; logPath: string }> {
  const dir = await workDirs.make('nfs-torn-');
  await copyDir(fixture.dir, dir);
  const logPath = join(dir, fixture.logPath.slice(fixture.dir.length + 1));
  await damage(logPath);
  if (!keepCheckpoint) await rm(join(dir, 'checkpoint'));
  return { dir, logPath };
}

async function xorByteAt(path: string, position: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, position);
    byte[0] = (byte[0] as number) ^ 0xff;
    await handle.write(byte, 0, 1, position);
  } finally {
    await handle.close();
  }
}

async function appendGarbage(path: string, garbage: Buffer): Promise<void> {
  const handle = await open(path, 'a');
  try {
    await handle.write(garbage);
  } finally {
    await handle.close();
  }
}

/**
 * Reopens a damaged copy and checks: the first `survivors` records are intact, nothing else is
 * visible, the file was cut back to `cutAt`, and the log accepts and returns a new record.
 */
async function expectRecovered(
  copy: { dir: string; logPath: string },
  survivors: number,
  cutAt: number,
  truncatedBytes: number,
  keepCheckpoint: boolean,
  what: string,
): Promise<void> {
  const log = await Log.open(copy.dir, OPTIONS);
  try {
    // Most telling first: what readers see, then the on-disk repair, then the report.
    expect(log.nextOffset, `${what}: nextOffset`).toBe(survivors);
    expect(log.durableOffset, `${what}: durableOffset`).toBe(survivors);
    expectSameRecords(log.records(0), fixture.expected.slice(0, survivors));
    expect(log.read(survivors), `${what}: nothing past the cut`).toEqual([]);
    expect(await fileSize(copy.logPath), `${what}: .log cut back to the last good record`).toBe(cutAt);
    expect(log.recovery.truncatedBytes, `${what}: truncatedBytes`).toBe(truncatedBytes);
    if (!keepCheckpoint) expect(log.recovery.clean, `${what}: no checkpoint means unclean`).toBe(false);

    const replacement: ExpectedRecord = {
      offset: survivors,
      timestamp: (fixture.expected[RECORDS - 1] as ExpectedRecord).timestamp + 1,
      attributes: 42,
      stream: 4,
      body: Buffer.from(`replacement after ${what}`),
    };
    const result = await log.append([replacement]);
    expect(result, `${what}: append after recovery`).toEqual({ baseOffset: survivors, lastOffset: survivors });
    expectSameRecord(log.read(survivors)[0], replacement);
  } finally {
    await log.close();
  }
}

/**
 * Runs `check` for every byte position in [from, to) and reports all failing positions together
 * (record-relative), so one run shows which parts of the record framing are mishandled.
 */
async function expectEveryPosition(from: number, to: number, check: (position: number) => Promise<void>): Promise<void> {
  const failures: string[] = [];
  for (let p = from; p < to; p++) {
    try {
      await check(p);
    } catch (error) {
      failures.push(`+${p - from}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    } finally {
      await workDirs.cleanup();
    }
  }
  expect(failures, `${failures.length} of ${to - from} positions failed`).toEqual([]);
}

describe.each([
  { keepCheckpoint: true, label: 'clean checkpoint left in place' },
  { keepCheckpoint: false, label: 'checkpoint deleted (crash before any checkpoint)' },
])('torn last record, $label', ({ keepCheckpoint }) => {
  it('truncation at every byte position inside the last record drops exactly that record', async () => {
    const { lastStart, lastEnd } = fixture;
    await expectEveryPosition(lastStart, lastEnd, async (p) => {
      const copy = await damagedCopy((path) => truncate(path, p), keepCheckpoint);
      await expectRecovered(copy, RECORDS - 1, lastStart, p - lastStart, keepCheckpoint, `truncate at ${p}`);
    });
  });

  it('a flipped byte at every position inside the last record drops exactly that record', async () => {
    const { lastStart, lastEnd } = fixture;
    await expectEveryPosition(lastStart, lastEnd, async (p) => {
      const copy = await damagedCopy((path) => xorByteAt(path, p), keepCheckpoint);
      await expectRecovered(copy, RECORDS - 1, lastStart, lastEnd - lastStart, keepCheckpoint, `flip at ${p}`);
    });
  });

  it.each([
    { kind: 'zeros', garbage: () => Buffer.alloc(4_096) },
    { kind: 'random bytes', garbage: () => new Prng(32).bytes(4_096) },
    { kind: 'a few random bytes', garbage: () => new Prng(33).bytes(7) },
  ])('garbage after the last record ($kind) is truncated', async ({ garbage }) => {
    const bytes = garbage();
    const copy = await damagedCopy((path) => appendGarbage(path, bytes), keepCheckpoint);
    await expectRecovered(copy, RECORDS, fixture.lastEnd, bytes.length, keepCheckpoint, `garbage ${bytes.length}`);
  });
});

describe('undamaged fixture', () => {
  it('reopens with every record and no truncation, with or without the checkpoint', async () => {
    for (const keepCheckpoint of [true, false]) {
      const copy = await damagedCopy(async () => undefined, keepCheckpoint);
      const log = await Log.open(copy.dir, OPTIONS);
      try {
        expect(log.recovery.clean).toBe(keepCheckpoint);
        if (!keepCheckpoint) expect(log.recovery.scannedBytes, 'a crash recovery scans the log').toBeGreaterThan(0);
        expect(log.recovery.truncatedBytes).toBe(0);
        expectSameRecords(log.records(0), fixture.expected);
      } finally {
        await log.close();
      }
    }
  });
});
