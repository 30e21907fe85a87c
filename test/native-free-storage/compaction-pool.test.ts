import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Log } from '../../native-free-storage/index.js';
import { DEFAULT_EVENT_PRIORITY, type StoredEvent } from '../../src/engine/event.js';
import { encodeEventBody } from '../../src/engine/event-codec.js';
import { encodeScheduleRecord, RecordKind } from '../../src/engine/shard/record-kind.js';
import { CompactionPool, compactLog } from '../../src/engine/compaction/compaction-pool.js';
import { engineCompactionKey } from '../../workers/compaction-worker.js';
import type { LogOptionsInput, StoredRecord } from '../helpers/log-types.js';
import { OpenLogs } from '../helpers/open-logs.js';
import { segmentFileName } from '../helpers/segment-files.js';
import { expectStorageError } from '../helpers/storage-errors.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const BUILT_WORKER = fileURLToPath(new URL('../../dist/workers/compaction-worker.js', import.meta.url));
const OPTIONS: LogOptionsInput = { segmentBytes: 4096, indexIntervalBytes: 256, fsync: 'interval', fsyncIntervalMs: 1, checkpointIntervalMs: 5 };

const temps = new TempDirs();
const logs = new OpenLogs();
let pool: CompactionPool;
beforeAll(() => {
  expect(existsSync(BUILT_WORKER), `${BUILT_WORKER} missing: run \`npx tsc -b\` (npm test does it)`).toBe(true);
  pool = new CompactionPool({ ioBytesPerSecond: Infinity });
});
afterAll(async () => {
  await pool.close();
});
afterEach(async () => {
  await logs.closeAll();
  await temps.cleanup();
});

let clock = Date.now() - 1_000_000;

function event(type: string, key: string | null, payload: string): StoredEvent {
  return {
    id: `e${clock}`,
    type,
    payload: Buffer.from(payload),
    headers: { h: 'v' },
    key,
    sender: 'producer',
    publishedAt: clock,
    recipients: null,
    signature: null,
    priority: DEFAULT_EVENT_PRIORITY,
    deliverAt: 0,
    expiresAt: 0,
  };
}

type Append = { body: Buffer; attributes: number; timestamp: number };
const eventRecord = (type: string, key: string | null, payload: string): Append => ({ body: encodeEventBody(event(type, key, payload)), attributes: RecordKind.EVENT, timestamp: clock++ });
const scheduled = (type: string, key: string): Append => ({ body: encodeEventBody(event(type, key, 'later')), attributes: RecordKind.SCHEDULED, timestamp: clock++ });
const fired = (type: string, key: string): Append => ({
  body: encodeScheduleRecord({ source: 0, dueAt: clock, eventOffset: 0, subscription: '' }, encodeEventBody(event(type, key, 'due'))),
  attributes: RecordKind.FIRED,
  timestamp: clock++,
});
const deferred = (): Append => ({ body: encodeScheduleRecord({ source: 0, dueAt: clock, eventOffset: 0, subscription: 's' }, null), attributes: RecordKind.DEFER, timestamp: clock++ });

async function fillUntilRoll(log: Log): Promise<void> {
  const segments = log.segmentCount;
  while (log.segmentCount === segments) await log.append([eventRecord('filler', null, 'x'.repeat(100))]);
}

async function waitCompactable(log: Log, count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (log.sealedSegments().filter((s) => s.compactable).length < count) {
    if (Date.now() > deadline) throw new Error('sealed segments never became compactable');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('compaction worker and pool', () => {
  it('the engine key: (type, key) of EVENT records with a key; tombstone = empty payload; nothing else', () => {
    const asRecord = (append: Append): StoredRecord => ({ offset: 0, timestamp: 0, stream: 0, attributes: append.attributes, body: append.body });
    expect(engineCompactionKey(asRecord(eventRecord('orders', 'o1', 'a')))).toEqual({ key: '6:orderso1', tombstone: false });
    expect(engineCompactionKey(asRecord(eventRecord('orders', 'o1', '')))).toEqual({ key: '6:orderso1', tombstone: true });
    const ab = engineCompactionKey(asRecord(eventRecord('ab', 'c', 'x')))!.key;
    const a = engineCompactionKey(asRecord(eventRecord('a', 'bc', 'x')))!.key;
    expect(ab, 'no two (type, key) pairs share a compaction key').not.toBe(a);
    expect(engineCompactionKey(asRecord(eventRecord('orders', null, 'a')))).toBeNull();
    expect(engineCompactionKey(asRecord(scheduled('orders', 'o1')))).toBeNull();
    expect(engineCompactionKey(asRecord(fired('orders', 'o1')))).toBeNull();
    expect(engineCompactionKey(asRecord(deferred()))).toBeNull();
    expect(engineCompactionKey({ offset: 0, timestamp: 0, stream: 0, attributes: RecordKind.EVENT, body: Buffer.from([9, 9]) }), 'an undecodable body is never dropped').toBeNull();
  });

  it('compactLog rewrites in the pool and installs: superseded events and expired tombstones go, everything else stays', async () => {
    const log = await logs.open(await temps.make('nfs-pool-'), OPTIONS);
    const at: Record<string, number> = {};
    const put = async (name: string, record: Append) => {
      at[name] = (await log.append([record])).baseOffset;
    };
    await fillUntilRoll(log);
    await put('orders/o1', eventRecord('orders', 'o1', 'a'));
    await put('orders/o2', eventRecord('orders', 'o2', 'a'));
    await put('orders/-', eventRecord('orders', null, 'a'));
    await put('scheduled o1', scheduled('orders', 'o1'));
    await put('fired o1', fired('orders', 'o1'));
    await put('defer', deferred());
    await put('billing/o1', eventRecord('billing', 'o1', 'a'));
    await put('orders/o3 tombstone', eventRecord('orders', 'o3', ''));
    const cutoff = clock++;
    await put('orders/o4 tombstone', eventRecord('orders', 'o4', ''));
    await fillUntilRoll(log);
    await put('orders/o1 newer', eventRecord('orders', 'o1', 'b'));
    await fillUntilRoll(log);
    await waitCompactable(log, 3);
    const group = log.sealedSegments().find((s) => s.baseOffset <= at['orders/o1']! && at['orders/o1']! < s.nextOffset)!;
    expect(group.nextOffset).toBeGreaterThan(at['orders/o4 tombstone']!);

    const progress: Array<{ phase: string; segmentsDone: number; segmentsTotal: number; bytesDone: number; bytesTotal: number }> = [];
    const report = await compactLog(log, { segments: [group.baseOffset], keyCompaction: { tombstoneBeforeTimestamp: cutoff } }, pool, {
      onProgress: (p) => progress.push(p),
    });
    expect(report.install.installed).toBe(true);
    expect(report.dropped).toEqual({ byRange: 0, byKey: 1, tombstones: 1, byPredicate: 0 });
    const present = new Set([...log.records(0)].map((r) => r.offset));
    const gone = Object.keys(at).filter((name) => !present.has(at[name]!));
    expect(gone.sort()).toEqual(['orders/o1', 'orders/o3 tombstone']);
    expect(progress.map((p) => p.phase)).toContain('keys');
    expect(progress.at(-1)).toMatchObject({ phase: 'rewrite' });
    expect(progress.at(-1)!.segmentsDone).toBe(progress.at(-1)!.segmentsTotal);
    expect(progress.at(-1)!.bytesDone).toBe(progress.at(-1)!.bytesTotal);
    expect(pool.pending).toBe(0);
  });

  it("with the engine's removal rules, only records every subscription has settled go", async () => {
    const log = await logs.open(await temps.make('nfs-pool-rules-'), OPTIONS);
    const at: Record<string, number> = {};
    const put = async (name: string, record: Append) => {
      at[name] = (await log.append([record])).baseOffset;
    };
    await fillUntilRoll(log);
    await put('orders/a1', eventRecord('orders', 'a', '1'));
    await put('audit before', eventRecord('audit', null, 'x'));
    await put('other before', eventRecord('other', null, 'x'));
    await put('orders/c1', eventRecord('orders', 'c', '1'));
    await put('audit after', eventRecord('audit', null, 'x'));
    await fillUntilRoll(log);
    await put('orders/a2', eventRecord('orders', 'a', '2'));
    await put('orders/c2', eventRecord('orders', 'c', '2'));
    await fillUntilRoll(log);
    await waitCompactable(log, 3);
    const group = log.sealedSegments().find((s) => s.baseOffset <= at['orders/a1']! && at['orders/a1']! < s.nextOffset)!;
    const floor = at['orders/c1']!; // every subscription has settled everything below this
    const rules = {
      now: Date.now(),
      policies: [
        { pattern: 'orders', removeAckedAfterMs: null, compaction: 'key' as const, tombstoneRetentionMs: 0 },
        { pattern: 'audit', removeAckedAfterMs: 0, compaction: 'none' as const, tombstoneRetentionMs: 0 },
      ],
      subscriptions: ['orders', 'audit', 'other'].map((pattern) => ({ pattern, commitOffset: floor })),
      keepOffsets: [],
      lastFired: null,
    };
    const report = await compactLog(log, { segments: [group.baseOffset], keyCompaction: { tombstoneBeforeTimestamp: rules.now } }, pool, { rules });
    expect(report.dropped).toMatchObject({ byKey: 1, byPredicate: 1 });
    const present = new Set([...log.records(0)].map((r) => r.offset));
    expect(Object.keys(at).filter((name) => !present.has(at[name]!)).sort()).toEqual(['audit before', 'orders/a1']);
  });

  it('a cancelled rewrite rejects with COMPACTION_ABORTED, removes its files, and frees the log', async () => {
    const dir = await temps.make('nfs-pool-cancel-');
    const log = await logs.open(dir, { ...OPTIONS, segmentBytes: 1024 * 1024, indexIntervalBytes: 4096 });
    for (let i = 0; log.segmentCount < 2; i++) await log.append(Array.from({ length: 100 }, () => eventRecord('bulk', `k${i}`, 'p'.repeat(200))));
    await waitCompactable(log, 1);
    const controller = new AbortController();
    const slow = new CompactionPool({ ioBytesPerSecond: 256 * 1024, chunkBytes: 64 * 1024 });
    try {
      const run = compactLog(log, { segments: [0], dropRanges: [{ from: 0, to: 100 }] }, slow, {
        signal: controller.signal,
        onProgress: () => controller.abort(),
      });
      await expectStorageError(() => run, 'COMPACTION_ABORTED');
    } finally {
      await slow.close();
    }
    expect((await readdir(dir)).filter((n) => n.includes('compacting'))).toEqual([]);
    expect(log.read(0, { maxRecords: 1 })[0]?.offset, 'nothing dropped').toBe(0);
    const report = await compactLog(log, { segments: [0], dropRanges: [{ from: 0, to: 100 }] }, pool);
    expect(report.recordsDropped).toBe(100);
  });

  it('failures in the worker come back as typed StorageErrors and release the log', async () => {
    const dir = await temps.make('nfs-pool-corrupt-');
    const log = await logs.open(dir, OPTIONS);
    await fillUntilRoll(log);
    await fillUntilRoll(log);
    await waitCompactable(log, 1);
    const file = join(dir, segmentFileName(0, 'log'));
    const data = await readFile(file);
    data[40] ^= 0xff;
    await writeFile(file, data);
    await expectStorageError(() => compactLog(log, { segments: [0], dropRanges: [{ from: 0, to: 1 }] }, pool), 'CORRUPT_RECORD');
    expect((await readdir(dir)).filter((n) => n.includes('compacting'))).toEqual([]);
    const task = log.prepareCompaction({ segments: [0] }); // not COMPACTION_BUSY: the failed one was given up
    log.abortCompaction(task.taskId);
  });
});
