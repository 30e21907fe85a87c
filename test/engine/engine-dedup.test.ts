import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.js';
import { DeliveryRecorder, positionOf } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const DEDUP_WINDOW_MS = 2_500;

async function open(dataDir: string): Promise<Engine> {
  const engine = await harness.open({ dataDir, workers: 1, shards: 4, dedupWindowMs: DEDUP_WINDOW_MS });
  engine.registerClient({ id: 'producer' });
  engine.registerClient({ id: 'reader' });
  return engine;
}

describe('idempotent publish', () => {
  it('answers a repeated id with the original receipt, across a restart, until the window passes', async () => {
    const dataDir = await harness.dataDir();
    const first = await open(dataDir);
    const publishedAt = Date.now();
    const original = await first.publish('producer', { type: 'orders/created', id: 'order-1', payload: bytes('first') });
    expect(original).toMatchObject({ id: 'order-1', type: 'orders/created', duplicate: false });
    const again = await first.publish('producer', { type: 'orders/created', id: 'order-1', payload: bytes('second') });
    expect(again).toEqual({ ...original, duplicate: true });
    await harness.close(first);

    const second = await open(dataDir);
    const reader = new DeliveryRecorder();
    await second.subscribe('reader', { name: 'all', pattern: '**', start: { from: 'all' } }, reader.handler);
    const afterRestart = await second.publish('producer', { type: 'orders/created', id: 'order-1', payload: bytes('third') });
    expect(Date.now() - publishedAt, 'still inside the window (the test machine was too slow otherwise)').toBeLessThan(DEDUP_WINDOW_MS);
    expect(afterRestart).toEqual({ ...original, duplicate: true });
    // The id is scoped by type: the same id of another type is a different event.
    const otherType = await second.publish('producer', { type: 'orders/paid', id: 'order-1', payload: bytes('paid') });
    expect(otherType.duplicate).toBe(false);
    expect(otherType.type).toBe('orders/paid');

    await sleep(Math.max(0, publishedAt + DEDUP_WINDOW_MS + 200 - Date.now()));
    const afterWindow = await second.publish('producer', { type: 'orders/created', id: 'order-1', payload: bytes('fourth') });
    expect(afterWindow.duplicate).toBe(false);
    expect(afterWindow.shard).toBe(original.shard);
    expect(afterWindow.offset).toBeGreaterThan(original.offset);

    // What is stored: the original, the other type, and the copy after the window, nothing else.
    const stored = [original, otherType, afterWindow];
    await reader.waitForAcked(stored.map(positionOf), 5_000);
    await sleep(200);
    expect(reader.deliveries.map(positionOf).sort()).toEqual(stored.map(positionOf).sort());
    expect(reader.deliveries.map((d) => text(d.event.payload)).sort()).toEqual(['first', 'fourth', 'paid']);
  });

  it('stores an id once when it is published twice at the same moment', async () => {
    const engine = await open(await harness.dataDir());
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'all', pattern: '**' }, reader.handler);
    // Same turn of the event loop: both go to the shard in one batch.
    const [a, b] = await Promise.all([
      engine.publish('producer', { type: 'orders/created', id: 'twin', payload: bytes('a') }),
      engine.publish('producer', { type: 'orders/created', id: 'twin', payload: bytes('b') }),
    ]);
    expect(a!.duplicate).toBe(false);
    expect(b).toEqual({ ...a, duplicate: true });
    // Consecutive turns: the second arrives while the first is still being written.
    const c = engine.publish('producer', { type: 'orders/created', id: 'pair', payload: bytes('c') });
    await new Promise((resolve) => setImmediate(resolve));
    const d = engine.publish('producer', { type: 'orders/created', id: 'pair', payload: bytes('d') });
    const [first, second] = await Promise.all([c, d]);
    expect(second).toEqual({ ...first, duplicate: true });

    await reader.waitForAcked([positionOf(a!), positionOf(first!)], 5_000);
    await sleep(200);
    expect(reader.deliveries.map((x) => text(x.event.payload)).sort()).toEqual(['a', 'c']);
  });
});
