import { afterEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import { DeliveryRecorder, positionOf } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

describe('publish window', () => {
  it('refuses the publish beyond the window with a retryable OVERLOADED, per producer', async () => {
    const WINDOW = 10;
    const engine = await harness.open({ workers: 1, publishWindow: WINDOW });
    for (const id of ['busy', 'calm', 'reader']) engine.registerClient({ id });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'everything', pattern: '**', start: { from: 'all' } }, reader.handler);

    // All issued in one turn: none can have confirmed yet.
    const burst = Array.from({ length: WINDOW + 1 }, (_, i) => engine.publish('busy', { type: 'orders/created', payload: bytes(`busy-${i}`) }));
    const calm = engine.publish('calm', { type: 'orders/created', payload: bytes('calm') });
    const outcomes = await Promise.allSettled(burst);

    const confirmed = outcomes.filter((o) => o.status === 'fulfilled');
    expect(confirmed).toHaveLength(WINDOW);
    const refused = outcomes[WINDOW]!;
    expect(refused.status).toBe('rejected');
    const error = (refused as PromiseRejectedResult).reason as EngineError;
    expect(error).toBeInstanceOf(EngineError);
    expect(error.code).toBe('OVERLOADED');
    expect(error.retryable).toBe(true);
    // Another producer has its own window.
    expect((await calm).duplicate).toBe(false);

    // Once the window drained, the retry goes through.
    const retried = await engine.publish('busy', { type: 'orders/created', payload: bytes(`busy-${WINDOW}`) });
    await reader.waitForAcked([positionOf(retried)], 5_000);
    await sleep(100);
    const seen = reader.deliveries.map((d) => text(d.event.payload)).filter((p) => p.startsWith('busy-'));
    expect(seen, 'the refused publish was not stored; its retry was').toEqual(Array.from({ length: WINDOW + 1 }, (_, i) => `busy-${i}`));
  });
});
