import { afterEach, describe, expect, it } from 'vitest';
import type { Log } from '../../native-free-storage/index.js';
import { type ExpectedRecord, expectSameRecord, expectSameRecords } from '../helpers/expected-log.js';
import type { LogOptionsInput } from '../helpers/log-types.js';
import { OpenLogs } from '../helpers/open-logs.js';
import { Prng } from '../helpers/prng.js';
import { listSegments, type SegmentFiles, segmentFileNames } from '../helpers/segment-files.js';
import { expectStorageErrorSync } from '../helpers/storage-errors.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const temps = new TempDirs();
const logs = new OpenLogs();
afterEach(async () => {
  await logs.closeAll();
  await temps.cleanup();
});

const SEGMENT_BYTES = 4_096;
const RECORDS = 240;
const STEP_MS = 100;

/**
 * 240 records of 200..400 bytes in 4 KiB segments (~15 segments), one record every 100 ms of
 * record time starting now, so wall-clock-based retention would keep everything and only the
 * explicit `now` passed to applyRetention decides.
 */
async function filledLog(options: LogOptionsInput): Promise<{ dir: string; log: Log; expected: ExpectedRecord[]; t0: number }> {
  const dir = await temps.make('nfs-retention-');
  const log = await logs.open(dir, { segmentBytes: SEGMENT_BYTES, fsync: 'interval', fsyncIntervalMs: 1, ...options });
  const rng = new Prng(71);
  const t0 = Date.now();
  const expected: ExpectedRecord[] = [];
  for (let offset = 0; offset < RECORDS; offset++) {
    const record = { offset, timestamp: t0 + offset * STEP_MS, attributes: offset, stream: 0, body: rng.bytes(rng.int(200, 400)) };
    expected.push(record);
    await log.append([record]);
  }
  await log.flush();
  return { dir, log, expected, t0 };
}

/** The segments retention must keep: a suffix of `segments` that always includes the active one. */
function survivorsAfter(segments: SegmentFiles[], shouldDelete: (segment: SegmentFiles, next: SegmentFiles) => boolean): SegmentFiles[] {
  let first = 0;
  while (first < segments.length - 1 && shouldDelete(segments[first] as SegmentFiles, segments[first + 1] as SegmentFiles)) first++;
  return segments.slice(first);
}

async function expectRetained(dir: string, log: Log, survivors: SegmentFiles[], expected: ExpectedRecord[]): Promise<void> {
  const start = (survivors[0] as SegmentFiles).baseOffset;
  expect((await listSegments(dir)).map((s) => s.baseOffset), 'whole oldest segments deleted').toEqual(
    survivors.map((s) => s.baseOffset),
  );
  const kept = new Set(survivors.map((s) => s.baseOffset));
  const leftovers = (await segmentFileNames(dir)).filter((name) => !kept.has(Number(name.slice(0, 20))));
  expect(leftovers, 'no files (index files included) of deleted segments remain').toEqual([]);
  expect(log.startOffset).toBe(start);
  expect(log.segmentCount).toBe(survivors.length);
  expect(log.sizeBytes).toBe(survivors.reduce((sum, s) => sum + s.logBytes, 0));
  expect(log.nextOffset, 'retention never touches the end').toBe(expected.length);
  if (start > 0) {
    expectStorageErrorSync(() => log.read(start - 1), 'OFFSET_OUT_OF_RANGE');
    expectStorageErrorSync(() => log.read(0), 'OFFSET_OUT_OF_RANGE');
  }
  expectSameRecord(log.read(start, { maxRecords: 1 })[0], expected[start] as ExpectedRecord);
  expectSameRecords(log.records(start), expected.slice(start));
  expect(log.offsetForTime(0), 'time lookups start at the oldest retained record').toBe(start);
}

describe('retention by size', () => {
  it('deletes whole oldest sealed segments while the total exceeds retentionBytes', async () => {
    const retentionBytes = 20_000;
    // Written without retention, then reopened with it, so the test knows the full "before" state.
    const { dir, log, expected } = await filledLog({});
    await logs.close(log);
    const segments = await listSegments(dir);
    expect(segments.length).toBeGreaterThan(8);
    let total = segments.reduce((sum, s) => sum + s.logBytes, 0);
    const survivors = survivorsAfter(segments, (segment) => {
      if (total <= retentionBytes) return false;
      total -= segment.logBytes;
      return true;
    });
    const removed = segments.slice(0, segments.length - survivors.length);
    expect(removed.length, 'the budget forces deletions').toBeGreaterThan(0);

    const retained = await logs.open(dir, { segmentBytes: SEGMENT_BYTES, retentionBytes });
    // open() may already enforce retention; whatever it left, applyRetention() must finish exactly.
    const afterOpen = await listSegments(dir);
    const result = retained.applyRetention();
    const removedByCall = afterOpen.slice(0, afterOpen.length - survivors.length);
    expect(result).toEqual({
      segmentsDeleted: removedByCall.length,
      bytesDeleted: removedByCall.reduce((sum, s) => sum + s.logBytes, 0),
    });
    await expectRetained(dir, retained, survivors, expected);
    expect(retained.startOffset, 'retention happened').toBeGreaterThan(0);
    expect(retained.sizeBytes).toBeLessThanOrEqual(retentionBytes);
    // Keeping one more segment would have exceeded the budget (nothing deleted needlessly).
    const lastRemoved = removed[removed.length - 1] as SegmentFiles;
    expect(retained.sizeBytes + lastRemoved.logBytes).toBeGreaterThan(retentionBytes);
    expect(retained.applyRetention(), 'a second pass has nothing to do').toEqual({ segmentsDeleted: 0, bytesDeleted: 0 });

    await logs.close(retained);
    const reopened = await logs.open(dir, { segmentBytes: SEGMENT_BYTES, retentionBytes });
    await expectRetained(dir, reopened, survivors, expected);
    const appended = await reopened.append([{ body: Buffer.from('after retention') }]);
    expect(appended.baseOffset).toBe(expected.length);
  });

  it('never deletes the active segment, even with a 1-byte budget', async () => {
    const { dir, log, expected } = await filledLog({ retentionBytes: 1 });
    const segments = await listSegments(dir);
    log.applyRetention();
    const active = segments[segments.length - 1] as SegmentFiles;
    await expectRetained(dir, log, [active], expected);
    await log.append([{ body: Buffer.from('still appendable') }]);
    expect(log.read(expected.length)[0]?.body.toString()).toBe('still appendable');
  });
});

describe('retention by age', () => {
  it('deletes sealed segments whose newest record is older than retentionMs at `now`', async () => {
    const retentionMs = 10_000;
    const { dir, log, expected, t0 } = await filledLog({ retentionMs });
    const segments = await listSegments(dir);
    expect(log.startOffset, 'record times are in the future of the wall clock: nothing expired yet').toBe(0);
    // Halfway through the records' time span, between two record timestamps.
    const now = t0 + (RECORDS / 2) * STEP_MS + STEP_MS / 2;
    // A sealed segment's newest record is the one just before the next segment's base offset.
    const newestBefore = (next: SegmentFiles) => (expected[next.baseOffset - 1] as ExpectedRecord).timestamp;
    const survivors = survivorsAfter(segments, (_, next) => now - newestBefore(next) > retentionMs);
    expect(survivors.length, 'some but not all segments expire').toBeLessThan(segments.length);
    expect(survivors.length).toBeGreaterThan(1);

    const result = log.applyRetention(now);
    expect(result.segmentsDeleted).toBe(segments.length - survivors.length);
    await expectRetained(dir, log, survivors, expected);
    // The oldest kept segment's newest record (just before the second kept segment) is not expired.
    expect(now - newestBefore(survivors[1] as SegmentFiles)).toBeLessThanOrEqual(retentionMs);

    await logs.close(log);
    const reopened = await logs.open(dir, { segmentBytes: SEGMENT_BYTES, retentionMs });
    await expectRetained(dir, reopened, survivors, expected);

    // Far in the future everything sealed expires, but the active segment stays.
    reopened.applyRetention(t0 + 1_000 * 60 * 60 * 1_000);
    await expectRetained(dir, reopened, [survivors[survivors.length - 1] as SegmentFiles], expected);
  });
});
