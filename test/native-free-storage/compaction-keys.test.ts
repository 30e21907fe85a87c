import { afterEach, describe, expect, it } from 'vitest';
import { type CompactionKey, type Log, rewriteSegments } from '../../native-free-storage/index.js';
import type { LogOptionsInput, StoredRecord } from '../helpers/log-types.js';
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

const OPTIONS: LogOptionsInput = { segmentBytes: 4096, indexIntervalBytes: 256, fsync: 'interval', fsyncIntervalMs: 1, checkpointIntervalMs: 5 };
const KEYED = 1;
const UNKEYED = 0;
const NO_TOMBSTONE_EXPIRY = { tombstoneBeforeTimestamp: 0 };

/** Test records: stream 1 carries `key|payload` (an empty payload is a tombstone); stream 0 has no key. */
function keyed(key: string, payload: string, timestamp: number): { body: Buffer; stream: number; timestamp: number } {
  return { body: Buffer.from(`${key}|${payload}`), stream: KEYED, timestamp };
}
function unkeyed(size: number, timestamp: number): { body: Buffer; stream: number; timestamp: number } {
  return { body: Buffer.alloc(size, 7), stream: UNKEYED, timestamp };
}
function keyOf(record: StoredRecord): CompactionKey | null {
  if (record.stream !== KEYED) return null;
  const text = record.body.toString();
  const bar = text.indexOf('|');
  return { key: text.slice(0, bar), tombstone: bar === text.length - 1 };
}

async function waitCompactable(log: Log, count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (log.sealedSegments().filter((s) => s.compactable).length < Math.min(count, log.segmentCount - 1)) {
    if (Date.now() > deadline) throw new Error('sealed segments never became compactable');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Append one record at a time until the log rolls: the records before are then in a sealed segment. */
async function fillUntilRoll(log: Log, clock: () => number): Promise<void> {
  const segments = log.segmentCount;
  while (log.segmentCount === segments) await log.append([unkeyed(150, clock())]);
}

const segmentOf = (log: Log, offset: number) => log.sealedSegments().find((s) => s.baseOffset <= offset && offset < s.nextOffset)!;

describe('compaction: key compaction', () => {
  it('drops a record only when a newer record of its key exists up to the durable end at plan time', async () => {
    const log = await logs.open(await temps.make('nfs-keys-'), OPTIONS);
    const rng = new Prng(21);
    let t = Date.now();
    const records: Array<ReturnType<typeof keyed>> = [];
    for (let i = 0; i < 500; i++) {
      const record = rng.next() < 0.2 ? unkeyed(rng.int(0, 120), t++) : keyed(`k${rng.int(0, 24)}`, `v${i}-${'x'.repeat(rng.int(1, 100))}`, t++);
      records.push(record);
    }
    // One key appears only in the group: its newer record arrives after the plan and must not count.
    const lone = records.findIndex((r, i) => i > 60 && r.stream === KEYED);
    records[lone] = keyed('lone', 'first', records[lone]!.timestamp);
    for (let i = 0; i < records.length; i += 5) await log.append(records.slice(i, i + 5));
    await waitCompactable(log, 4);
    const sealed = log.sealedSegments();
    const group = [sealed[1]!, sealed[2]!];
    expect(group[0]!.baseOffset <= lone && lone < group[1]!.nextOffset, 'the lone key is in the group').toBe(true);
    const task = log.prepareCompaction({ segments: group.map((s) => s.baseOffset), keyCompaction: NO_TOMBSTONE_EXPIRY });
    const durableAtPlan = log.durableOffset;
    await log.append([keyed('lone', 'second', t++), keyed('k0', 'after the plan', t++)]);

    const keyAt = (offset: number) => (offset < records.length && records[offset]!.stream === KEYED ? records[offset]!.body.toString().split('|')[0]! : null);
    const superseded = (offset: number) => {
      const key = keyAt(offset);
      if (key === null) return false;
      for (let later = offset + 1; later < durableAtPlan; later++) if (keyAt(later) === key) return true;
      return false;
    };
    const from = group[0]!.baseOffset;
    const to = group[1]!.nextOffset;
    const expectedDrops = Array.from({ length: to - from }, (_, i) => from + i).filter(superseded);
    expect(expectedDrops.length).toBeGreaterThan(10);

    // The caller's own predicate goes with it: here, unkeyed records shorter than 10 bytes go too.
    const tiny = (record: { stream: number; body: Buffer }) => record.stream === UNKEYED && record.body.length < 10;
    const tinyInGroup = records.map((r, offset) => ({ r, offset })).filter(({ r, offset }) => offset >= from && offset < to && tiny(r)).map(({ offset }) => offset);
    expect(tinyInGroup.length).toBeGreaterThan(0);
    const result = await rewriteSegments(task, { keyOf, keep: (record) => !tiny(record), ioBytesPerSecond: Infinity });
    expect(result.dropped).toEqual({ byRange: 0, byKey: expectedDrops.length, tombstones: 0, byPredicate: tinyInGroup.length });
    expectedDrops.push(...tinyInGroup);
    expect(result.keyCompaction).toMatchObject({ complete: true, coveredBefore: null, tombstonesKept: 0 });
    expect((await log.installCompaction(result)).installed).toBe(true);

    const present = [...log.records(0)].map((r) => r.offset);
    const expected = Array.from({ length: log.nextOffset }, (_, i) => i).filter((o) => !expectedDrops.includes(o));
    expect(present).toEqual(expected);
    expect(present).toContain(lone);
    for (const record of log.records(0)) if (record.offset < records.length) expect(record.body.equals(records[record.offset]!.body)).toBe(true);
  });

  it('drops an expired tombstone only when nothing older of its key is left', async () => {
    const log = await logs.open(await temps.make('nfs-keys-tomb-'), OPTIONS);
    let t = Date.now() - 100_000;
    const clock = () => t++;
    const offsets: Record<string, number> = {};
    const put = async (name: string, record: ReturnType<typeof keyed>) => {
      offsets[name] = (await log.append([record])).baseOffset;
    };
    await put('A=v1', keyed('A', 'v1', clock()));
    await fillUntilRoll(log, clock);
    await put('E=v1', keyed('E', 'v1', clock()));
    await put('A×', keyed('A', '', clock()));
    await put('B×', keyed('B', '', clock()));
    await put('E×', keyed('E', '', clock()));
    await put('F×', keyed('F', '', clock()));
    const cutoff = clock();
    await put('D×', keyed('D', '', clock()));
    await fillUntilRoll(log, clock);
    await put('F=v2', keyed('F', 'v2', clock()));
    await fillUntilRoll(log, clock);
    await waitCompactable(log, 3);
    const group = segmentOf(log, offsets['E=v1']!);
    expect(segmentOf(log, offsets['D×']!).baseOffset, 'all tombstones in one segment').toBe(group.baseOffset);

    const result = await rewriteSegments(log.prepareCompaction({ segments: [group.baseOffset], keyCompaction: { tombstoneBeforeTimestamp: cutoff } }), { keyOf, ioBytesPerSecond: Infinity });
    // E=v1 and F× are superseded; B× and E× are expired with nothing older left; A× has A=v1 before it; D× is recent.
    expect(result.dropped).toEqual({ byRange: 0, byKey: 2, tombstones: 2, byPredicate: 0 });
    expect(result.keyCompaction?.tombstonesKept).toBe(1);
    await log.installCompaction(result);
    const present = new Set([...log.records(0)].map((r) => r.offset));
    const gone = Object.entries(offsets).filter(([, offset]) => !present.has(offset)).map(([name]) => name);
    expect(gone.sort()).toEqual(['B×', 'E=v1', 'E×', 'F×']);
  });

  it('with a bounded key map, compacts only the keys it could track and says so', async () => {
    const log = await logs.open(await temps.make('nfs-keys-bound-'), OPTIONS);
    let t = Date.now();
    const clock = () => t++;
    const firstOf = new Map<string, number>();
    for (let round = 0; round < 2; round++) {
      for (let k = 0; k < 10; k++) {
        const { baseOffset } = await log.append([keyed(`k${k}`, `r${round}`, clock())]);
        if (!firstOf.has(`k${k}`)) firstOf.set(`k${k}`, baseOffset);
      }
    }
    await fillUntilRoll(log, clock);
    const groupBase = log.sealedSegments()[0]!;
    for (let k = 0; k < 10; k++) await log.append([keyed(`k${k}`, 'newest', clock())]); // every key superseded later
    await fillUntilRoll(log, clock);
    await waitCompactable(log, 2);

    const result = await rewriteSegments(log.prepareCompaction({ segments: [groupBase.baseOffset], keyCompaction: { ...NO_TOMBSTONE_EXPIRY, maxKeys: 4 } }), {
      keyOf,
      ioBytesPerSecond: Infinity,
    });
    expect(result.keyCompaction).toMatchObject({ keysTracked: 4, complete: false, coveredBefore: firstOf.get('k4') });
    expect(result.dropped.byKey, 'both records of each of the 4 tracked keys').toBe(8);
    await log.installCompaction(result);
    const inGroup = [...log.records(0)].filter((r) => r.offset < groupBase.nextOffset && r.stream === KEYED).map((r) => keyOf(r)!.key);
    expect(inGroup.sort()).toEqual(['k4', 'k4', 'k5', 'k5', 'k6', 'k6', 'k7', 'k7', 'k8', 'k8', 'k9', 'k9']);

    // The memory bound works the same way.
    const second = log.sealedSegments()[1]!;
    const bytesBound = await rewriteSegments(log.prepareCompaction({ segments: [second.baseOffset], keyCompaction: { ...NO_TOMBSTONE_EXPIRY, maxKeyBytes: 1 } }), {
      keyOf,
      ioBytesPerSecond: Infinity,
    });
    expect(bytesBound.keyCompaction).toMatchObject({ keysTracked: 0, complete: false });
    expect(bytesBound.output, 'nothing dropped from one segment: nothing to install').toBeNull();
    expect((await log.installCompaction(bytesBound)).installed).toBe(false);
  });

  it("the caller's gate keeps what key compaction would drop, and a kept record keeps its key's tombstone", async () => {
    const log = await logs.open(await temps.make('nfs-keys-gate-'), OPTIONS);
    let t = Date.now() - 100_000;
    const clock = () => t++;
    const offsets: Record<string, number> = {};
    const put = async (name: string, record: ReturnType<typeof keyed>) => {
      offsets[name] = (await log.append([record])).baseOffset;
    };
    await fillUntilRoll(log, clock);
    await put('K=v1', keyed('K', 'v1', clock()));
    await put('K×', keyed('K', '', clock()));
    await put('J=v1', keyed('J', 'v1', clock()));
    await put('J=v2', keyed('J', 'v2', clock()));
    await put('L×', keyed('L', '', clock()));
    await put('M×', keyed('M', '', clock()));
    await fillUntilRoll(log, clock);
    await waitCompactable(log, 2);
    const group = segmentOf(log, offsets['K=v1']!);
    const reasons: string[] = [];
    const result = await rewriteSegments(log.prepareCompaction({ segments: [group.baseOffset], keyCompaction: { tombstoneBeforeTimestamp: clock() } }), {
      keyOf,
      ioBytesPerSecond: Infinity,
      // K=v1 is not settled yet: it stays, so K's tombstone must stay too (or K=v1 would be current again).
      mayDropByKey: (record, reason) => {
        reasons.push(`${keyOf(record)!.key}:${reason}`);
        return record.offset !== offsets['K=v1'];
      },
      // L's tombstones are kept longer than the plan's bound.
      tombstoneExpired: (record) => keyOf(record)!.key !== 'L',
    });
    expect(reasons.sort()).toEqual(['J:superseded', 'K:superseded', 'M:expired-tombstone']);
    expect(result.dropped).toEqual({ byRange: 0, byKey: 1, tombstones: 1, byPredicate: 0 });
    await log.installCompaction(result);
    const present = new Set([...log.records(0)].map((r) => r.offset));
    expect(Object.keys(offsets).filter((name) => !present.has(offsets[name]!)).sort()).toEqual(['J=v1', 'M×']);
  });

  it('refuses key compaction without a key extractor', async () => {
    const log = await logs.open(await temps.make('nfs-keys-none-'), OPTIONS);
    let t = Date.now();
    await fillUntilRoll(log, () => t++);
    await fillUntilRoll(log, () => t++);
    await waitCompactable(log, 1);
    const task = log.prepareCompaction({ segments: [0], keyCompaction: NO_TOMBSTONE_EXPIRY });
    await expectStorageError(() => rewriteSegments(task, {}), 'INVALID_ARGUMENT');
    log.abortCompaction(task.taskId);
  });
});
