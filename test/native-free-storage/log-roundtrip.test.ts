import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Log } from '../../native-free-storage/index.js';
import { appendAll } from '../helpers/append-pipeline.js';
import {
  type ExpectedRecord,
  expectedOffsetForTime,
  expectSameRecord,
  expectSameRecords,
} from '../helpers/expected-log.js';
import type { AppendRecordInput } from '../helpers/log-types.js';
import { OpenLogs } from '../helpers/open-logs.js';
import { Prng } from '../helpers/prng.js';
import { listSegments, segmentFileName, segmentFileNames } from '../helpers/segment-files.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const SEED = 0x5eed_0001;
const BATCHES = 2_000;
const SEGMENT_BYTES = 64 * 1024;

const temps = new TempDirs();
const logs = new OpenLogs();
afterEach(async () => {
  await logs.closeAll();
  await temps.cleanup();
});

/**
 * Random batches (1..50 records, bodies 0..2,000 bytes) with timestamps close to now that
 * mostly advance but sometimes step back, so the log's non-decreasing clamp is exercised.
 */
function makeBatches(rng: Prng, count: number, startTime: number): AppendRecordInput[][] {
  let clock = startTime;
  const batches: AppendRecordInput[][] = [];
  for (let b = 0; b < count; b++) {
    const batch: AppendRecordInput[] = [];
    const size = rng.int(1, 50);
    for (let i = 0; i < size; i++) {
      clock += rng.int(0, 3);
      const stepsBack = rng.next() < 0.03;
      batch.push({
        body: rng.bytes(rng.int(0, 2_000)),
        timestamp: stepsBack ? clock - rng.int(1, 200) : clock,
        attributes: rng.int(0, 0xffff),
        stream: rng.int(0, 4),
      });
    }
    batches.push(batch);
  }
  return batches;
}

/** Reads everything visible with default read() limits, checking each chunk continues the last. */
function readAllInChunks(log: Log): ReturnType<Log['read']> {
  const out: ReturnType<Log['read']> = [];
  let next = log.startOffset;
  for (;;) {
    const chunk = log.read(next);
    if (chunk.length === 0) break;
    expect(chunk[0]?.offset, `chunk read from ${next} starts there`).toBe(next);
    expect(chunk.length, 'default maxRecords is 1000').toBeLessThanOrEqual(1_000);
    out.push(...chunk);
    next = (chunk[chunk.length - 1]?.offset ?? next) + 1;
  }
  return out;
}

function timeQueries(rng: Prng, expected: readonly ExpectedRecord[]): number[] {
  const first = expected[0] as ExpectedRecord;
  const last = expected[expected.length - 1] as ExpectedRecord;
  const queries = [first.timestamp - 10_000, first.timestamp, last.timestamp, last.timestamp + 1, last.timestamp + 10_000];
  for (let i = 0; i < 100; i++) {
    const t = rng.pick(expected).timestamp;
    queries.push(t - 1, t, t + 1);
  }
  return queries;
}

function expectTimeLookups(log: Log, expected: readonly ExpectedRecord[], queries: readonly number[]): void {
  for (const t of queries) {
    expect(log.offsetForTime(t), `offsetForTime(${t})`).toBe(expectedOffsetForTime(expected, t));
  }
}

describe('log round trip over many segments', () => {
  it('reads back every record with identical bytes, before and after reopen', async () => {
    const dir = await temps.make();
    const rng = new Prng(SEED);
    const options = { segmentBytes: SEGMENT_BYTES, fsync: 'interval', fsyncIntervalMs: 1 } as const;
    const log = await logs.open(dir, options);
    expect(log.state).toBe('open');
    expect(log.startOffset).toBe(0);
    expect(log.nextOffset).toBe(0);

    const model = await appendAll(log, makeBatches(rng, BATCHES, Date.now()), 32);
    const expected = model.records(0);
    expect(log.nextOffset).toBe(expected.length);
    expect(log.durableOffset).toBe(expected.length);

    // Everything, through both read paths.
    expectSameRecords(readAllInChunks(log), expected);
    expectSameRecords(log.records(0), expected);
    expectSameRecords(log.records(expected.length - 5), expected.slice(-5));
    expect(log.read(log.nextOffset), 'read at the end').toEqual([]);
    expect(log.read(log.nextOffset + 1_000), 'read past the end').toEqual([]);

    // Random single-record lookups land exactly (sparse index + scan).
    for (let i = 0; i < 500; i++) {
      const target = rng.pick(expected);
      expectSameRecord(log.read(target.offset, { maxRecords: 1 })[0], target);
    }

    const queries = timeQueries(rng, expected);
    expectTimeLookups(log, expected, queries);
    expect(log.offsetForTime((expected[expected.length - 1] as ExpectedRecord).timestamp + 1)).toBeNull();

    // Segment files: 20-digit base offsets, all three files per segment, sizes add up.
    await log.flush();
    const segments = await listSegments(dir);
    expect(segments.length, 'many segments with 64 KiB segmentBytes').toBeGreaterThan(100);
    expect(log.segmentCount).toBe(segments.length);
    expect(segments[0]?.baseOffset).toBe(0);
    expect(log.sizeBytes).toBe(segments.reduce((sum, s) => sum + s.logBytes, 0));
    const names = await segmentFileNames(dir);
    const expectedNames = segments
      .flatMap((s) => (['log', 'index', 'timeindex'] as const).map((kind) => segmentFileName(s.baseOffset, kind)))
      .sort();
    expect(names).toEqual(expectedNames);
    for (const segment of segments) {
      expect(segment.baseOffset).toBeLessThan(log.nextOffset);
      expect(log.read(segment.baseOffset, { maxRecords: 1 })[0]?.offset, 'segment base holds a record').toBe(
        segment.baseOffset,
      );
    }

    const before = {
      nextOffset: log.nextOffset,
      startOffset: log.startOffset,
      segmentCount: log.segmentCount,
      sizeBytes: log.sizeBytes,
    };
    await logs.close(log);
    expect(log.state).toBe('closed');
    expect(existsSync(join(dir, 'checkpoint')), 'clean close writes a checkpoint').toBe(true);

    const reopened = await logs.open(dir, options);
    expect(reopened.recovery.clean, 'reopen after clean close').toBe(true);
    expect(reopened.recovery.scannedBytes, 'clean reopen does not scan').toBe(0);
    expect(reopened.recovery.truncatedBytes).toBe(0);
    expect({
      nextOffset: reopened.nextOffset,
      startOffset: reopened.startOffset,
      segmentCount: reopened.segmentCount,
      sizeBytes: reopened.sizeBytes,
    }).toEqual(before);
    expect(reopened.durableOffset).toBe(before.nextOffset);
    expectSameRecords(reopened.records(0), expected);
    expectTimeLookups(reopened, expected, queries);

    // The reopened log keeps appending where the old one stopped.
    const lastTimestamp = (expected[expected.length - 1] as ExpectedRecord).timestamp;
    const extra = { body: Buffer.from('after reopen'), timestamp: lastTimestamp + 5, attributes: 7, stream: 3 };
    const result = await reopened.append([extra]);
    expect(result).toEqual({ baseOffset: before.nextOffset, lastOffset: before.nextOffset });
    expectSameRecord(reopened.read(before.nextOffset)[0], { offset: before.nextOffset, ...extra });
  });

  it('clamps timestamps to be non-decreasing and preserves attributes and stream tags', async () => {
    const dir = await temps.make();
    const log = await logs.open(dir, { fsync: 'always' });
    const t = Date.now();
    const input: AppendRecordInput[] = [
      { body: Buffer.from('a'), timestamp: t, attributes: 0xffff, stream: 0xffffffff },
      { body: Buffer.from('b'), timestamp: t - 5_000, attributes: 1, stream: 1 },
      { body: Buffer.alloc(0), timestamp: t + 10, attributes: 0, stream: 0 },
      { body: Buffer.from('d'), timestamp: t + 9 },
    ];
    await log.append(input.slice(0, 2));
    await log.append(input.slice(2));
    const stored = log.read(0);
    expect(stored.map((r) => r.timestamp)).toEqual([t, t, t + 10, t + 10]);
    expect(stored.map((r) => r.attributes)).toEqual([0xffff, 1, 0, 0]);
    expect(stored.map((r) => r.stream)).toEqual([0xffffffff, 1, 0, 0]);
    expect(stored.map((r) => r.body.toString())).toEqual(['a', 'b', '', 'd']);

    // A record without a timestamp gets "now" (but never less than its predecessor).
    const before = Date.now();
    await log.append([{ body: Buffer.from('e') }]);
    const stamped = log.read(4)[0]?.timestamp ?? Number.NaN;
    expect(stamped).toBeGreaterThanOrEqual(Math.max(before, t + 10));
    expect(stamped).toBeLessThanOrEqual(Math.max(Date.now(), t + 10));
  });
});
