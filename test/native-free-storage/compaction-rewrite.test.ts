import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Log, proposeMerges, rewriteSegments } from '../../native-free-storage/index.js';
import { appendAll } from '../helpers/append-pipeline.js';
import { type ExpectedRecord, expectedOffsetForTime, expectSameRecord } from '../helpers/expected-log.js';
import type { AppendRecordInput, LogOptionsInput } from '../helpers/log-types.js';
import { OpenLogs } from '../helpers/open-logs.js';
import { Prng } from '../helpers/prng.js';
import { listSegments, segmentFileName } from '../helpers/segment-files.js';
import { expectStorageError, expectStorageErrorSync } from '../helpers/storage-errors.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const temps = new TempDirs();
const logs = new OpenLogs();
afterEach(async () => {
  await logs.closeAll();
  await temps.cleanup();
});

/** Small segments, a dense index and a fast checkpoint, so sealed segments become compactable quickly. */
const OPTIONS: LogOptionsInput = { segmentBytes: 4096, indexIntervalBytes: 256, fsync: 'interval', fsyncIntervalMs: 1, checkpointIntervalMs: 5 };
const UNTHROTTLED = { ioBytesPerSecond: Infinity };

interface Built {
  dir: string;
  log: Log;
  expected: ExpectedRecord[];
}

async function buildLog(records: number, seed: number, options: LogOptionsInput = OPTIONS): Promise<Built> {
  const dir = await temps.make('nfs-compaction-');
  const log = await logs.open(dir, options);
  const rng = new Prng(seed);
  let clock = Date.now() - 1_000_000;
  const batches: AppendRecordInput[][] = [];
  for (let n = 0; n < records; ) {
    const size = Math.min(records - n, rng.int(1, 6));
    batches.push(
      Array.from({ length: size }, () => {
        clock += rng.int(0, 3);
        return { body: rng.bytes(rng.int(0, 300)), timestamp: clock, stream: rng.int(0, 3), attributes: rng.int(0, 0xffff) };
      }),
    );
    n += size;
  }
  const model = await appendAll(log, batches, 8);
  await waitCompactable(log, 1);
  return { dir, log, expected: model.records(0) };
}

/** Sealed segments become compactable once the checkpoint names a later segment. */
async function waitCompactable(log: Log, count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (log.sealedSegments().filter((s) => s.compactable).length < Math.min(count, log.segmentCount - 1)) {
    if (Date.now() > deadline) throw new Error('sealed segments never became compactable');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The records of a .log file as stored: offset and exact bytes. */
async function rawRecords(file: string): Promise<Array<{ offset: number; bytes: Buffer }>> {
  const data = await readFile(file);
  const out: Array<{ offset: number; bytes: Buffer }> = [];
  for (let at = 0; at < data.length; ) {
    const length = data.readUInt32LE(at + 4);
    out.push({ offset: data.readUInt32LE(at + 16) + data.readUInt32LE(at + 20) * 2 ** 32, bytes: data.subarray(at, at + length) });
    at += length;
  }
  return out;
}

/** Every lookup a reader can make: each offset's next record at or after it, and a spread of times. */
function expectLookups(log: Log, kept: ExpectedRecord[], all: ExpectedRecord[]): void {
  const stored = [...log.records(log.startOffset)];
  expect(stored.length, 'records() returns exactly the kept records').toBe(kept.length);
  kept.forEach((record, i) => expectSameRecord(stored[i], record));
  let k = 0;
  for (let offset = 0; offset < all.length; offset++) {
    while (k < kept.length && kept[k]!.offset < offset) k++;
    const got = log.read(offset, { maxRecords: 1 })[0];
    if (k < kept.length) expectSameRecord(got, kept[k]!);
    else expect(got, `nothing at or after ${offset}`).toBeUndefined();
  }
  for (let i = 0; i < all.length; i += 5) {
    for (const t of [all[i]!.timestamp - 1, all[i]!.timestamp]) {
      expect(log.offsetForTime(t), `offsetForTime(${t})`).toBe(expectedOffsetForTime(kept, t));
    }
  }
  expect(log.offsetForTime(all.at(-1)!.timestamp + 1)).toBeNull();
}

function expectContinuousSegments(log: Log): void {
  const sealed = log.sealedSegments();
  sealed.forEach((segment, i) => {
    const next = i + 1 < sealed.length ? sealed[i + 1]!.baseOffset : null;
    if (next !== null) expect(segment.nextOffset, `segment ${segment.baseOffset} ends where the next begins`).toBe(next);
  });
}

/** Drop ranges covering every other block of `block` offsets in [from, to). */
function everyOtherBlock(from: number, to: number, block: number): Array<{ from: number; to: number }> {
  const ranges = [];
  for (let start = from; start < to; start += 2 * block) ranges.push({ from: start, to: Math.min(start + block, to) });
  return ranges;
}

const inRanges = (ranges: Array<{ from: number; to: number }>, offset: number) => ranges.some((r) => r.from <= offset && offset < r.to);

describe('compaction: rewrite and install', () => {
  it('drops exactly the planned offsets, keeps every other record byte for byte, and lookups work across the gaps', async () => {
    const { dir, log, expected } = await buildLog(900, 11);
    await waitCompactable(log, 9);
    const sealed = log.sealedSegments();
    expect(sealed.length, 'enough segments').toBeGreaterThanOrEqual(9);
    const nextOffset = log.nextOffset;
    const rawBefore = new Map<number, Buffer>();
    for (const segment of await listSegments(dir)) for (const raw of await rawRecords(segment.logPath)) rawBefore.set(raw.offset, raw.bytes);

    const seg = (i: number) => sealed[i]!;
    const plans = [
      { segments: [seg(1).baseOffset], dropRanges: everyOtherBlock(seg(1).baseOffset, seg(1).nextOffset, 3) },
      // a merge that also drops, with ranges that reach outside the group (ignored there)
      { segments: [seg(4).baseOffset, seg(5).baseOffset], dropRanges: [{ from: 0, to: seg(4).baseOffset + 2 }, ...everyOtherBlock(seg(4).baseOffset + 5, seg(5).nextOffset + 10, 4)] },
      // a segment emptied entirely, and the last sealed segment losing its tail
      { segments: [seg(7).baseOffset], dropRanges: [{ from: seg(7).baseOffset, to: seg(7).nextOffset }] },
      { segments: [sealed.at(-1)!.baseOffset], dropRanges: [{ from: sealed.at(-1)!.nextOffset - 3, to: sealed.at(-1)!.nextOffset }] },
    ];
    const dropped = (offset: number) =>
      plans.some((p) => {
        const first = sealed.find((s) => s.baseOffset === p.segments[0])!;
        const last = sealed.find((s) => s.baseOffset === p.segments.at(-1))!;
        return offset >= first.baseOffset && offset < last.nextOffset && inRanges(p.dropRanges, offset);
      });
    for (const plan of plans) {
      const result = await rewriteSegments(log.prepareCompaction(plan), UNTHROTTLED);
      const install = await log.installCompaction(result);
      expect(install.installed).toBe(true);
      expect(result.recordsKept + result.recordsDropped).toBe(result.recordsBefore);
      expect(result.dropped.byRange).toBe(result.recordsDropped);
      expect(result.bytesAfter).toBeLessThan(result.bytesBefore);
    }
    const kept = expected.filter((r) => !dropped(r.offset));
    expect(kept.length).toBeLessThan(expected.length);
    expect(log.nextOffset, 'the end never moves').toBe(nextOffset);
    expect(log.startOffset).toBe(0);
    expect(log.segmentCount, 'the merge removed one segment').toBe(sealed.length);
    expectContinuousSegments(log);
    expect(log.sealedSegments().find((s) => s.baseOffset === seg(7).baseOffset)?.sizeBytes, 'emptied segment keeps an empty file').toBe(0);
    expectLookups(log, kept, expected);

    // The rewritten files hold the kept records' exact stored bytes (header, checksum, body), in order.
    for (const plan of plans) {
      const file = join(dir, segmentFileName(plan.segments[0]!, 'log'));
      const raws = await rawRecords(file);
      const keptHere = raws.map((r) => r.offset);
      expect(keptHere.every((offset) => !dropped(offset))).toBe(true);
      expect(Buffer.concat(raws.map((r) => r.bytes)).equals(Buffer.concat(keptHere.map((o) => rawBefore.get(o)!)))).toBe(true);
    }
    const names = await readdir(dir);
    expect(names.filter((n) => n.includes('compacting') || n.startsWith('compaction')), 'no leftovers').toEqual([]);
    expect(names).not.toContain(segmentFileName(seg(5).baseOffset, 'log'));

    // Clean reopen: nothing to repair, same answers.
    await logs.close(log);
    let reopened = await logs.open(dir, OPTIONS);
    expect(reopened.recovery.repairs).toEqual([]);
    expect(reopened.nextOffset).toBe(nextOffset);
    expectContinuousSegments(reopened);
    expectLookups(reopened, kept, expected);
    await logs.close(reopened);

    // No checkpoint (every segment scanned) and no index files (all rebuilt): same answers.
    await rm(join(dir, 'checkpoint'));
    for (const name of await readdir(dir)) if (name.endsWith('.index') || name.endsWith('.timeindex')) await rm(join(dir, name));
    reopened = await logs.open(dir, OPTIONS);
    expect(reopened.recovery.truncatedBytes).toBe(0);
    expect(reopened.nextOffset).toBe(nextOffset);
    expectContinuousSegments(reopened);
    expectLookups(reopened, kept, expected);
  });

  it('keeps an emptied first segment, so the log start stays; retention then removes it as empty', async () => {
    const { log, expected } = await buildLog(300, 12);
    const first = log.sealedSegments()[0]!;
    await log.installCompaction(await rewriteSegments(log.prepareCompaction({ segments: [first.baseOffset], dropRanges: [{ from: 0, to: first.nextOffset }] }), UNTHROTTLED));
    expect(log.startOffset).toBe(0);
    expect(log.read(0, { maxRecords: 1 })[0]?.offset, 'a read from the start skips the gap').toBe(first.nextOffset);
    expect(log.offsetForTime(0)).toBe(first.nextOffset);
    // Every record is recent for a one-day retention: only the empty segment goes.
    const result = log.setRetention({ retentionMs: 86_400_000, retentionBytes: null });
    expect(result).toEqual({ segmentsDeleted: 1, bytesDeleted: 0 });
    expect(log.startOffset).toBe(first.nextOffset);
    expectSameRecord(log.read(first.nextOffset, { maxRecords: 1 })[0], expected[first.nextOffset]!);
  });

  it('merges small adjacent segments proposed by proposeMerges without changing a record', async () => {
    const { log, expected } = await buildLog(700, 13);
    await waitCompactable(log, 6);
    // Shrink the first six segments to about a third, then merge what became small.
    for (const segment of log.sealedSegments().slice(0, 6)) {
      const plan = { segments: [segment.baseOffset], dropRanges: everyOtherBlock(segment.baseOffset, segment.nextOffset, 1).flatMap((r) => [{ from: r.from, to: r.from + 1 }]) };
      await log.installCompaction(await rewriteSegments(log.prepareCompaction(plan), UNTHROTTLED));
    }
    const kept = [...log.records(0)].map((r) => expected[r.offset]!);
    const proposals = proposeMerges(log.sealedSegments(), { smallBytes: 3000, maxBytes: 4096 });
    expect(proposals.length).toBeGreaterThan(0);
    const before = log.segmentCount;
    for (const segments of proposals) {
      const result = await rewriteSegments(log.prepareCompaction({ segments }), UNTHROTTLED);
      expect(result.recordsDropped).toBe(0);
      expect((await log.installCompaction(result)).installed).toBe(true);
    }
    expect(log.segmentCount).toBe(before - proposals.reduce((sum, p) => sum + p.length - 1, 0));
    expect(log.sealedSegments().every((s) => s.sizeBytes <= 4096)).toBe(true);
    expectContinuousSegments(log);
    expectLookups(log, kept, expected);
  });

  it('readers see the old segments whole until the list is swapped, and the new ones after', async () => {
    const { log, expected } = await buildLog(400, 14);
    await waitCompactable(log, 3);
    const [a, b] = log.sealedSegments();
    const plan = { segments: [a!.baseOffset, b!.baseOffset], dropRanges: everyOtherBlock(0, b!.nextOffset, 2) };
    const range = (l: Log) => [...l.records(0)].filter((r) => r.offset < b!.nextOffset);
    const old = expected.slice(0, b!.nextOffset);
    const compacted = old.filter((r) => !inRanges(plan.dropRanges, r.offset));
    const seen: Record<string, number> = {};
    const result = await rewriteSegments(log.prepareCompaction(plan), UNTHROTTLED);
    await log.installCompaction(result, {
      onSwapStep: (step) => {
        const now = range(log);
        seen[step] = now.length;
        const model = step === 'directory-synced' || step === 'intent-removed' ? compacted : old;
        expect(now.length, `at ${step}`).toBe(model.length);
        model.forEach((record, i) => expectSameRecord(now[i], record));
      },
    });
    expect(Object.keys(seen)).toEqual(['intent-written', 'offset-index-renamed', 'time-index-renamed', 'log-renamed', 'segment-removed', 'directory-synced', 'intent-removed']);
  });

  it('refuses plans it cannot carry out, one compaction at a time', async () => {
    const { dir, log } = await buildLog(400, 15);
    await waitCompactable(log, 3);
    const sealed = log.sealedSegments();
    const active = sealed.at(-1)!.nextOffset;
    expectStorageErrorSync(() => log.prepareCompaction({ segments: [active] }), 'INVALID_ARGUMENT');
    expectStorageErrorSync(() => log.prepareCompaction({ segments: [sealed[0]!.baseOffset, sealed[2]!.baseOffset] }), 'INVALID_ARGUMENT');
    expectStorageErrorSync(() => log.prepareCompaction({ segments: [sealed[0]!.baseOffset + 1] }), 'INVALID_ARGUMENT');
    expectStorageErrorSync(() => log.prepareCompaction({ segments: [0], dropRanges: [{ from: 5, to: 9 }, { from: 8, to: 12 }] }), 'INVALID_ARGUMENT');
    expectStorageErrorSync(() => log.prepareCompaction({ segments: [0], dropRanges: [{ from: 5, to: 5 }] }), 'INVALID_ARGUMENT');
    const task = log.prepareCompaction({ segments: [0], dropRanges: [{ from: 0, to: 3 }] });
    expect(log.sealedSegments().some((s) => s.compactable), 'nothing is compactable while one is prepared').toBe(false);
    expectStorageErrorSync(() => log.prepareCompaction({ segments: [sealed[1]!.baseOffset] }), 'COMPACTION_BUSY');
    const result = await rewriteSegments(task, UNTHROTTLED);
    log.abortCompaction(task.taskId);
    expect((await readdir(dir)).filter((n) => n.includes('compacting')), 'abort removes the files').toEqual([]);
    await expectStorageError(() => log.installCompaction(result), 'COMPACTION_STALE');
    expect(log.read(0, { maxRecords: 1 })[0]?.offset, 'nothing was dropped').toBe(0);

    // Segments sealed after the last checkpoint are not compactable yet.
    const slow = await logs.open(await temps.make('nfs-compaction-slow-'), { ...OPTIONS, checkpointIntervalMs: 600_000 });
    for (let i = 0; i < 100; i++) await slow.append([{ body: Buffer.alloc(200, i) }]);
    expect(slow.segmentCount).toBeGreaterThan(2);
    expect(slow.sealedSegments().every((s) => !s.compactable)).toBe(true);
    expectStorageErrorSync(() => slow.prepareCompaction({ segments: [0] }), 'INVALID_ARGUMENT');
  });

  it('an install over segments retention removed meanwhile is refused and cleans up', async () => {
    const { dir, log, expected } = await buildLog(400, 16);
    await waitCompactable(log, 2);
    const first = log.sealedSegments()[0]!;
    const result = await rewriteSegments(log.prepareCompaction({ segments: [first.baseOffset], dropRanges: [{ from: 0, to: 10 }] }), UNTHROTTLED);
    expect(log.deleteBefore(first.nextOffset).segmentsDeleted).toBe(1);
    await expectStorageError(() => log.installCompaction(result), 'COMPACTION_STALE');
    expect((await readdir(dir)).filter((n) => n.includes('compacting') || n.startsWith('compaction'))).toEqual([]);
    expect(log.startOffset).toBe(first.nextOffset);
    expectSameRecord(log.read(first.nextOffset, { maxRecords: 1 })[0], expected[first.nextOffset]!);
    // The next compaction can be prepared: the refused one released the log.
    const second = log.sealedSegments()[0]!;
    expect((await log.installCompaction(await rewriteSegments(log.prepareCompaction({ segments: [second.baseOffset], dropRanges: [{ from: 0, to: second.baseOffset + 1 }] }), UNTHROTTLED))).installed).toBe(true);
  });

  it('never compacts past a corrupt record, and leaves no files behind', async () => {
    const { dir, log } = await buildLog(300, 17);
    const first = log.sealedSegments()[0]!;
    const file = join(dir, segmentFileName(first.baseOffset, 'log'));
    const data = await readFile(file);
    data[data.length - 5] ^= 0xff; // inside the last record's body: its checksum no longer matches
    await writeFile(file, data);
    await expectStorageError(() => rewriteSegments(log.prepareCompaction({ segments: [first.baseOffset], dropRanges: [{ from: 0, to: 1 }] }), UNTHROTTLED), 'CORRUPT_RECORD');
    expect((await readdir(dir)).filter((n) => n.includes('compacting'))).toEqual([]);
  });

  it('copies records larger than a read chunk whole, next to small ones', async () => {
    const dir = await temps.make('nfs-compaction-big-');
    const log = await logs.open(dir, { ...OPTIONS, segmentBytes: 1024 * 1024, indexIntervalBytes: 4096 });
    const rng = new Prng(19);
    const t0 = Date.now();
    const sizes = [10, 200_000, 50, 70_000, 300_000, 20, 65_536, 5, 150_000, 40];
    const records = sizes.map((size, i) => ({ body: rng.bytes(size), timestamp: t0 + i, stream: i, attributes: i }));
    for (const record of records) await log.append([record]);
    while (log.segmentCount < 2) await log.append([{ body: rng.bytes(100_000), timestamp: t0 + 100 }]);
    await waitCompactable(log, 1);
    const first = log.sealedSegments()[0]!;
    const drop = [{ from: 0, to: 1 }, { from: 4, to: 5 }, { from: 7, to: 8 }];
    const result = await rewriteSegments(log.prepareCompaction({ segments: [0], dropRanges: drop }), { ioBytesPerSecond: Infinity, chunkBytes: 64 * 1024 });
    expect(result.recordsDropped).toBe(3);
    await log.installCompaction(result);
    const kept = [...log.records(0)].filter((r) => r.offset < first.nextOffset);
    const expectedOffsets = Array.from({ length: first.nextOffset }, (_, i) => i).filter((o) => !inRanges(drop, o));
    expect(kept.map((r) => r.offset)).toEqual(expectedOffsets);
    for (const record of kept) if (record.offset < records.length) expect(record.body.equals(records[record.offset]!.body)).toBe(true);
    await logs.close(log);
    const reopened = await logs.open(dir, { ...OPTIONS, segmentBytes: 1024 * 1024, indexIntervalBytes: 4096 });
    expect(reopened.recovery.repairs, 'its indexes are right').toEqual([]);
    expect(reopened.read(4, { maxRecords: 1 })[0]?.offset).toBe(5);
  });

  it('throttles itself to the I/O budget, in bounded chunks, and reports progress', async () => {
    const { log } = await buildLog(1500, 18, { ...OPTIONS, segmentBytes: 256 * 1024, indexIntervalBytes: 4096 });
    await waitCompactable(log, 1);
    const first = log.sealedSegments()[0]!;
    const progress: Array<{ bytesDone: number; bytesTotal: number; segmentsDone: number; segmentsTotal: number }> = [];
    const rate = 1024 * 1024;
    const result = await rewriteSegments(log.prepareCompaction({ segments: [first.baseOffset], dropRanges: everyOtherBlock(0, first.nextOffset, 10) }), {
      ioBytesPerSecond: rate,
      chunkBytes: 64 * 1024,
      onProgress: (p) => progress.push(p),
    });
    const moved = result.bytesRead + result.bytesWritten;
    // One chunk of burst is free; everything beyond it is paid for at the budget.
    expect(result.durationMs).toBeGreaterThanOrEqual(((moved - 64 * 1024) / rate) * 1000 * 0.9);
    expect(result.throttledMs).toBeGreaterThan(0);
    expect(progress.length).toBeGreaterThan(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.bytesDone).toBeGreaterThanOrEqual(progress[i - 1]!.bytesDone);
    expect(progress.at(-1)).toMatchObject({ bytesDone: first.sizeBytes, bytesTotal: first.sizeBytes, segmentsDone: 1, segmentsTotal: 1 });
    expect((await log.installCompaction(result)).bytesAfter).toBe(result.output!.sizeBytes);
  });
});
