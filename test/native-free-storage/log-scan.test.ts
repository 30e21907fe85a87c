import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Log,
  type ReadOptions,
  recordAttributes,
  recordBodyStart,
  recordStream,
  recordTimestamp,
  rewriteSegments,
} from '../../native-free-storage/index.js';
import { probeRecordAt, recordOffset } from '../../native-free-storage/record.js';
import { appendAll, randomBatches } from '../helpers/append-pipeline.js';
import type { ExpectedRecord } from '../helpers/expected-log.js';
import type { AppendRecordInput, LogOptionsInput, StoredRecord } from '../helpers/log-types.js';
import { OpenLogs } from '../helpers/open-logs.js';
import { Prng } from '../helpers/prng.js';
import { segmentFileName } from '../helpers/segment-files.js';
import { expectStorageErrorSync } from '../helpers/storage-errors.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const temps = new TempDirs();
const logs = new OpenLogs();
afterEach(async () => {
  await logs.closeAll();
  await temps.cleanup();
});

/** Small segments and a sparse index, so most offsets lie inside an index interval and reads cross segments. */
const SMALL: LogOptionsInput = { segmentBytes: 16 * 1024, indexIntervalBytes: 2048, fsync: 'interval', fsyncIntervalMs: 1 };

interface Visited {
  offset: number;
  timestamp: number;
  attributes: number;
  stream: number;
  body: Buffer;
}

interface ScanResult {
  visited: Visited[];
  next: number;
  /** Visitor calls, including one that returned false. */
  calls: number;
}

/**
 * Scan with a visitor that decodes each record in place through the record* readers, checks the
 * bytes handed over form exactly one valid record, and copies the body out (the bytes are only
 * valid during the call). `stopAtCall` (0-based) makes the visitor return false on that call.
 */
function scanCollect(log: Log, from: number, options: ReadOptions, stopAtCall = Infinity): ScanResult {
  const visited: Visited[] = [];
  let calls = 0;
  const next = log.scan(from, options, (chunk, position, length, offset) => {
    const call = calls++;
    if (probeRecordAt(chunk, position, true) !== length) throw new Error(`visit ${call}: bytes at ${position} are not one valid record of ${length} bytes`);
    if (position + length > chunk.length) throw new Error(`visit ${call}: record runs past the chunk`);
    if (recordOffset(chunk, position) !== offset) throw new Error(`visit ${call}: offset argument ${offset} differs from the record's`);
    if (call === stopAtCall) return false;
    visited.push(visitedAt(chunk, position, length, offset));
    return true;
  });
  return { visited, next, calls };
}

/** The record a visit sees, copied out (its bytes are only valid during the visit). */
function visitedAt(chunk: Buffer, position: number, length: number, offset: number): Visited {
  return {
    offset,
    timestamp: recordTimestamp(chunk, position),
    attributes: recordAttributes(chunk, position),
    stream: recordStream(chunk, position),
    body: Buffer.from(chunk.subarray(recordBodyStart(chunk, position), position + length)),
  };
}

function sameRecord(a: Visited | StoredRecord | ExpectedRecord | undefined, b: Visited | StoredRecord | ExpectedRecord): boolean {
  return (
    a !== undefined &&
    a.offset === b.offset &&
    a.timestamp === b.timestamp &&
    a.attributes === b.attributes &&
    a.stream === b.stream &&
    a.body.equals(b.body)
  );
}

function expectSameList(actual: readonly Visited[], expected: ReadonlyArray<StoredRecord | ExpectedRecord>, label: string): void {
  expect(actual.map((r) => r.offset), `${label}: offsets`).toEqual(expected.map((r) => r.offset));
  actual.forEach((record, i) => {
    if (sameRecord(record, expected[i]!)) return;
    expect({ ...record, body: record.body.toString('hex') }, `${label}: record ${record.offset}`).toEqual({
      ...expected[i]!,
      body: expected[i]!.body.toString('hex'),
    });
  });
}

/** scan and readBatch from the same place with the same options visit the same records and end at the same offset. */
function expectScanMatchesRead(log: Log, from: number, options: ReadOptions, label = `from ${from} ${JSON.stringify(options)}`): ScanResult {
  const batch = log.readBatch(from, options);
  const scanned = scanCollect(log, from, options);
  expect(scanned.next, `${label}: nextOffset`).toBe(batch.nextOffset);
  expect(scanned.calls, `${label}: one visit per record`).toBe(batch.records.length);
  expectSameList(scanned.visited, batch.records, label);
  return scanned;
}

/** A log of `count` records (bodies 0..600 bytes, streams 0..3) in small batches over many segments, with its model. */
async function filledLog(seed: number, count: number, options: LogOptionsInput = SMALL): Promise<{ dir: string; log: Log; expected: ExpectedRecord[] }> {
  const rng = new Prng(seed);
  const dir = await temps.make('nfs-scan-');
  const log = await logs.open(dir, options);
  const start = Date.now() - 1_000_000;
  const batches = randomBatches(rng, count, 8, start);
  const model = await appendAll(log, batches, 16);
  return { dir, log, expected: model.records(0) };
}

/** Scan the whole visible log in steps of `options`, each step continuing where the last one said. */
function scanAll(log: Log, from: number, options: ReadOptions): { visited: Visited[]; steps: number[] } {
  const visited: Visited[] = [];
  const steps: number[] = [];
  let next = from;
  for (;;) {
    const step = scanCollect(log, next, options);
    visited.push(...step.visited);
    steps.push(step.next);
    if (step.visited.length === 0 && step.next === next) return { visited, steps };
    expect(step.next, 'a scan never goes backwards').toBeGreaterThanOrEqual(next);
    next = step.next;
  }
}

function readAllSteps(log: Log, from: number, options: ReadOptions): { records: StoredRecord[]; steps: number[] } {
  const records: StoredRecord[] = [];
  const steps: number[] = [];
  let next = from;
  for (;;) {
    const batch = log.readBatch(next, options);
    records.push(...batch.records);
    steps.push(batch.nextOffset);
    if (batch.records.length === 0 && batch.nextOffset === next) return { records, steps };
    next = batch.nextOffset;
  }
}

const OPTION_CASES: ReadOptions[] = [
  {},
  { maxRecords: 1 },
  { maxRecords: 3 },
  { maxRecords: 16 },
  { maxRecords: 17 },
  { maxRecords: 250 },
  { maxBytes: 1 },
  { maxBytes: 700 },
  { maxBytes: 20_000 },
  { maxRecords: 10_000, maxBytes: 1 << 30 },
  { stream: 2 },
  { stream: 1, maxRecords: 4 },
  { stream: 3, maxBytes: 2_000 },
  { stream: 0, maxRecords: 1 },
  { stream: 9 },
];

describe('Log.scan visits what readBatch returns', () => {
  it('same records, fields, bytes and nextOffset for every option set, from many offsets across segments', async () => {
    const { log, expected } = await filledLog(101, 1_200);
    const sealed = log.sealedSegments();
    expect(sealed.length, 'many segments').toBeGreaterThan(10);
    const n = expected.length;
    const froms = new Set([0, 1, 2, 5, 100, 333, 599, 777, 1_000, n - 2, n - 1, n, n + 10]);
    for (const segment of sealed.slice(0, 6)) for (const d of [-1, 0, 1]) if (segment.baseOffset + d >= 0) froms.add(segment.baseOffset + d);
    for (const from of froms) for (const options of OPTION_CASES) expectScanMatchesRead(log, from, options);

    // Sanity against the model, not only against readBatch.
    expectSameList(scanCollect(log, 0, { maxRecords: 10_000, maxBytes: 1 << 30 }).visited, expected, 'everything');
    expectSameList(scanCollect(log, 640, { maxRecords: 25 }).visited, expected.slice(640, 665), 'from 640');
    expectSameList(
      scanCollect(log, 300, { stream: 2, maxRecords: 10_000, maxBytes: 1 << 30 }).visited,
      expected.filter((r) => r.stream === 2 && r.offset >= 300),
      'stream 2 from 300',
    );
  });

  it('from every offset, including offsets in the middle of an index interval', async () => {
    const { log, expected } = await filledLog(102, 800);
    for (let from = 0; from <= expected.length; from++) {
      const small = expectScanMatchesRead(log, from, { maxRecords: 2 });
      expectSameList(small.visited, expected.slice(from, from + 2), `from ${from}`);
      expectScanMatchesRead(log, from, { stream: 1, maxRecords: 2 });
      expectScanMatchesRead(log, from, { maxBytes: 900, maxRecords: 40 });
    }
  });

  it('chained scans cover the log exactly, step for step like readBatch', async () => {
    const { log, expected } = await filledLog(103, 1_000);
    expect(log.segmentCount).toBeGreaterThan(5);
    for (const options of [{ maxRecords: 37 }, { maxBytes: 3_000 }, { stream: 3, maxRecords: 11 }, {}] as ReadOptions[]) {
      const scanned = scanAll(log, 0, options);
      const read = readAllSteps(log, 0, options);
      const label = JSON.stringify(options);
      expect(scanned.steps, `${label}: nextOffset of every step`).toEqual(read.steps);
      expectSameList(scanned.visited, read.records, label);
      const want = options.stream === undefined ? expected : expected.filter((r) => r.stream === options.stream);
      expectSameList(scanned.visited, want, `${label} against the model`);
    }
  });

  it('steps over the gaps compaction leaves, and over a segment compaction emptied', async () => {
    const options: LogOptionsInput = { segmentBytes: 4096, indexIntervalBytes: 256, fsync: 'interval', fsyncIntervalMs: 1, checkpointIntervalMs: 5 };
    const { log, expected } = await filledLog(104, 300, options);
    const deadline = Date.now() + 5_000;
    while (log.sealedSegments().filter((s) => s.compactable).length < 3) {
      if (Date.now() > deadline) throw new Error('sealed segments never became compactable');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const [a, b, c] = log.sealedSegments();
    const drop = [
      { from: a!.baseOffset + 1, to: a!.baseOffset + 3 },
      { from: a!.nextOffset - 2, to: a!.nextOffset }, // a segment losing its tail
      { from: b!.baseOffset, to: b!.nextOffset }, // emptied
      { from: c!.baseOffset, to: c!.baseOffset + 2 }, // a segment losing its head
    ];
    for (const segment of [a!, b!, c!]) {
      const ranges = drop.filter((r) => r.from >= segment.baseOffset && r.to <= segment.nextOffset);
      const result = await rewriteSegments(log.prepareCompaction({ segments: [segment.baseOffset], dropRanges: ranges }), { ioBytesPerSecond: Infinity });
      expect((await log.installCompaction(result)).installed).toBe(true);
    }
    const kept = expected.filter((r) => !drop.some((d) => d.from <= r.offset && r.offset < d.to));
    expect(kept.length).toBeLessThan(expected.length);

    for (let from = 0; from <= expected.length; from++) {
      expectScanMatchesRead(log, from, { maxRecords: 3 });
      expectScanMatchesRead(log, from, { maxRecords: 1 });
      expectScanMatchesRead(log, from, { stream: 2, maxRecords: 2 });
    }
    for (const opts of [{}, { maxRecords: 7 }, { maxBytes: 500 }] as ReadOptions[]) {
      const scanned = scanAll(log, 0, opts);
      expect(scanned.steps, JSON.stringify(opts)).toEqual(readAllSteps(log, 0, opts).steps);
      expectSameList(scanned.visited, kept, `kept records ${JSON.stringify(opts)}`);
    }
  });
});

describe('Log.scan stops at the durable end', () => {
  it('does not visit records written but not yet durable, and visits them once flushed', async () => {
    const dir = await temps.make('nfs-scan-durable-');
    // The first fsync runs at once; the next one only after a minute, unless flushed.
    const log = await logs.open(dir, { fsync: 'interval', fsyncIntervalMs: 60_000 });
    const t0 = Date.now();
    const first = Array.from({ length: 5 }, (_, i) => ({ body: Buffer.from(`durable ${i}`), timestamp: t0 + i, stream: i % 2 }));
    await log.append(first);
    expect(log.durableOffset).toBe(5);

    const second = Array.from({ length: 4 }, (_, i) => ({ body: Buffer.from(`pending ${i}`), timestamp: t0 + 10 + i, stream: i % 2 }));
    const pending = log.append(second);
    expect(log.nextOffset, 'written').toBe(9);
    expect(log.durableOffset, 'not durable yet').toBe(5);

    for (const options of [{}, { maxRecords: 100 }, { stream: 1 }, { maxRecords: 10_000, maxBytes: 1 << 30 }] as ReadOptions[]) {
      const all = expectScanMatchesRead(log, 0, options);
      expect(all.visited.every((r) => r.offset < 5), 'nothing past the durable end').toBe(true);
      expect(all.next).toBe(5);
      const fromEnd = expectScanMatchesRead(log, 5, options);
      expect(fromEnd.calls, 'no visit at the durable end').toBe(0);
      expect(fromEnd.next).toBe(5);
      expect(expectScanMatchesRead(log, 7, options).calls, 'no visit beyond the durable end').toBe(0);
    }
    expect(scanCollect(log, 0, {}).visited.map((r) => r.body.toString())).toEqual(first.map((r) => r.body.toString()));

    await log.flush();
    await pending;
    expect(log.durableOffset).toBe(9);
    const after = expectScanMatchesRead(log, 0, {});
    expect(after.visited.map((r) => r.body.toString())).toEqual([...first, ...second].map((r) => r.body.toString()));
    expect(after.next).toBe(9);
    expect(expectScanMatchesRead(log, 5, { stream: 1 }).visited.map((r) => r.offset)).toEqual([6, 8]);
  });
});

describe('a visitor returning false', () => {
  it('stops before that record: scan returns its offset, and the next scan from there visits it first', async () => {
    const { log, expected } = await filledLog(105, 600);
    for (const from of [0, 13, 250, 590]) {
      for (const k of [0, 1, 4, 9]) {
        const want = expected.slice(from, from + 1_000);
        if (k >= want.length) continue;
        const stopped = scanCollect(log, from, {}, k);
        const label = `from ${from}, false on visit ${k}`;
        expect(stopped.calls, label).toBe(k + 1);
        expectSameList(stopped.visited, want.slice(0, k), label);
        expect(stopped.next, `${label}: returns the refused record's offset`).toBe(want[k]!.offset);
        const resumed = scanCollect(log, stopped.next, { maxRecords: 3 });
        expectSameList(resumed.visited, want.slice(k, k + 3), `${label}: resumed`);
      }
    }
  });

  it('with a stream filter, returns the refused matching record (not the skipped ones before it)', async () => {
    const { log, expected } = await filledLog(106, 600);
    const matching = expected.filter((r) => r.stream === 2 && r.offset >= 100);
    for (const k of [0, 1, 5]) {
      const stopped = scanCollect(log, 100, { stream: 2 }, k);
      expectSameList(stopped.visited, matching.slice(0, k), `false on visit ${k}`);
      expect(stopped.next).toBe(matching[k]!.offset);
      expectSameList(scanCollect(log, stopped.next, { stream: 2, maxRecords: 2 }).visited, matching.slice(k, k + 2), `resumed after ${k}`);
    }
  });

  it('a refused record is not counted against maxRecords', async () => {
    const { log, expected } = await filledLog(107, 100);
    const stopped = scanCollect(log, 10, { maxRecords: 3 }, 2);
    expect(stopped.calls).toBe(3);
    expectSameList(stopped.visited, expected.slice(10, 12), 'before the refusal');
    expect(stopped.next).toBe(12);
    // Refusing the last record the budget allows still leaves it to the next scan.
    const last = scanCollect(log, 20, { maxRecords: 1 }, 0);
    expect(last.next).toBe(20);
    expectSameList(scanCollect(log, 20, { maxRecords: 1 }).visited, expected.slice(20, 21), 'from 20');
  });
});

describe('the scan buffer is reused', () => {
  it('a view kept from a visit is overwritten by a later scan; readBatch records stay intact', async () => {
    const dir = await temps.make('nfs-scan-reuse-');
    const log = await logs.open(dir, { segmentBytes: 8 * 1024, indexIntervalBytes: 512, fsync: 'always' });
    const t0 = Date.now();
    const bodyOf = (offset: number) => Buffer.alloc(200, `record ${offset} `);
    const batch: AppendRecordInput[] = Array.from({ length: 200 }, (_, offset) => ({ body: bodyOf(offset), timestamp: t0 + offset }));
    await log.append(batch);
    expect(log.segmentCount).toBeGreaterThan(2);

    const readRecords = log.readBatch(0, { maxRecords: 5 }).records;
    const held: { view?: Buffer; chunk?: Buffer; later?: Buffer } = {};
    log.scan(0, { maxRecords: 5 }, (chunk, position, length, offset) => {
      if (offset === 0) {
        held.view = chunk.subarray(recordBodyStart(chunk, position), position + length);
        held.chunk = chunk;
      }
      return true;
    });
    const view = held.view;
    expect(view, 'offset 0 was visited').toBeDefined();
    expect(view!.equals(bodyOf(0)), 'the view is right during and just after the scan').toBe(true);

    const seen: number[] = [];
    log.scan(150, { maxRecords: 5 }, (chunk, _position, _length, offset) => {
      held.later = chunk;
      seen.push(offset);
      return true;
    });
    expect(seen).toEqual([150, 151, 152, 153, 154]);
    expect(held.later!.buffer, 'both scans read into the same memory').toBe(held.chunk!.buffer);
    expect(view!.equals(bodyOf(0)), 'the kept view now shows other bytes').toBe(false);

    // readBatch gives records of their own: later scans and reads leave them as they were.
    for (let from = 0; from < 200; from += 20) {
      log.scan(from, { maxRecords: 10 }, () => true);
      log.readBatch(from, { maxRecords: 10 });
    }
    expect(readRecords.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
    readRecords.forEach((record) => expect(record.body.equals(bodyOf(record.offset)), `readBatch record ${record.offset}`).toBe(true));
    expect(readRecords[0]!.body.buffer, 'readBatch does not read into the scan buffer').not.toBe(held.chunk!.buffer);
  });
});

describe('the scan buffer, reused across reads of any size', () => {
  it('is one buffer for record budgets that size reads in fractions of a byte', async () => {
    const dir = await temps.make('nfs-scan-fraction-');
    const log = await logs.open(dir, { segmentBytes: 16 * 1024 * 1024, fsync: 'always' });
    const t0 = Date.now();
    await log.append(Array.from({ length: 20_000 }, (_, i) => ({ body: Buffer.alloc(301 + (i % 3), i & 0xff), timestamp: t0 + i })));
    const buffers = new Set<ArrayBufferLike>();
    let next = 0;
    for (let round = 0; round < 15; round++) {
      next = log.scan(next, { maxRecords: 999 }, (chunk) => {
        buffers.add(chunk.buffer);
        return true;
      });
    }
    expect(next).toBe(15 * 999);
    expect(buffers.size).toBe(1);
  });

  it('a scan started inside a visit reads on its own buffer; the outer scan is not disturbed', async () => {
    const { log, expected } = await filledLog(41, 300, { segmentBytes: 64 * 1024, indexIntervalBytes: 512, fsync: 'always' });
    const outer: Visited[] = [];
    let inner: ScanResult | null = null;
    const next = log.scan(0, { maxRecords: 20 }, (chunk, position, length, offset) => {
      if (offset === 2) inner = scanCollect(log, 200, { maxRecords: 3 });
      outer.push(visitedAt(chunk, position, length, offset));
      return true;
    });
    expect(next).toBe(20);
    expectSameList(outer, expected.slice(0, 20), 'outer scan');
    expectSameList(inner!.visited, expected.slice(200, 203), 'inner scan');
  });
});

describe('records larger than one read', () => {
  it('scans a 3 MiB record and a 9 MiB one (beyond the reusable buffer) like readBatch, between small ones', async () => {
    const dir = await temps.make('nfs-scan-big-');
    const log = await logs.open(dir, { maxRecordBytes: 12 * 1024 * 1024, fsync: 'never' });
    const rng = new Prng(108);
    const t0 = Date.now();
    const big = rng.bytes(64 * 1024);
    const threeMiB = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < threeMiB.length; i += big.length) big.copy(threeMiB, i);
    threeMiB.writeUInt32LE(0xdeadbeef, threeMiB.length - 4);
    const nineMiB = Buffer.alloc(9 * 1024 * 1024, 0x5a);
    nineMiB.writeUInt32LE(0xfeedface, 100);
    const records: AppendRecordInput[] = [
      { body: Buffer.from('small 0'), timestamp: t0, stream: 1 },
      { body: threeMiB, timestamp: t0 + 1, stream: 2, attributes: 7 },
      { body: Buffer.from('small 2'), timestamp: t0 + 2, stream: 1 },
      { body: nineMiB, timestamp: t0 + 3, stream: 2, attributes: 9 },
      { body: Buffer.from('small 4'), timestamp: t0 + 4, stream: 1 },
    ];
    for (const record of records) await log.append([record]);
    await log.flush();

    // Small scans first, so the reused buffer exists at its small size and has to grow.
    expectScanMatchesRead(log, 0, { maxRecords: 1 });
    expectScanMatchesRead(log, 2, { maxRecords: 1 });
    for (const from of [0, 1, 2, 3, 4]) {
      for (const options of [{}, { maxRecords: 1 }, { maxRecords: 2 }, { maxRecords: 100, maxBytes: 1 << 30 }, { stream: 2 }, { stream: 1 }] as ReadOptions[]) {
        expectScanMatchesRead(log, from, options);
      }
    }
    const everything = scanCollect(log, 0, { maxRecords: 100, maxBytes: 1 << 30 });
    expect(everything.visited.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
    expect(everything.visited[1]!.body.equals(threeMiB)).toBe(true);
    expect(everything.visited[1]!.attributes).toBe(7);
    expect(everything.visited[3]!.body.equals(nineMiB)).toBe(true);
    expect(everything.visited[4]!.body.toString()).toBe('small 4');
    // Default budget (1 MiB): a big record comes alone, the scan stops before it otherwise.
    expect(scanCollect(log, 0, {}).visited.map((r) => r.offset)).toEqual([0]);
    expect(scanCollect(log, 1, {}).visited.map((r) => r.offset)).toEqual([1]);
    expect(scanAll(log, 0, {}).visited.map((r) => r.body.length)).toEqual(records.map((r) => r.body.length));
  });
});

describe('argument and range errors', () => {
  it('below the log start: OFFSET_OUT_OF_RANGE like readBatch, without a visit', async () => {
    const { log, expected } = await filledLog(109, 400);
    const second = log.sealedSegments()[1]!;
    expect(log.deleteBefore(second.baseOffset).segmentsDeleted).toBe(1);
    expect(log.startOffset).toBe(second.baseOffset);
    let visits = 0;
    for (const from of [0, second.baseOffset - 1]) {
      expectStorageErrorSync(() => log.readBatch(from, {}), 'OFFSET_OUT_OF_RANGE');
      expectStorageErrorSync(() => log.scan(from, {}, () => ++visits > 0), 'OFFSET_OUT_OF_RANGE');
    }
    expect(visits).toBe(0);
    expectSameList(expectScanMatchesRead(log, second.baseOffset, { maxRecords: 4 }).visited, expected.slice(second.baseOffset, second.baseOffset + 4), 'at the new start');
  });

  it('invalid offsets and budgets: INVALID_ARGUMENT like readBatch, without a visit', async () => {
    const { log } = await filledLog(110, 50);
    let visits = 0;
    const visit = () => ++visits > 0;
    const cases: Array<[number, ReadOptions]> = [
      [-1, {}],
      [1.5, {}],
      [Number.NaN, {}],
      [Number.POSITIVE_INFINITY, {}],
      [2 ** 53, {}],
      [0, { maxRecords: 0 }],
      [0, { maxRecords: -3 }],
      [0, { maxRecords: Number.NaN }],
      [0, { maxBytes: 0 }],
      [0, { maxBytes: -1 }],
    ];
    for (const [from, options] of cases) {
      const read = expectStorageErrorSync(() => log.readBatch(from, options), 'INVALID_ARGUMENT');
      const scanned = expectStorageErrorSync(() => log.scan(from, options, visit), 'INVALID_ARGUMENT');
      expect(scanned.message).toBe(read.message);
    }
    expect(visits).toBe(0);
  });
});

/** Positions of the records of a .log file. */
async function recordPositions(file: string): Promise<Array<{ offset: number; start: number; length: number }>> {
  const data = await readFile(file);
  const out: Array<{ offset: number; start: number; length: number }> = [];
  for (let at = 0; at < data.length; ) {
    const length = data.readUInt32LE(at + 4);
    out.push({ offset: data.readUInt32LE(at + 16) + data.readUInt32LE(at + 20) * 2 ** 32, start: at, length });
    at += length;
  }
  return out;
}

async function patchFile(file: string, position: number, patch: (bytes: Buffer) => void, length: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const bytes = Buffer.alloc(length);
    await handle.read(bytes, 0, length, position);
    patch(bytes);
    await handle.write(bytes, 0, length, position);
  } finally {
    await handle.close();
  }
}

describe('corrupt records', () => {
  it('a flipped body byte in a sealed segment below the checkpoint: scan throws CORRUPT_RECORD like readBatch, after visiting what precedes it', async () => {
    const { dir, log, expected } = await filledLog(111, 300);
    const first = log.sealedSegments()[0]!;
    await logs.close(log);
    const file = join(dir, segmentFileName(first.baseOffset, 'log'));
    const positions = await recordPositions(file);
    const victim = positions.find((p) => p.offset >= 3 && p.length > 40)!;
    expect(victim.offset, 'a record well before the segment end').toBeLessThan(positions.length - 3);
    await patchFile(file, victim.start + 36, (bytes) => (bytes[0]! ^= 0x41), 1);

    const reopened = await logs.open(dir, SMALL);
    expect(reopened.recovery.clean, 'a clean reopen trusts the sealed segment').toBe(true);
    expect(reopened.recovery.truncatedBytes).toBe(0);
    expect(reopened.nextOffset).toBe(expected.length);

    for (const from of [0, victim.offset]) {
      for (const options of [{}, { maxRecords: 10_000, maxBytes: 1 << 30 }, { stream: expected[victim.offset]!.stream }, { stream: 9 }] as ReadOptions[]) {
        const read = expectStorageErrorSync(() => reopened.readBatch(from, options), 'CORRUPT_RECORD');
        const seen: number[] = [];
        const scanned = expectStorageErrorSync(() => reopened.scan(from, options, (_c, _p, _l, offset) => seen.push(offset) > 0), 'CORRUPT_RECORD');
        expect(scanned.message).toBe(read.message);
        expect(scanned.message).toContain('checksum');
        expect(seen.every((offset) => offset < victim.offset), 'nothing at or past the corrupt record is visited').toBe(true);
        const before = expected.filter((r) => r.offset >= from && r.offset < victim.offset && (options.stream === undefined || r.stream === options.stream));
        expect(seen, `records before the corrupt one, from ${from} ${JSON.stringify(options)}`).toEqual(before.map((r) => r.offset));
      }
    }
    // Reads that stop before it, and reads of later segments, are unaffected.
    expectSameList(expectScanMatchesRead(reopened, 0, { maxRecords: victim.offset }).visited, expected.slice(0, victim.offset), 'before the damage');
    expectSameList(expectScanMatchesRead(reopened, first.nextOffset, { maxRecords: 20 }).visited, expected.slice(first.nextOffset, first.nextOffset + 20), 'next segment');
  });

  it('a damaged length field (below the header, or running past the segment): CORRUPT_RECORD from both', async () => {
    const { dir, log, expected } = await filledLog(112, 300);
    await log.flush();
    const first = log.sealedSegments()[0]!;
    const file = join(dir, segmentFileName(first.baseOffset, 'log'));
    const positions = await recordPositions(file);
    const segmentBytes = positions.at(-1)!.start + positions.at(-1)!.length;
    const victim = positions[4]!;
    for (const [label, length] of [
      ['below the header', 12],
      ['past the segment end', segmentBytes + 50_000],
    ] as const) {
      await patchFile(file, victim.start + 4, (bytes) => bytes.writeUInt32LE(length, 0), 4);
      for (const from of [0, 2, victim.offset]) {
        for (const options of [{}, { maxRecords: 1 }, { maxRecords: 100 }] as ReadOptions[]) {
          if (options.maxRecords === 1 && from < victim.offset) continue; // stops before the damage
          const read = expectStorageErrorSync(() => log.readBatch(from, options), 'CORRUPT_RECORD');
          const scanned = expectStorageErrorSync(() => log.scan(from, options, () => true), 'CORRUPT_RECORD');
          expect(scanned.message, `${label}, from ${from}`).toBe(read.message);
        }
      }
      await patchFile(file, victim.start + 4, (bytes) => bytes.writeUInt32LE(victim.length, 0), 4);
      expectSameList(expectScanMatchesRead(log, 0, { maxRecords: 10 }).visited, expected.slice(0, 10), `repaired after ${label}`);
    }
  });
});
