import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Log } from '../../native-free-storage/index.js';

describe("retention with fsync 'never'", () => {
  let dir = '';
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('deletes old segments whose data was never fsynced, and closes cleanly afterwards', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ensync-retention-never-'));
    const log = await Log.open(dir, { fsync: 'never', segmentBytes: 4096, retentionBytes: 16 * 1024 });
    const body = Buffer.alloc(500, 1);
    for (let i = 0; i < 200; i++) await log.append([{ body }]);
    expect(log.sizeBytes).toBeLessThanOrEqual(16 * 1024 + 4096);
    expect(log.startOffset).toBeGreaterThan(0);
    const kept = [...log.records(log.startOffset)];
    expect(kept.at(-1)!.offset).toBe(199);
    await log.close();

    const reopened = await Log.open(dir);
    expect(reopened.recovery.clean).toBe(true);
    expect(reopened.startOffset).toBe(log.startOffset);
    expect(reopened.nextOffset).toBe(200);
    await reopened.close();
  });
});
