import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Log, OffsetIndex, TimeIndex, type SharedIndexImages } from '../../native-free-storage/index.js';

const workerScript = new URL('../fixtures/index-reader-worker.mjs', import.meta.url);

describe('index images shared with worker threads', () => {
  let dir = '';
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function localAnswers(images: SharedIndexImages[], offsets: number[], timestamps: number[]) {
    return images.map((image) => {
      const offsetIndex = OffsetIndex.attach(image.offsetIndex, image.baseOffset);
      const timeIndex = TimeIndex.attach(image.timeIndex, image.baseOffset);
      return {
        entries: offsetIndex.count,
        positions: offsets.map((offset) => offsetIndex.lookup(offset)),
        before: timestamps.map((timestamp) => timeIndex.lastOffsetBefore(timestamp)),
      };
    });
  }

  async function ask(worker: Worker, offsets: number[], timestamps: number[]) {
    worker.postMessage({ type: 'lookup', offsets, timestamps });
    const [reply] = await once(worker, 'message');
    return reply.answers;
  }

  it('a worker sees the same entries without copying, including entries added after it attached', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ensync-shared-index-'));
    const log = await Log.open(dir, { segmentBytes: 256 * 1024, indexIntervalBytes: 512, fsync: 'never' });
    const worker = new Worker(workerScript);
    try {
      const body = Buffer.alloc(200, 7);
      for (let i = 0; i < 20; i++) await log.append(Array.from({ length: 100 }, (_, k) => ({ body, timestamp: 1_000 + i * 100 + k })));
      const images = log.sharedIndexImages();
      worker.postMessage({ type: 'attach', images });
      await once(worker, 'message');

      const offsets = [0, 1, 99, 500, 1234, 1999];
      const timestamps = [0, 1_000, 1_550, 2_999, 5_000];
      const before = await ask(worker, offsets, timestamps);
      expect(before).toEqual(localAnswers(images, offsets, timestamps));
      expect(before.reduce((sum: number, answer: { entries: number }) => sum + answer.entries, 0)).toBeGreaterThan(100);

      // Appends into the active segment publish entries the worker sees through the same memory.
      const activeBefore = before[before.length - 1].entries;
      for (let i = 0; i < 3; i++) await log.append(Array.from({ length: 50 }, () => ({ body, timestamp: 4_000 })));
      const images2 = log.sharedIndexImages();
      expect(images2[images.length - 1]!.offsetIndex).toBe(images[images.length - 1]!.offsetIndex);
      const after = await ask(worker, [2100], [4_000]);
      expect(after[after.length - 1].entries).toBeGreaterThan(activeBefore);
      expect(after).toEqual(localAnswers(images, [2100], [4_000]));
    } finally {
      await worker.terminate();
      await log.close();
    }
  });
});
