import { afterEach, describe, expect, it } from 'vitest';
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

describe('segment roll', () => {
  it('rolls by size: no segment exceeds segmentBytes and sealed segments are nearly full', async () => {
    const dir = await temps.make();
    const segmentBytes = 4_096;
    const log = await logs.open(dir, { segmentBytes, fsync: 'always' });
    const rng = new Prng(21);
    const bodies: Buffer[] = [];
    let previousCount = log.segmentCount;
    for (let i = 0; i < 200; i++) {
      const body = rng.bytes(rng.int(100, 400));
      bodies.push(body);
      await log.append([{ body }]);
      expect(log.segmentCount, 'segment count never shrinks').toBeGreaterThanOrEqual(previousCount);
      previousCount = log.segmentCount;
    }
    const segments = await listSegments(dir);
    expect(segments.length).toBe(log.segmentCount);
    expect(segments.length, '~60 KiB of records in 4 KiB segments').toBeGreaterThan(10);
    for (const [i, segment] of segments.entries()) {
      expect(segment.logBytes, `segment ${segment.baseOffset} size`).toBeLessThanOrEqual(segmentBytes);
      if (i < segments.length - 1) {
        // The next record (<= 400 bytes of body plus framing) did not fit, so little room was left.
        expect(segment.logBytes, `sealed segment ${segment.baseOffset} fill`).toBeGreaterThan(segmentBytes - 1_000);
      }
    }
    expect(segments.map((s) => s.baseOffset)).toEqual([...segments.map((s) => s.baseOffset)].sort((a, b) => a - b));
    const stored = [...log.records(0)];
    expect(stored.map((r) => r.offset)).toEqual(bodies.map((_, i) => i));
    stored.forEach((r, i) => expect(r.body.equals(bodies[i] as Buffer), `body ${i}`).toBe(true));
  });

  it('accepts a record larger than segmentBytes (below maxRecordBytes) in a segment of its own', async () => {
    const dir = await temps.make();
    const log = await logs.open(dir, { segmentBytes: 1_024, fsync: 'always' });
    await log.append([{ body: Buffer.alloc(300, 1) }]);
    const huge = new Prng(22).bytes(10_000);
    const result = await log.append([{ body: huge }]);
    expect(result).toEqual({ baseOffset: 1, lastOffset: 1 });
    await log.append([{ body: Buffer.alloc(300, 3) }]);
    expect(log.read(1, { maxRecords: 1 })[0]?.body.equals(huge)).toBe(true);
    const segments = await listSegments(dir);
    expect(segments.map((s) => s.baseOffset)).toEqual([0, 1, 2]);
    await logs.close(log);

    const reopened = await logs.open(dir, { segmentBytes: 1_024 });
    expect(reopened.nextOffset).toBe(3);
    expect(reopened.read(0).map((r) => r.body.length)).toEqual([300, 10_000, 300]);
  });

  it('rolls by age using record timestamps, also after reopen', async () => {
    const dir = await temps.make();
    const options = { segmentMs: 1_000, segmentBytes: 1 << 20, fsync: 'always' } as const;
    const log = await logs.open(dir, options);
    const t0 = Date.now();
    const appendAt = async (delta: number) => log.append([{ body: Buffer.from(`at +${delta}`), timestamp: t0 + delta }]);

    await appendAt(0);
    await appendAt(400);
    await appendAt(900);
    expect(log.segmentCount, 'all within 1 s of the first record').toBe(1);
    await appendAt(1_500); // offset 3: first record is 1.5 s older
    expect(log.segmentCount).toBe(2);
    await appendAt(2_000);
    expect(log.segmentCount, 'new segment started at +1500').toBe(2);
    await appendAt(2_600); // offset 5
    expect(log.segmentCount).toBe(3);
    expect((await listSegments(dir)).map((s) => s.baseOffset)).toEqual([0, 3, 5]);
    await logs.close(log);

    const reopened = await logs.open(dir, options);
    expect(reopened.segmentCount).toBe(3);
    await reopened.append([{ body: Buffer.from('at +3000'), timestamp: t0 + 3_000 }]);
    expect(reopened.segmentCount, 'active segment first record (+2600) restored from disk').toBe(3);
    await reopened.append([{ body: Buffer.from('at +3700'), timestamp: t0 + 3_700 }]); // offset 7
    expect(reopened.segmentCount).toBe(4);
    expect((await listSegments(dir)).map((s) => s.baseOffset)).toEqual([0, 3, 5, 7]);
    expect(reopened.read(0).map((r) => r.timestamp - t0)).toEqual([0, 400, 900, 1_500, 2_000, 2_600, 3_000, 3_700]);
  });
});
