import { afterEach, describe, expect, it } from 'vitest';
import type { Log } from '../../native-free-storage/index.js';
import { appendAll, randomBatches } from '../helpers/append-pipeline.js';
import { type ExpectedRecord, expectSameRecords } from '../helpers/expected-log.js';
import { OpenLogs } from '../helpers/open-logs.js';
import { Prng } from '../helpers/prng.js';
import { expectStorageError } from '../helpers/storage-errors.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const temps = new TempDirs();
const logs = new OpenLogs();
afterEach(async () => {
  await logs.closeAll();
  await temps.cleanup();
});

/** A log of `count` records in small batches over several segments, with a model of it. */
async function filledLog(seed: number, count: number): Promise<{ log: Log; expected: ExpectedRecord[] }> {
  const rng = new Prng(seed);
  const dir = await temps.make();
  const log = await logs.open(dir, { segmentBytes: 16 * 1024, indexIntervalBytes: 512, fsync: 'interval', fsyncIntervalMs: 1 });
  const start = Date.now();
  const batches = randomBatches(rng, count, 10, start);
  const model = await appendAll(log, batches, 16);
  return { log, expected: model.records(0) };
}

describe('read limits', () => {
  it('maxRecords bounds the result from any start offset', async () => {
    const { log, expected } = await filledLog(11, 1_500);
    expectSameRecords(log.read(0, { maxRecords: 10, maxBytes: 1 << 30 }), expected.slice(0, 10));
    expectSameRecords(log.read(777, { maxRecords: 1, maxBytes: 1 << 30 }), expected.slice(777, 778));
    expectSameRecords(log.read(1_495, { maxRecords: 100, maxBytes: 1 << 30 }), expected.slice(1_495));
    expectSameRecords(log.read(3, { maxRecords: 1_500, maxBytes: 1 << 30 }), expected.slice(3));
    // Defaults: at most 1000 records and (beyond the first record) at most 1 MiB of bodies.
    const byDefault = log.read(0);
    expect(byDefault.length).toBeGreaterThan(0);
    expect(byDefault.length).toBeLessThanOrEqual(1_000);
    expectSameRecords(byDefault, expected.slice(0, byDefault.length));
    if (byDefault.length > 1) {
      expect(byDefault.reduce((sum, r) => sum + r.body.length, 0)).toBeLessThanOrEqual(1024 * 1024);
    }
  });

  it('maxBytes bounds the result but always returns at least one record', async () => {
    const { log, expected } = await filledLog(12, 600);
    const big = expected.findIndex((r) => r.body.length >= 300);
    expect(big, 'fixture has a large record').toBeGreaterThanOrEqual(0);
    expectSameRecords(log.read(big, { maxBytes: 1 }), expected.slice(big, big + 1));

    for (const maxBytes of [100, 1_000, 5_000, 20_000]) {
      for (const from of [0, 123, 450]) {
        const got = log.read(from, { maxBytes, maxRecords: 10_000 });
        expect(got.length, `read(${from}, maxBytes ${maxBytes}) returns something`).toBeGreaterThan(0);
        expectSameRecords(got, expected.slice(from, from + got.length));
        if (got.length > 1) {
          const bodyBytes = got.reduce((sum, r) => sum + r.body.length, 0);
          expect(bodyBytes, `read(${from}, maxBytes ${maxBytes}) stays within the budget`).toBeLessThanOrEqual(maxBytes);
        }
      }
    }
    // A budget larger than everything returns everything.
    expectSameRecords(log.read(0, { maxBytes: 1 << 30, maxRecords: 10_000 }), expected);
  });

  it('stream filter returns only (and all) records with that tag', async () => {
    const { log, expected } = await filledLog(13, 1_200);
    for (const stream of [0, 1, 2, 3, 9]) {
      const matching = expected.filter((r) => r.stream === stream);
      expectSameRecords(log.records(0, { stream }), matching);
      const firstFive = log.read(0, { stream, maxRecords: 5, maxBytes: 1 << 30 });
      expectSameRecords(firstFive, matching.slice(0, 5));
      const from = 600;
      expectSameRecords(
        log.read(from, { stream, maxRecords: 10_000, maxBytes: 1 << 30 }),
        matching.filter((r) => r.offset >= from),
      );
    }
  });

  it('records() from a middle offset iterates to the visible end', async () => {
    const { log, expected } = await filledLog(14, 2_500);
    expectSameRecords(log.records(1_234), expected.slice(1_234));
    expectSameRecords(log.records(2_500), []);
  });
});

describe('offsetForTime', () => {
  it('returns the first offset with timestamp >= t before, between, at and after records', async () => {
    const dir = await temps.make();
    // Tiny segments so the time lookup has to cross segment boundaries.
    const log = await logs.open(dir, { segmentBytes: 256, indexIntervalBytes: 64, fsync: 'always' });
    const t0 = Date.now();
    const deltas = [0, 0, 5, 10, 10, 10, 20, 21, 21, 40];
    for (const delta of deltas) {
      await log.append([{ body: Buffer.alloc(60, delta), timestamp: t0 + delta }]);
    }
    expect(log.segmentCount, 'records spread over several segments').toBeGreaterThan(2);
    const cases: Array<[number, number | null]> = [
      [t0 - 1_000_000, 0],
      [t0 - 1, 0],
      [t0, 0],
      [t0 + 1, 2],
      [t0 + 5, 2],
      [t0 + 6, 3],
      [t0 + 10, 3],
      [t0 + 11, 6],
      [t0 + 20, 6],
      [t0 + 21, 7],
      [t0 + 22, 9],
      [t0 + 40, 9],
      [t0 + 41, null],
      [t0 + 1_000_000, null],
    ];
    for (const [t, offset] of cases) expect(log.offsetForTime(t), `offsetForTime(t0 + ${t - t0})`).toBe(offset);
  });

  it('returns null on an empty log', async () => {
    const log = await logs.open(await temps.make());
    expect(log.offsetForTime(0)).toBeNull();
    expect(log.read(0)).toEqual([]);
  });
});

describe('record size limit', () => {
  it('rejects a batch containing a record larger than maxRecordBytes and stores nothing of it', async () => {
    const dir = await temps.make();
    const log = await logs.open(dir, { maxRecordBytes: 1_000, fsync: 'always' });
    await log.append([{ body: Buffer.from('first') }]);
    const sizeBefore = log.sizeBytes;

    await expectStorageError(
      () => log.append([{ body: Buffer.alloc(100, 1) }, { body: Buffer.alloc(1_001, 2) }, { body: Buffer.alloc(10, 3) }]),
      'RECORD_TOO_LARGE',
    );
    expect(log.nextOffset, 'no offsets consumed').toBe(1);
    expect(log.durableOffset).toBe(1);
    expect(log.sizeBytes, 'no bytes written').toBe(sizeBefore);
    expect(log.state, 'a refused record does not fail the log').toBe('open');
    expect(log.read(0).map((r) => r.body.toString())).toEqual(['first']);

    const ok = await log.append([{ body: Buffer.alloc(500, 4) }]);
    expect(ok).toEqual({ baseOffset: 1, lastOffset: 1 });
    await logs.close(log);

    const reopened = await logs.open(dir, { maxRecordBytes: 1_000 });
    expect(reopened.nextOffset).toBe(2);
    expect(reopened.read(0).map((r) => r.body.length)).toEqual([5, 500]);
  });
});
