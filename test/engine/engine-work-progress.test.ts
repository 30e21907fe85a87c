import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkBoard, type WorkProgress } from '../../src/observability/work-progress.js';
import { DeliveryRecorder, holdAll, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const TYPE = 'orders/created';

/** A board that also keeps every report it was given, in order. */
function recordingBoard(): { board: WorkBoard; reports: WorkProgress[] } {
  const board = new WorkBoard(null);
  const reports: WorkProgress[] = [];
  const update = board.update.bind(board);
  board.update = (progress) => {
    reports.push(progress);
    update(progress);
  };
  return { board, reports };
}

describe('progress of long work', () => {
  it('reports a shard recovery step by step, with the offsets each scan covers', async () => {
    const dataDir = await harness.dataDir();
    let engine = await harness.open({ dataDir, shards: 1 });
    engine.registerClient({ id: 'producer' });
    const events = Array.from({ length: 5000 }, (_, i) => ({ type: TYPE, payload: bytes(`e${i}`), priority: i % 2 === 0 ? 4 : 7 }));
    for (let i = 0; i < events.length; i += 1000) await engine.publishMany('producer', events.slice(i, i + 1000));
    await harness.close(engine);
    // Derived indexes lost (as after a crash before their checkpoint): recovery rebuilds them from the log.
    await fs.rm(path.join(dataDir, 'shards', '0', 'lanes'), { recursive: true });
    await fs.rm(path.join(dataDir, 'shards', '0', 'state', 'schedule'), { recursive: true });

    const { board, reports } = recordingBoard();
    engine = await harness.open({ dataDir, shards: 1, workBoard: board });
    expect(engine.work).toBe(board);
    const recovery = reports.filter((r) => r.id === 'recovery:shard-0');
    const steps = [...new Set(recovery.map((r) => r.detail))];
    expect(steps).toEqual([
      'opening the events log',
      'reading subscription cursors, dead letters and the trail',
      'scanning the log for scheduled events',
      'indexing priority lanes',
      'loading recent event ids for deduplication',
    ]);
    for (const step of ['scanning the log for scheduled events', 'indexing priority lanes']) {
      expect(recovery.find((r) => r.detail === step)).toMatchObject({ total: 5000, unit: 'offsets', kind: 'recovery', shard: 0 });
    }
    const last = recovery.at(-1)!;
    expect(last.finishedAt).toBeGreaterThanOrEqual(last.startedAt);
    expect(last.error).toBeUndefined();
    expect(last.done).toBe(last.total);
    expect(board.view().active).toEqual([]);
    expect(board.view().finished[0]).toMatchObject({ id: 'recovery:shard-0' });
  });

  it('follows a replay from the start until the subscription has caught up again', async () => {
    const { board, reports } = recordingBoard();
    const engine = await harness.open({ shards: 1, workBoard: board });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    const reader = new DeliveryRecorder();
    const consumer = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, reader.handler);
    const events = Array.from({ length: 3000 }, (_, i) => ({ type: TYPE, payload: bytes(`e${i}`) }));
    for (let i = 0; i < events.length; i += 1000) await engine.publishMany('producer', events.slice(i, i + 1000));
    await waitFor(() => reader.acked.size === 3000, 10_000, () => `${reader.acked.size} of 3000 acked`);
    await consumer.close();

    await engine.seek('reader', 'orders', { from: 'all' });
    await waitFor(() => board.view().active.some((w) => w.kind === 'replay'), 5_000, 'the replay reported');
    const running = board.view().active.find((w) => w.kind === 'replay')!;
    expect(running).toMatchObject({ id: 'replay:reader/orders:0', total: 3000, unit: 'offsets', done: 0 });

    const again = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, again.handler);
    await waitFor(() => board.view().finished.some((w) => w.kind === 'replay'), 10_000, () => `replay done (${again.acked.size} acked)`);
    expect(board.view().finished.find((w) => w.kind === 'replay')).toMatchObject({ done: 3000, total: 3000 });
    expect(again.acked.size).toBe(3000);
    const done = reports.filter((r) => r.kind === 'replay').map((r) => r.done);
    expect(done, 'progress only moves forward').toEqual([...done].sort((a, b) => a - b));
  });

  it('follows dead letters going back into their subscription', async () => {
    const { board } = recordingBoard();
    const engine = await harness.open({ shards: 1, workBoard: board });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    const discardAll = new DeliveryRecorder((delivery, consumer) => consumer.discard(delivery, 'not now'));
    const consumer = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, discardAll.handler);
    for (let i = 0; i < 20; i++) await engine.publish('producer', { type: TYPE, payload: bytes(`e${i}`) });
    await waitFor(() => discardAll.deliveries.length === 20, 5_000, 'twenty deliveries');
    let letters = 0;
    await waitFor(() => letters === 20, 5_000, () => `${letters} dead letters`, async () => {
      letters = (await engine.deadLetters('reader', 'orders')).length;
    });
    await consumer.close();

    // Held unacked: the window (maxInFlight 5) lets five go back at a time.
    const holder = new DeliveryRecorder(holdAll);
    const holding = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**', maxInFlight: 5 }, holder.handler);
    expect(await engine.replayDeadLetters('reader', 'orders', 'all')).toBe(20);
    await waitFor(() => board.view().active.some((w) => w.id === 'dead-letter-replay:reader/orders:0'), 5_000, 'the dead-letter replay reported');
    expect(board.view().active.find((w) => w.kind === 'replay')).toMatchObject({ total: 20, unit: 'events' });
    await waitFor(() => holder.deliveries.length === 5, 5_000, 'five replayed deliveries');
    expect(board.view().active.find((w) => w.kind === 'replay')?.done).toBeLessThan(20);

    await holding.close();
    const acker = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**', maxInFlight: 5 }, acker.handler);
    await waitFor(() => board.view().finished.some((w) => w.kind === 'replay'), 10_000, () => `dead-letter replay done (${acker.acked.size} acked)`);
    expect(board.view().finished.find((w) => w.kind === 'replay')).toMatchObject({ done: 20, total: 20 });
  });
});
