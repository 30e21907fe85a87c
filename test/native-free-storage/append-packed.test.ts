import { afterEach, describe, expect, it } from 'vitest';
import type { Log, PackedRecords } from '../../native-free-storage/index.js';
import { expectStorageError } from '../helpers/storage-errors.js';
import type { StoredRecord } from '../helpers/log-types.js';
import { OpenLogs } from '../helpers/open-logs.js';
import { Prng } from '../helpers/prng.js';
import { listSegments } from '../helpers/segment-files.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const temps = new TempDirs();
const logs = new OpenLogs();
afterEach(async () => {
  await logs.closeAll();
  await temps.cleanup();
});

/** A record as the test wants it stored (timestamp before the log's clamp). */
interface Wanted {
  body: Buffer;
  timestamp: number;
  attributes: number;
  stream: number;
}

/** What the log must hand back for a record: its offset and the clamped timestamp. */
interface Expected extends Wanted {
  offset: number;
}

/**
 * Lays `records` out in one buffer as appendPacked takes them, with filler bytes before, between
 * and after the bodies (so only [starts[i], ends[i]) may be read), inside a larger ArrayBuffer at a
 * non-zero byteOffset (so a body's place is relative to the view, not to its ArrayBuffer).
 */
function pack(records: readonly Wanted[], filler = 0xee): PackedRecords {
  const count = records.length;
  const gap = 3;
  const total = records.reduce((sum, r) => sum + r.body.length + gap, gap);
  const backing = new Uint8Array(total + 17).fill(filler);
  const bytes = backing.subarray(9, 9 + total);
  const starts = new Uint32Array(count);
  const ends = new Uint32Array(count);
  const timestamps = new Float64Array(count);
  const attributes = new Uint16Array(count);
  const streams = new Uint32Array(count);
  let at = gap;
  records.forEach((record, i) => {
    bytes.set(record.body, at);
    starts[i] = at;
    ends[i] = at + record.body.length;
    at = ends[i]! + gap;
    timestamps[i] = record.timestamp;
    attributes[i] = record.attributes;
    streams[i] = record.stream;
  });
  return { count, bytes, starts, ends, timestamps, attributes, streams };
}

/** Random records with increasing timestamps from `time`. */
function makeRecords(rng: Prng, count: number, time: number, maxBody = 300): Wanted[] {
  const records: Wanted[] = [];
  for (let i = 0; i < count; i++) {
    time += rng.int(0, 5);
    records.push({ body: rng.bytes(rng.int(0, maxBody)), timestamp: time, attributes: rng.int(0, 0xffff), stream: rng.int(0, 0xffff_ffff) });
  }
  return records;
}

/** The stored form of `records` appended from `base` after a record stamped `previous`. */
function expectedOf(records: readonly Wanted[], base: number, previous = 0): Expected[] {
  return records.map((record, i) => {
    previous = Math.max(previous, record.timestamp);
    return { ...record, timestamp: previous, offset: base + i };
  });
}

function plain(record: StoredRecord | Expected): { offset: number; timestamp: number; attributes: number; stream: number; body: string } {
  return { offset: record.offset, timestamp: record.timestamp, attributes: record.attributes, stream: record.stream, body: Buffer.from(record.body).toString('hex') };
}

function readAll(log: Log): StoredRecord[] {
  return [...log.records(log.startOffset)];
}

function expectStored(log: Log, expected: readonly Expected[]): void {
  expect(readAll(log).map(plain)).toEqual(expected.map(plain));
}

describe('Log.appendPacked', () => {
  it('stores each [start, end) body of one buffer with its timestamp, attributes and stream', async () => {
    const dir = await temps.make();
    const log = await logs.open(dir, { fsync: 'always' });
    const records: Wanted[] = [
      { body: Buffer.from('first'), timestamp: 1_000, attributes: 0, stream: 0 },
      { body: Buffer.alloc(0), timestamp: 1_001, attributes: 0xffff, stream: 0xffff_ffff },
      { body: Buffer.from('ünïcode ✓'), timestamp: 1_001, attributes: 7, stream: 42 },
      ...makeRecords(new Prng(0xa11), 50, 2_000),
    ];
    const packed = pack(records);
    const timestampsBefore = Float64Array.from(packed.timestamps);
    const result = await log.appendPacked(packed);
    expect(result).toEqual({ baseOffset: 0, lastOffset: records.length - 1 });
    expect(log.nextOffset).toBe(records.length);
    expect(log.durableOffset).toBe(records.length);
    const expected = expectedOf(records, 0);
    expectStored(log, expected);
    // Lookups by offset land on the right record.
    for (const target of [expected[0]!, expected[1]!, expected[2]!, expected[30]!, expected[expected.length - 1]!]) {
      expect(plain(log.read(target.offset, { maxRecords: 1 })[0]!)).toEqual(plain(target));
    }
    // Reads filtered by stream see the stream tags as stored.
    expect(log.read(0, { stream: 42 }).map((r) => r.offset)).toEqual([2]);
    // The caller's columns are not changed.
    expect(packed.timestamps).toEqual(timestampsBefore);
  });

  it('accepts every column longer than count and bodies in any order within the buffer', async () => {
    const dir = await temps.make();
    const log = await logs.open(dir, { fsync: 'always' });
    const bytes = Buffer.from('0123456789abcdefghij');
    const packed: PackedRecords = {
      count: 3,
      bytes,
      // Out of order, overlapping, and one empty body; entry 3 is beyond count and ignored.
      starts: Uint32Array.of(10, 0, 5, 999),
      ends: Uint32Array.of(20, 8, 5, 9999),
      timestamps: Float64Array.of(50, 60, 70, -1),
      attributes: Uint16Array.of(1, 2, 3, 4),
      streams: Uint32Array.of(5, 6, 7, 8),
    };
    expect(await log.appendPacked(packed)).toEqual({ baseOffset: 0, lastOffset: 2 });
    expectStored(log, [
      { offset: 0, body: Buffer.from('abcdefghij'), timestamp: 50, attributes: 1, stream: 5 },
      { offset: 1, body: Buffer.from('01234567'), timestamp: 60, attributes: 2, stream: 6 },
      { offset: 2, body: Buffer.alloc(0), timestamp: 70, attributes: 3, stream: 7 },
    ]);
  });

  it('raises a timestamp older than the previous record to it, within a batch and across batches', async () => {
    const dir = await temps.make();
    const log = await logs.open(dir, { fsync: 'always' });
    await log.append([{ body: Buffer.from('a'), timestamp: 1_000 }]);
    const first: Wanted[] = [500, 1_200, 1_100, 1_300, 0].map((timestamp, i) => ({ body: Buffer.from([i]), timestamp, attributes: 0, stream: 0 }));
    await log.appendPacked(pack(first));
    const second: Wanted[] = [1_250, 2_000].map((timestamp, i) => ({ body: Buffer.from([10 + i]), timestamp, attributes: 0, stream: 0 }));
    await log.appendPacked(pack(second));
    expect(readAll(log).map((r) => r.timestamp)).toEqual([1_000, 1_000, 1_200, 1_200, 1_300, 1_300, 1_300, 2_000]);
    expect(log.offsetForTime(1_201)).toBe(4);
  });

  it('keeps offsets consecutive when append() and appendPacked() are mixed', async () => {
    const dir = await temps.make();
    const log = await logs.open(dir, { fsync: 'interval', fsyncIntervalMs: 1 });
    const rng = new Prng(0xa12);
    const expected: Expected[] = [];
    let time = 10_000;
    for (let round = 0; round < 20; round++) {
      const records = makeRecords(rng, rng.int(1, 8), time);
      time = records[records.length - 1]!.timestamp;
      const base = log.nextOffset;
      const result = round % 2 === 0 ? await log.appendPacked(pack(records)) : await log.append(records);
      expect(result).toEqual({ baseOffset: base, lastOffset: base + records.length - 1 });
      expected.push(...expectedOf(records, base));
    }
    // Concurrent appends of both kinds (not awaited one by one) also get consecutive offsets in call order.
    const a = makeRecords(rng, 3, time);
    const b = makeRecords(rng, 4, time + 100);
    const c = makeRecords(rng, 2, time + 200);
    const base = log.nextOffset;
    const results = await Promise.all([log.appendPacked(pack(a)), log.append(b), log.appendPacked(pack(c))]);
    expect(results).toEqual([
      { baseOffset: base, lastOffset: base + 2 },
      { baseOffset: base + 3, lastOffset: base + 6 },
      { baseOffset: base + 7, lastOffset: base + 8 },
    ]);
    expected.push(...expectedOf(a, base), ...expectedOf(b, base + 3), ...expectedOf(c, base + 7));
    expect(log.nextOffset).toBe(expected.length);
    expectStored(log, expected);
  });

  it('writes a batch across segment rolls (small segmentBytes), and the records survive reopen', async () => {
    const dir = await temps.make();
    const segmentBytes = 1_024;
    const log = await logs.open(dir, { segmentBytes, fsync: 'always' });
    await log.append([{ body: Buffer.alloc(500, 1), timestamp: 5 }]);
    const rng = new Prng(0xa13);
    // ~40 records of 50-150 bytes (plus 32 bytes of framing each): several segments' worth.
    const records = makeRecords(rng, 40, 10, 150).map((r) => ({ ...r, body: rng.bytes(rng.int(50, 150)) }));
    // And one larger than a segment, which gets a segment of its own.
    records.splice(20, 0, { body: rng.bytes(3_000), timestamp: records[19]!.timestamp, attributes: 9, stream: 9 });
    const result = await log.appendPacked(pack(records));
    expect(result).toEqual({ baseOffset: 1, lastOffset: records.length });
    const expected = [{ offset: 0, body: Buffer.alloc(500, 1), timestamp: 5, attributes: 0, stream: 0 }, ...expectedOf(records, 1)];
    expectStored(log, expected);
    expect(log.segmentCount).toBeGreaterThan(4);

    const segments = await listSegments(dir);
    expect(segments.length).toBe(log.segmentCount);
    let total = 0;
    for (const segment of segments) {
      total += segment.logBytes;
      if (segment.logBytes > segmentBytes) {
        // Only the oversized record stands alone in a segment larger than segmentBytes.
        expect(segment.logBytes).toBe(32 + 3_000);
      }
    }
    expect(total).toBe(expected.reduce((sum, r) => sum + 32 + r.body.length, 0));
    // Random lookups in the middle of the rolled batch.
    for (let i = 0; i < 20; i++) {
      const target = rng.pick(expected);
      expect(plain(log.read(target.offset, { maxRecords: 1 })[0]!)).toEqual(plain(target));
    }

    await logs.close(log);
    const reopened = await logs.open(dir, { segmentBytes, fsync: 'always' });
    expect(reopened.nextOffset).toBe(expected.length);
    expectStored(reopened, expected);
  });

  it('survives close and reopen, then continues at the next offset and clamps to the stored timestamps', async () => {
    const dir = await temps.make();
    const rng = new Prng(0xa14);
    const log = await logs.open(dir, { fsync: 'interval', fsyncIntervalMs: 1 });
    const records = makeRecords(rng, 30, 100_000);
    await log.appendPacked(pack(records));
    const expected = expectedOf(records, 0);
    await logs.close(log);

    const reopened = await logs.open(dir, { fsync: 'interval', fsyncIntervalMs: 1 });
    expect(reopened.nextOffset).toBe(30);
    expectStored(reopened, expected);
    const last = expected[expected.length - 1]!.timestamp;
    const more: Wanted[] = [
      { body: Buffer.from('older'), timestamp: 1, attributes: 1, stream: 1 },
      { body: Buffer.from('newer'), timestamp: last + 10, attributes: 2, stream: 2 },
    ];
    expect(await reopened.appendPacked(pack(more))).toEqual({ baseOffset: 30, lastOffset: 31 });
    expected.push(...expectedOf(more, 30, last));
    expect(expected[30]!.timestamp).toBe(last);
    expectStored(reopened, expected);
    await logs.close(reopened);

    const again = await logs.open(dir);
    expectStored(again, expected);
  });
});

describe('Log.appendPacked refusals', () => {
  const MAX_RECORD_BYTES = 32 + 100;

  /** A log holding two records, and a check that a refused batch left it exactly so. */
  async function logWithTwoRecords(): Promise<{ log: Log; expectUnchanged: () => Promise<void> }> {
    const dir = await temps.make();
    const log = await logs.open(dir, { fsync: 'always', maxRecordBytes: MAX_RECORD_BYTES });
    const stored: Wanted[] = [
      { body: Buffer.from('one'), timestamp: 1_000, attributes: 1, stream: 1 },
      { body: Buffer.from('two'), timestamp: 2_000, attributes: 2, stream: 2 },
    ];
    await log.appendPacked(pack(stored));
    const expected = expectedOf(stored, 0);
    const size = log.sizeBytes;
    const expectUnchanged = async () => {
      expect(log.state).toBe('open');
      expect(log.nextOffset).toBe(2);
      expect(log.durableOffset).toBe(2);
      expect(log.sizeBytes).toBe(size);
      expectStored(log, expected);
      // Nothing was reserved either: the next good batch takes offset 2, and its timestamps are
      // clamped to the stored records', not to anything in the refused batch.
      const next: Wanted = { body: Buffer.from('three'), timestamp: 1_500, attributes: 3, stream: 3 };
      expect(await log.appendPacked(pack([next]))).toEqual({ baseOffset: 2, lastOffset: 2 });
      expectStored(log, [...expected, { ...next, offset: 2, timestamp: 2_000 }]);
    };
    return { log, expectUnchanged };
  }

  /** A valid batch of three records that a refusal case then spoils. */
  function goodBatch(): PackedRecords {
    return pack([
      { body: Buffer.from('a'), timestamp: 3_000, attributes: 0, stream: 0 },
      { body: Buffer.from('bb'), timestamp: 3_001, attributes: 0, stream: 0 },
      { body: Buffer.from('ccc'), timestamp: 3_002, attributes: 0, stream: 0 },
    ]);
  }

  it('refuses a batch of no records (count 0, negative or fractional)', async () => {
    const { log, expectUnchanged } = await logWithTwoRecords();
    for (const count of [0, -1, 1.5, Number.NaN]) {
      await expectStorageError(() => log.appendPacked({ ...goodBatch(), count }), 'INVALID_ARGUMENT');
    }
    await expectUnchanged();
  });

  it('refuses a batch whose columns are shorter than count', async () => {
    const { log, expectUnchanged } = await logWithTwoRecords();
    for (const column of ['starts', 'ends', 'timestamps', 'attributes', 'streams'] as const) {
      const batch = goodBatch();
      const short = { ...batch, [column]: batch[column].subarray(0, 2) };
      const error = await expectStorageError(() => log.appendPacked(short), 'INVALID_ARGUMENT');
      expect(error.message).toContain(column);
    }
    // count one above every column
    await expectStorageError(() => log.appendPacked({ ...goodBatch(), count: 4 }), 'INVALID_ARGUMENT');
    await expectUnchanged();
  });

  it('refuses a body range outside the bytes, even when only the last record is bad', async () => {
    const { log, expectUnchanged } = await logWithTwoRecords();
    const length = goodBatch().bytes.length;
    const spoil: Array<(b: PackedRecords) => void> = [
      (b) => (b.ends[2] = length + 1), // runs past the end
      (b) => (b.starts[2] = length + 1), // starts past the end (and after its end)
      (b) => {
        // start after end
        b.starts[2] = 5;
        b.ends[2] = 4;
      },
      (b) => {
        // both past the end, empty
        b.starts[0] = length + 10;
        b.ends[0] = length + 10;
      },
    ];
    for (const [i, apply] of spoil.entries()) {
      const batch = goodBatch();
      apply(batch);
      await expectStorageError(() => log.appendPacked(batch), 'INVALID_ARGUMENT').catch((error: unknown) => {
        throw new Error(`case ${i}: ${String(error)}`);
      });
    }
    // bytes that are not a Uint8Array
    await expectStorageError(() => log.appendPacked({ ...goodBatch(), bytes: [1, 2, 3] as unknown as Uint8Array }), 'INVALID_ARGUMENT');
    await expectUnchanged();
  });

  it('refuses a record above maxRecordBytes with RECORD_TOO_LARGE, and takes one exactly at it', async () => {
    const { log, expectUnchanged } = await logWithTwoRecords();
    const records: Wanted[] = [
      { body: Buffer.alloc(10, 1), timestamp: 3_000, attributes: 0, stream: 0 },
      { body: Buffer.alloc(MAX_RECORD_BYTES - 32 + 1, 2), timestamp: 3_001, attributes: 0, stream: 0 },
    ];
    await expectStorageError(() => log.appendPacked(pack(records)), 'RECORD_TOO_LARGE');
    await expectUnchanged();

    const atLimit: Wanted = { body: Buffer.alloc(MAX_RECORD_BYTES - 32, 3), timestamp: 3_000, attributes: 0, stream: 0 };
    expect(await log.appendPacked(pack([atLimit]))).toEqual({ baseOffset: 3, lastOffset: 3 });
    expect(log.read(3)[0]?.body.equals(atLimit.body)).toBe(true);
  });

  it('refuses a negative, fractional or non-finite timestamp', async () => {
    const { log, expectUnchanged } = await logWithTwoRecords();
    for (const bad of [-1, 1.5, 3_000.25, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      const batch = goodBatch();
      batch.timestamps[2] = bad;
      await expectStorageError(() => log.appendPacked(batch), 'INVALID_ARGUMENT').catch((error: unknown) => {
        throw new Error(`timestamp ${bad}: ${String(error)}`);
      });
    }
    await expectUnchanged();
  });

  it('rejects (does not throw synchronously) and refuses once the log is closed', async () => {
    const { log } = await logWithTwoRecords();
    let syncThrow = false;
    let promise: Promise<unknown> | undefined;
    try {
      promise = log.appendPacked({ ...goodBatch(), count: 0 });
    } catch {
      syncThrow = true;
    }
    expect(syncThrow).toBe(false);
    await expectStorageError(() => promise, 'INVALID_ARGUMENT');
    await logs.close(log);
    await expectStorageError(() => log.appendPacked(goodBatch()), 'LOG_CLOSED');
  });
});
