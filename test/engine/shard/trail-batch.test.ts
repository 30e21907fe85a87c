import fs from 'node:fs';
import path from 'node:path';
import { pack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { Log } from '../../../native-free-storage/index.js';
import { EngineError } from '../../../src/engine/errors.js';
import { decodeTrailBatch, encodeTrailBatch, type TrailColumns } from '../../../src/engine/shard/trail-batch.js';
import { TrailLog, type TrailEntry, type TrailKind } from '../../../src/engine/shard/trail-log.js';
import { Prng } from '../../helpers/prng.js';
import { TempDirs } from '../../helpers/temp-dirs.js';

const temps = new TempDirs();
afterEach(() => temps.cleanup());

/** The stored kind codes (trail-log.ts): new kinds only ever go at the end. */
const KINDS: readonly TrailKind[] = ['published', 'delivered', 'acked', 'nacked', 'discarded', 'expired', 'dead-lettered', 'replayed', 'deferred', 'due'];

interface PlainColumns {
  count: number;
  kinds: number[];
  offsets: number[];
  times: number[];
  subscriptions: number[];
  consumers: number[];
  attempts: number[];
  names: string[];
  reasons: [number, string][];
  delays: [number, number][];
  copies: [number, number][];
}

/** Columns as plain arrays, sparse fields as entries sorted by index: comparable with toEqual. */
function plain(batch: TrailColumns): PlainColumns {
  const sorted = <T>(map: ReadonlyMap<number, T>): [number, T][] => [...map].sort((a, b) => a[0] - b[0]);
  return {
    count: batch.count,
    kinds: Array.from(batch.kinds),
    offsets: Array.from(batch.offsets),
    times: Array.from(batch.times),
    subscriptions: Array.from(batch.subscriptions),
    consumers: Array.from(batch.consumers),
    attempts: Array.from(batch.attempts),
    names: [...batch.names],
    reasons: sorted(batch.reasons),
    delays: sorted(batch.delays),
    copies: sorted(batch.copies),
  };
}

function columns(plainBatch: PlainColumns): TrailColumns {
  return {
    count: plainBatch.count,
    kinds: plainBatch.kinds,
    offsets: plainBatch.offsets,
    times: plainBatch.times,
    subscriptions: plainBatch.subscriptions,
    consumers: plainBatch.consumers,
    attempts: plainBatch.attempts,
    names: plainBatch.names,
    reasons: new Map(plainBatch.reasons),
    delays: new Map(plainBatch.delays),
    copies: new Map(plainBatch.copies),
  };
}

/** Columns of `count` entries to fill in, naming `names`. */
function emptyColumns(count: number, names: string[]): PlainColumns {
  return { count, kinds: [], offsets: [], times: [], subscriptions: [], consumers: [], attempts: [], names, reasons: [], delays: [], copies: [] };
}

/** A batch with every kind, names, none-markers, non-ASCII reasons, delays and copies. */
function sampleBatch(): PlainColumns {
  const names = ['svc-b/billing', 'svc-b/billing#1', 'svc-c/ünïcødé#2', '注文/処理', ''];
  const count = KINDS.length * 2;
  const batch = emptyColumns(count, names);
  for (let i = 0; i < count; i++) {
    batch.kinds.push(i % KINDS.length);
    batch.offsets.push([0, 1, 2 ** 32, 2 ** 32 + 7, Number.MAX_SAFE_INTEGER][i % 5]! + (i % 5 === 4 ? 0 : i));
    batch.times.push(1_700_000_000_000 + i * 1.5);
    batch.subscriptions.push(i % 3 === 0 ? -1 : i % names.length);
    batch.consumers.push(i % 4 === 0 ? -1 : (i * 3) % names.length);
    batch.attempts.push(i % 2 === 0 ? -1 : [0, 1, 17, 0xffff_fffe][i % 4]!);
  }
  batch.reasons.push([0, 'discarded: kaputt — Größe ü'], [4, 'dead-lettered: 配達失敗 🚫'], [5, ''], [count - 1, 'expired']);
  batch.delays.push([3, 0], [8, 1500], [13, 86_400_000], [count - 1, 0.25]);
  batch.copies.push([9, 2 ** 33 + 1], [19, 0]);
  return batch;
}

function randomBatch(rng: Prng, count: number): PlainColumns {
  const names = Array.from({ length: rng.int(0, 40) }, (_, i) => `name-${i}-${'é'.repeat(rng.int(0, 5))}`);
  const batch = emptyColumns(count, names);
  const nameOrNone = () => (names.length === 0 || rng.next() < 0.2 ? -1 : rng.int(0, names.length - 1));
  for (let i = 0; i < count; i++) {
    batch.kinds.push(rng.int(0, KINDS.length - 1));
    batch.offsets.push(rng.int(0, 2 ** 40));
    batch.times.push(1_700_000_000_000 + rng.int(0, 10_000_000));
    batch.subscriptions.push(nameOrNone());
    batch.consumers.push(nameOrNone());
    batch.attempts.push(rng.next() < 0.3 ? -1 : rng.int(0, 100_000));
    if (rng.next() < 0.1) batch.reasons.push([i, `reason ${i} ${'ß'.repeat(rng.int(0, 20))}`]);
    if (rng.next() < 0.1) batch.delays.push([i, rng.int(0, 1_000_000)]);
    if (rng.next() < 0.05) batch.copies.push([i, rng.int(0, 2 ** 40)]);
  }
  return batch;
}

function version1Body(batch: PlainColumns, withCopy: boolean): Buffer {
  const object: Record<string, unknown> = {
    v: 1,
    kind: batch.kinds,
    offset: batch.offsets,
    at: batch.times,
    subscription: batch.subscriptions,
    consumer: batch.consumers,
    attempt: batch.attempts,
    names: batch.names,
    reason: Object.fromEntries(batch.reasons),
    delay: Object.fromEntries(batch.delays),
  };
  if (withCopy) object.copy = Object.fromEntries(batch.copies);
  return pack(object);
}

function internalError(fn: () => unknown): EngineError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(EngineError);
  expect((caught as EngineError).code).toBe('INTERNAL');
  return caught as EngineError;
}

describe('encodeTrailBatch / decodeTrailBatch', () => {
  it('round-trips every kind, names, none-markers, non-ASCII reasons, delays and copies', () => {
    const batch = sampleBatch();
    const body = encodeTrailBatch(columns(batch));
    expect(body[0]).toBe(2);
    const decoded = decodeTrailBatch(body);
    expect(plain(decoded)).toEqual(batch);
    // The none-markers come back as -1, the values next to them unchanged.
    expect(decoded.subscriptions[0]).toBe(-1);
    expect(decoded.consumers[0]).toBe(-1);
    expect(decoded.attempts[0]).toBe(-1);
    expect(decoded.attempts[3]).toBe(0xffff_fffe);
    expect(decoded.reasons.get(4)).toBe('dead-lettered: 配達失敗 🚫');
    expect(decoded.names[3]).toBe('注文/処理');
    expect(decoded.copies.get(9)).toBe(2 ** 33 + 1);
  });

  it('round-trips a batch of zero entries, with and without names', () => {
    const empty: PlainColumns = { count: 0, kinds: [], offsets: [], times: [], subscriptions: [], consumers: [], attempts: [], names: [], reasons: [], delays: [], copies: [] };
    expect(plain(decodeTrailBatch(encodeTrailBatch(columns(empty))))).toEqual(empty);
    const named = { ...empty, names: ['a', 'ö'] };
    expect(plain(decodeTrailBatch(encodeTrailBatch(columns(named))))).toEqual(named);
  });

  it('round-trips a full batch of 4096 entries, from typed-array columns longer than the count', () => {
    const rng = new Prng(0x7ea1);
    const batch = randomBatch(rng, 4096);
    expect(plain(decodeTrailBatch(encodeTrailBatch(columns(batch))))).toEqual(batch);
    // TrailLog hands its fixed-size buffers over: only the first `count` entries are written.
    const few = randomBatch(rng, 10);
    const wide = (values: number[], make: (n: number) => Float64Array | Int32Array | Uint8Array) => {
      const out = make(4096).fill(99);
      out.set(values);
      return out;
    };
    const body = encodeTrailBatch({
      ...columns(few),
      kinds: wide(few.kinds, (n) => new Uint8Array(n)),
      offsets: wide(few.offsets, (n) => new Float64Array(n)),
      times: wide(few.times, (n) => new Float64Array(n)),
      subscriptions: wide(few.subscriptions, (n) => new Int32Array(n)),
      consumers: wide(few.consumers, (n) => new Int32Array(n)),
      attempts: wide(few.attempts, (n) => new Float64Array(n)),
    });
    expect(plain(decodeTrailBatch(body))).toEqual(few);
  });

  it('decodes a body that is a view into a larger buffer', () => {
    const batch = sampleBatch();
    const body = encodeTrailBatch(columns(batch));
    const outer = Buffer.alloc(body.length + 11, 0xee);
    body.copy(outer, 5);
    expect(plain(decodeTrailBatch(outer.subarray(5, 5 + body.length)))).toEqual(batch);
    expect(plain(decodeTrailBatch(new Uint8Array(outer.buffer, outer.byteOffset + 5, body.length)))).toEqual(batch);
  });

  it('round-trips a reason longer than 65535 bytes (a consumer-given discard reason is not bounded here)', () => {
    const reason = `discarded: ${'é'.repeat(40_000)}`;
    const batch: TrailColumns = {
      count: 2,
      kinds: [4, 2],
      offsets: [5, 6],
      times: [7, 8],
      subscriptions: [-1, -1],
      consumers: [-1, -1],
      attempts: [-1, 3],
      names: [],
      reasons: new Map([[0, reason]]),
      delays: new Map(),
      copies: new Map(),
    };
    const decoded = decodeTrailBatch(encodeTrailBatch(batch));
    expect(decoded.reasons.get(0)).toBe(reason);
    expect(Array.from(decoded.attempts)).toEqual([-1, 3]);
  });

  it('refuses an empty body as malformed', () => {
    expect(() => decodeTrailBatch(new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });

  it('reads version-1 (msgpack) batches as the same columns, with and without copies', () => {
    const batch = sampleBatch();
    const fromVersion2 = plain(decodeTrailBatch(encodeTrailBatch(columns(batch))));
    expect(plain(decodeTrailBatch(version1Body(batch, true)))).toEqual(fromVersion2);
    // Batches written before scheduling existed have no `copy`: no copies.
    expect(plain(decodeTrailBatch(version1Body(batch, false)))).toEqual({ ...fromVersion2, copies: [] });
    const big = randomBatch(new Prng(0x51), 4096);
    expect(plain(decodeTrailBatch(version1Body(big, true)))).toEqual(plain(decodeTrailBatch(encodeTrailBatch(columns(big)))));
  });

  it('refuses a msgpack body of another version', () => {
    internalError(() => decodeTrailBatch(pack({ v: 3, kind: [], offset: [] })));
    internalError(() => decodeTrailBatch(pack('not a batch')));
  });

  it('refuses a version-2 body truncated anywhere', () => {
    const body = encodeTrailBatch(columns(sampleBatch()));
    for (let length = 1; length < body.length; length++) {
      const error = internalError(() => decodeTrailBatch(body.subarray(0, length)));
      expect(error.message).toMatch(/malformed trail batch/);
    }
    const empty = encodeTrailBatch(columns({ count: 0, kinds: [], offsets: [], times: [], subscriptions: [], consumers: [], attempts: [], names: [], reasons: [], delays: [], copies: [] }));
    for (let length = 1; length < empty.length; length++) internalError(() => decodeTrailBatch(empty.subarray(0, length)));
  });

  it('refuses a version-2 body with bytes after its end', () => {
    const body = encodeTrailBatch(columns(sampleBatch()));
    for (const extra of [1, 8, 100]) {
      const error = internalError(() => decodeTrailBatch(Buffer.concat([body, Buffer.alloc(extra)])));
      expect(error.message).toMatch(/after its end/);
    }
  });

  it('refuses a count larger than the body (without allocating for it)', () => {
    const body = Buffer.from(encodeTrailBatch(columns(sampleBatch())));
    body.writeUInt32LE(0xffff_ffff, 1);
    internalError(() => decodeTrailBatch(body));
    const one = Buffer.from(encodeTrailBatch(columns({ count: 1, kinds: [1], offsets: [5], times: [6], subscriptions: [-1], consumers: [-1], attempts: [-1], names: [], reasons: [], delays: [], copies: [] })));
    one.writeUInt32LE(2, 1); // one entry more than written
    expect(internalError(() => decodeTrailBatch(one)).message).toMatch(/truncated/);
  });

  it('refuses a subscription or consumer index past the names', () => {
    const batch = sampleBatch();
    for (const field of ['subscriptions', 'consumers'] as const) {
      for (const index of [batch.names.length, 0xfffe]) {
        const bad = { ...batch, [field]: batch[field].map((value, i) => (i === 7 ? index : value)) };
        const error = internalError(() => decodeTrailBatch(encodeTrailBatch(columns(bad))));
        expect(error.message).toMatch(/name/);
      }
    }
    // With no names at all, index 0 is already past them.
    const nameless: PlainColumns = { count: 1, kinds: [1], offsets: [5], times: [6], subscriptions: [0], consumers: [-1], attempts: [-1], names: [], reasons: [], delays: [], copies: [] };
    internalError(() => decodeTrailBatch(encodeTrailBatch(columns(nameless))));
    expect(plain(decodeTrailBatch(encodeTrailBatch(columns({ ...nameless, subscriptions: [-1] }))))).toEqual({ ...nameless, subscriptions: [-1] });
  });
});

describe('TrailLog', () => {
  const failOnError = (errors: unknown[]) => (error: unknown) => {
    errors.push(error);
  };
  const open = (dir: string, errors: unknown[]) => TrailLog.open(dir, true, 64 * 1024 * 1024, 'interval', 2, failOnError(errors));

  /** Adds an entry to the trail and to the expected entries of its offset. */
  function adder(trail: TrailLog, expected: Map<number, TrailEntry[]>) {
    return (offset: number, entry: TrailEntry): void => {
      trail.add(entry.kind, offset, entry.at, entry.subscription, entry.consumer, entry.attempt, entry.reason, entry.delayMs, entry.copyOffset);
      let list = expected.get(offset);
      if (!list) expected.set(offset, (list = []));
      list.push(entry);
    };
  }

  it('gives each offset its entries in order, across batches, and again after reopening', async () => {
    const dir = await temps.make('trail-log-');
    const errors: unknown[] = [];
    const since = Date.now() - 1_000;
    let trail = await open(dir, errors);
    const expected = new Map<number, TrailEntry[]>();
    const add = adder(trail, expected);
    const OFFSETS = 300;
    const base = 2 ** 32 - 150; // offsets on both sides of 2^32
    // 18 rounds over 300 offsets: 5,400 entries, so more than one 4096-entry batch.
    for (let round = 0; round < 18; round++) {
      for (let o = 0; o < OFFSETS; o++) {
        const offset = base + o;
        const at = 1_700_000_000_000 + round * 10_000 + o;
        const kind = KINDS[(round + o) % KINDS.length]!;
        const entry: TrailEntry = { kind, at };
        if (o % 5 !== 0) entry.subscription = `svc-${o % 7}/sub`;
        if (kind === 'delivered') {
          entry.consumer = `svc-${o % 7}/sub#${round}`;
          entry.attempt = round + 1;
        }
        if (kind === 'discarded' || kind === 'dead-lettered') {
          entry.attempt = o % 4;
          entry.reason = `${kind}: grund ${o} — ü 🚫`;
        }
        if (kind === 'nacked' || kind === 'deferred') entry.delayMs = o * 10;
        if (kind === 'due') entry.copyOffset = 10_000_000 + o * 10 + round;
        add(offset, entry);
      }
    }
    const total = [...expected.values()].reduce((sum, list) => sum + list.length, 0);
    expect(total).toBeGreaterThan(4096);

    const check = async (t: TrailLog) => {
      for (let o = 0; o < OFFSETS; o++) {
        const offset = base + o;
        expect(await t.entriesFor(offset, since), `offset ${offset}`).toEqual(expected.get(offset));
      }
      expect(await t.entriesFor(base + OFFSETS, since)).toEqual([]);
      // A lookup from after every record was written finds nothing.
      expect(await t.entriesFor(base, Date.now() + 86_400_000)).toEqual([]);
    };
    await check(trail);
    await trail.close();
    trail = await open(dir, errors);
    await check(trail);
    await trail.close();
    expect(errors).toEqual([]);
  });

  it("follows a 'due' entry to the copy's offset", async () => {
    const dir = await temps.make('trail-log-');
    const errors: unknown[] = [];
    const since = Date.now() - 1_000;
    const trail = await open(dir, errors);
    trail.add('delivered', 10, 100, 's/a', 's/a#1', 1);
    trail.add('deferred', 10, 101, 's/a', undefined, undefined, undefined, 5_000);
    trail.add('delivered', 11, 102, 's/a', 's/a#1', 1);
    trail.flush(); // the copy's entries in a later record
    trail.add('due', 10, 103, 's/a', undefined, undefined, undefined, undefined, 20);
    trail.add('delivered', 20, 104, 's/a', 's/a#2', 2);
    trail.add('acked', 20, 105, 's/a');
    trail.add('acked', 11, 106, 's/a');
    expect(await trail.entriesFor(10, since)).toEqual([
      { kind: 'delivered', at: 100, subscription: 's/a', consumer: 's/a#1', attempt: 1 },
      { kind: 'deferred', at: 101, subscription: 's/a', delayMs: 5_000 },
      { kind: 'due', at: 103, subscription: 's/a', copyOffset: 20 },
      { kind: 'delivered', at: 104, subscription: 's/a', consumer: 's/a#2', attempt: 2 },
      { kind: 'acked', at: 105, subscription: 's/a' },
    ]);
    expect(await trail.entriesFor(11, since)).toEqual([
      { kind: 'delivered', at: 102, subscription: 's/a', consumer: 's/a#1', attempt: 1 },
      { kind: 'acked', at: 106, subscription: 's/a' },
    ]);
    await trail.close();
    expect(errors).toEqual([]);
  });

  it('still reads a version-1 record written before the format changed', async () => {
    const dir = await temps.make('trail-log-');
    const errors: unknown[] = [];
    const since = Date.now() - 1_000;
    const old: PlainColumns = {
      count: 4,
      kinds: [1, 4, 1, 9],
      offsets: [7, 7, 8, 8],
      times: [1_000, 1_001, 1_002, 1_003],
      subscriptions: [0, 0, 0, 0],
      consumers: [1, -1, 2, -1],
      attempts: [1, 1, 3, -1],
      names: ['svc/sub', 'svc/sub#1', 'svc/sub#ü'],
      reasons: [[1, 'discarded: alt — ü']],
      delays: [],
      copies: [[3, 9]],
    };
    const log = await Log.open(path.join(dir, 'trail'), { fsync: 'always' });
    await log.append([{ body: version1Body(old, true) }]);
    await log.append([{ body: version1Body({ ...old, offsets: [12, 12, 12, 12], copies: [] }, false) }]);
    await log.close();
    expect(fs.existsSync(path.join(dir, 'trail'))).toBe(true);

    const trail = await open(dir, errors);
    trail.add('delivered', 9, 2_000, 'svc/sub', 'svc/sub#2', 4);
    trail.add('acked', 7, 2_001, 'svc/sub');
    expect(await trail.entriesFor(7, since)).toEqual([
      { kind: 'delivered', at: 1_000, subscription: 'svc/sub', consumer: 'svc/sub#1', attempt: 1 },
      { kind: 'discarded', at: 1_001, subscription: 'svc/sub', attempt: 1, reason: 'discarded: alt — ü' },
      { kind: 'acked', at: 2_001, subscription: 'svc/sub' },
    ]);
    expect(await trail.entriesFor(8, since)).toEqual([
      { kind: 'delivered', at: 1_002, subscription: 'svc/sub', consumer: 'svc/sub#ü', attempt: 3 },
      { kind: 'due', at: 1_003, subscription: 'svc/sub', copyOffset: 9 },
      { kind: 'delivered', at: 2_000, subscription: 'svc/sub', consumer: 'svc/sub#2', attempt: 4 },
    ]);
    expect((await trail.entriesFor(12, since)).map((e) => e.kind)).toEqual(['delivered', 'discarded', 'delivered', 'due']);
    await trail.close();
    expect(errors).toEqual([]);
  });

  it('records nothing when disabled', async () => {
    const dir = await temps.make('trail-log-');
    const trail = await TrailLog.open(dir, false, 64 * 1024 * 1024, 'interval', 2, (error) => {
      throw error;
    });
    trail.add('delivered', 1, 100, 's', 'c', 1);
    expect(await trail.entriesFor(1, 0)).toEqual([]);
    await trail.close();
    expect(fs.existsSync(path.join(dir, 'trail'))).toBe(false);
  });
});
