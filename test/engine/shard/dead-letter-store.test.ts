import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DeadLetterStore } from '../../../src/engine/shard/dead-letter-store.js';
import { TempDirs } from '../../helpers/temp-dirs.js';
import { waitFor } from '../../helpers/engine-deliveries.js';

const temps = new TempDirs();
afterEach(() => temps.cleanup());

const letter = (offset: number) => ({ offset, key: offset, reason: 'discarded: bad', attempts: 1, replayed: false });

/** Base offset of the journal's oldest remaining segment: above 0 once a snapshot let segments go. */
function firstSegmentBase(dir: string): number {
  const logs = fs.readdirSync(path.join(dir, 'dead-letters')).filter((f) => f.endsWith('.log')).sort();
  return Number(logs[0]!.slice(0, 20));
}

describe('DeadLetterStore', () => {
  it('folds its journal into a snapshot, and reopens to the same letters and owed replays', async () => {
    const dir = await temps.make('dead-letters-');
    const fail = (error: unknown) => {
      throw error;
    };
    let store = await DeadLetterStore.open(dir, 'interval', 5, fail);
    // 35,000 journal entries: letters for two subscriptions, half replayed, some of those finished.
    const N = 20_000;
    for (let i = 0; i < N; i++) {
      store.record(i % 2 ? 'c/a' : 'c/b', [letter(i)], 1_000 + i);
      if (i % 2 === 0) store.markReplayed('c/b', [i], 2_000 + i);
      if (i % 4 === 0) store.markFinished('c/b', [i], 3_000 + i);
    }
    await waitFor(() => fs.existsSync(path.join(dir, 'dead-letters.json')), 5_000, 'a snapshot');
    const before = { a: store.list('c/a', 100_000), b: store.list('c/b', 100_000), owed: store.owed() };
    expect(before.a).toHaveLength(N / 2);
    expect(before.b).toHaveLength(0);
    expect(before.owed.get('c/b')).toHaveLength(N / 4);
    await store.close();
    expect(firstSegmentBase(dir), 'segments covered by a snapshot were deleted').toBeGreaterThan(0);

    store = await DeadLetterStore.open(dir, 'interval', 5, fail);
    expect(store.list('c/a', 100_000)).toEqual(before.a);
    expect(store.list('c/b', 100_000)).toEqual([]);
    expect([...(store.owed().get('c/b') ?? [])].sort((x, y) => x - y)).toEqual([...before.owed.get('c/b')!].sort((x, y) => x - y));
    expect(store.has('c/a', 1)).toBe(true);
    expect(store.has('c/b', 0)).toBe(false);
    await store.close();
  });
});
