import { afterEach, describe, expect, it } from 'vitest';
import { defaultFileIO, type Log } from '../../native-free-storage/index.js';
import { FaultyFileIO } from '../helpers/faulty-file-io.js';
import { SlowFileIO } from '../helpers/slow-file-io.js';
import type { AppendOutcome } from '../helpers/log-types.js';
import { OpenLogs } from '../helpers/open-logs.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const temps = new TempDirs();
const logs = new OpenLogs();
afterEach(async () => {
  await logs.closeAll();
  await temps.cleanup();
});

interface Resolution {
  index: number;
  result: AppendOutcome;
  durableAtResolution: number;
}

/** Issues `count` single-record appends without awaiting in between; records durableOffset as each resolves. */
function appendConcurrently(log: Log, count: number): Promise<Resolution[]> {
  const pending: Array<Promise<Resolution>> = [];
  for (let index = 0; index < count; index++) {
    const promise = log.append([{ body: Buffer.from(`concurrent ${index}`) }]);
    pending.push(promise.then((result) => ({ index, result, durableAtResolution: log.durableOffset })));
  }
  return Promise.all(pending);
}

function expectCoversAll(resolutions: Resolution[], log: Log, count: number): void {
  const offsets = resolutions.map((r) => r.result.baseOffset).sort((a, b) => a - b);
  expect(offsets, 'every append got its own consecutive offset').toEqual(Array.from({ length: count }, (_, i) => i));
  for (const { index, result, durableAtResolution } of resolutions) {
    expect(result.lastOffset).toBe(result.baseOffset);
    expect(durableAtResolution, `append ${index} (offset ${result.lastOffset}) was durable when it resolved`).toBeGreaterThan(
      result.lastOffset,
    );
  }
  expect(log.durableOffset).toBe(count);
  const stored = log.read(0, { maxRecords: count + 10 });
  expect(stored.length).toBe(count);
  for (const { index, result } of resolutions) {
    expect(stored[result.baseOffset]?.body.toString()).toBe(`concurrent ${index}`);
  }
}

describe('group commit', () => {
  it("fsync 'interval': many concurrent appends share a few fsyncs and all become durable", async () => {
    const io = new FaultyFileIO();
    const log = await logs.open(await temps.make('nfs-group-'), { fsync: 'interval', fsyncIntervalMs: 20, io });
    const count = 500;
    const fsyncsBefore = io.fsyncCalls;
    const all = appendConcurrently(log, count);
    // Nothing can be durable yet (no fsync ran), so readers must not see the records.
    expect(log.nextOffset).toBe(count);
    expect(log.durableOffset).toBe(0);
    expect(log.read(0)).toEqual([]);

    const resolutions = await all;
    expectCoversAll(resolutions, log, count);
    expect(io.fsyncCalls - fsyncsBefore, '500 appends in one burst are committed by a handful of fsyncs').toBeGreaterThan(0);
    expect(io.fsyncCalls - fsyncsBefore).toBeLessThanOrEqual(20);
  });

  it("fsync 'always': every resolved append is already durable, one at a time and in a burst", async () => {
    const io = new FaultyFileIO();
    const log = await logs.open(await temps.make('nfs-group-'), { fsync: 'always', io });
    const sequential = 50;
    const fsyncsBefore = io.fsyncCalls;
    for (let i = 0; i < sequential; i++) {
      const result = await log.append([{ body: Buffer.from(`sequential ${i}`) }, { body: Buffer.from('pair') }]);
      expect(result).toEqual({ baseOffset: 2 * i, lastOffset: 2 * i + 1 });
      expect(log.durableOffset, `append ${i} durable on resolution`).toBeGreaterThan(result.lastOffset);
    }
    expect(io.fsyncCalls - fsyncsBefore, "'always' fsyncs before confirming each awaited append").toBeGreaterThanOrEqual(
      sequential,
    );

    const burst = 200;
    const pending: Array<Promise<{ lastOffset: number; durable: number }>> = [];
    for (let i = 0; i < burst; i++) {
      pending.push(
        log.append([{ body: Buffer.from(`burst ${i}`) }]).then((r) => ({ lastOffset: r.lastOffset, durable: log.durableOffset })),
      );
    }
    for (const { lastOffset, durable } of await Promise.all(pending)) expect(durable).toBeGreaterThan(lastOffset);
    expect(log.durableOffset).toBe(2 * sequential + burst);
    const burstBodies = log.read(2 * sequential, { maxRecords: burst }).map((r) => r.body.toString());
    expect(burstBodies, 'offsets follow the order append() was called in').toEqual(
      Array.from({ length: burst }, (_, i) => `burst ${i}`),
    );
  });

  it.each(['always', 'interval'] as const)(
    "fsync '%s' with a slow disk: segments rolled while an fsync is pending are still synced, not closed under it",
    async (fsync) => {
      const io = new SlowFileIO(2);
      // 1 KiB segments and 300-byte records: a roll every few appends, each while an fsync is queued.
      const log = await logs.open(await temps.make('nfs-group-'), { fsync, fsyncIntervalMs: 1, segmentBytes: 1_024, io });
      // Outcomes are captured as each append settles, so a rejection is never left unhandled.
      const pending: Array<Promise<string | null>> = [];
      for (let i = 0; i < 120; i++) {
        pending.push(log.append([{ body: Buffer.alloc(300, i) }]).then(() => null, (error: Error) => error.message));
        if (i % 5 === 4) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const rejections = (await Promise.all(pending)).filter((message) => message !== null);
      expect(rejections.slice(0, 3), `${rejections.length} appends rejected`).toEqual([]);
      expect(io.mismatches, 'fsyncs ran against the files they were issued for').toEqual([]);
      expect(log.segmentCount).toBeGreaterThan(20);
      expect(log.durableOffset).toBe(120);
      const stored = [...log.records(0)];
      expect(stored.map((r) => r.body[0])).toEqual(Array.from({ length: 120 }, (_, i) => i));
    },
  );
  it("fsync 'never': appends confirm without an fsync, and flush() and close() still fsync the data", async () => {
    let fsyncs = 0;
    const io = { ...defaultFileIO, fsync: (fd: number) => ((fsyncs += 1), defaultFileIO.fsync(fd)) };
    const log = await logs.open(await temps.make('nfs-group-'), { fsync: 'never', io });
    for (let i = 0; i < 10; i++) await log.append([{ body: Buffer.alloc(100, i) }]);
    expect(fsyncs, 'no fsync on the append path').toBe(0);
    expect(log.durableOffset).toBe(10);
    await log.flush();
    expect(fsyncs).toBe(1);
    await log.append([{ body: Buffer.alloc(100, 10) }]);
    await log.close();
    expect(fsyncs).toBe(2);
  });
});
