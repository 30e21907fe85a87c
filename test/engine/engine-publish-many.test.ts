import { afterEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import type { Receipt } from '../../src/engine/delivery.js';
import { DeliveryRecorder } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

describe('publishMany', () => {
  it('answers each event with its receipt or its own typed error, in order, and stores only the valid ones', async () => {
    const engine = await harness.open({ publishWindow: 3 });
    engine.registerClient({ id: 'producer' });
    engine.registerClient({ id: 'reader' });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'all', pattern: '**', start: { from: 'all' } }, reader.handler);

    const first = await engine.publish('producer', { type: 'orders/created', id: 'order-1', payload: bytes('one') });
    const results = await engine.publishMany('producer', [
      { type: 'orders/created', payload: bytes('two') },
      { type: 'orders//bad', payload: bytes('bad type') },
      { type: 'orders/created', id: 'order-1', payload: bytes('repeat') },
      { type: 'orders/paid', payload: bytes('three') },
      { type: 'orders/paid', payload: bytes('over the window') },
    ]);

    const [two, badType, repeat, three, overWindow] = results;
    expect((two as Receipt).duplicate).toBe(false);
    expect(badType).toBeInstanceOf(EngineError);
    expect((badType as EngineError).code).toBe('INVALID_EVENT');
    expect((badType as EngineError).field).toBe('type');
    expect(repeat).toEqual({ ...first, duplicate: true });
    expect((three as Receipt).type).toBe('orders/paid');
    // The window counts the batch's accepted events too: the fourth unconfirmed one is refused.
    expect((overWindow as EngineError).code).toBe('OVERLOADED');
    expect((overWindow as EngineError).retryable).toBe(true);

    await reader.waitForIds([first.id, (two as Receipt).id, (three as Receipt).id], 5_000);
    expect(reader.deliveries.map((d) => text(d.event.payload)).sort()).toEqual(['one', 'three', 'two']);
  });

  it('resolves an empty batch, and refuses a non-array', async () => {
    const engine = await harness.open();
    engine.registerClient({ id: 'producer' });
    expect(await engine.publishMany('producer', [])).toEqual([]);
    await expect(engine.publishMany('producer', 'nope' as unknown as unknown[])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
