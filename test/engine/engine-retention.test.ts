import { afterEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import { DeliveryRecorder, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, expectEngineError } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

describe('event retention', () => {
  it('deletes the oldest segments past a new retention at once, keeps the setting across a restart, and subscriptions skip ahead', async () => {
    const dataDir = await harness.dataDir();
    let engine = await harness.open({ dataDir, shards: 1, segmentBytes: 64 * 1024 });
    engine.registerClient({ id: 'app' });
    expect(engine.retention).toEqual({ retentionMs: null, retentionBytes: null });
    const ids: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const results = await engine.publishMany('app', Array.from({ length: 100 }, () => ({ type: 'logs/line', payload: new Uint8Array(1000) })));
      for (const r of results) {
        if (r instanceof EngineError) throw r;
        ids.push(r.id);
      }
    }
    const deleted = await engine.setRetention({ retentionBytes: 300 * 1024 });
    expect(deleted.segmentsDeleted).toBeGreaterThan(0);
    expect(deleted.bytesDeleted).toBeGreaterThan(0);
    await expectEngineError(engine.eventTrail('logs/line', ids[0]!), 'NOT_FOUND');
    expect((await engine.eventTrail('logs/line', ids.at(-1)!)).event.id).toBe(ids.at(-1));

    // A new subscription from the oldest event starts at what is left.
    const reader = new DeliveryRecorder();
    await engine.subscribe('app', { name: 'all', pattern: 'logs/**', start: { from: 'all' } }, reader.handler);
    await waitFor(() => reader.deliveredIds.has(ids.at(-1)!), 10_000, 'the newest event');
    expect(reader.deliveredIds.has(ids[0]!)).toBe(false);

    await expectEngineError(engine.setRetention({ retentionBytes: -1 }), 'INVALID_ARGUMENT', 'retentionBytes');
    await expectEngineError(engine.setRetention({ keep: 'forever' }), 'INVALID_ARGUMENT', 'keep');
    await harness.close(engine);
    engine = await harness.open({ dataDir, shards: 1, segmentBytes: 64 * 1024 });
    expect(engine.retention).toEqual({ retentionMs: null, retentionBytes: 300 * 1024 });
  });
});
