import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/engine/delivery.js';
import type { Engine } from '../../src/engine/engine.js';
import type { DeadLetterView } from '../../src/engine/shard-messages.js';
import { DeliveryRecorder, holdAll, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const TYPE = 'orders/created';

/** Dead letters are recorded by the shard as it settles; poll until `count` are listed. */
async function deadLettersOnceThere(engine: Engine, count: number): Promise<DeadLetterView[]> {
  let letters: DeadLetterView[] = [];
  await waitFor(
    () => letters.length >= count,
    5_000,
    () => `${letters.length} of ${count} dead letters`,
    async () => {
      letters = await engine.deadLetters('reader', 'orders');
    },
  );
  return letters;
}

describe('dead letters', () => {
  it('lists events past maxDeliveries and discarded ones, with reason and attempts; neither comes back by itself', async () => {
    const engine = await harness.open();
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    // Discard "poison", never ack "stuck", ack the rest.
    const reader = new DeliveryRecorder((delivery, consumer, recorder) => {
      const payload = text(delivery.event.payload);
      if (payload === 'poison') consumer.discard(delivery, 'cannot parse');
      else if (payload !== 'stuck') recorder.ack(consumer, delivery);
    });
    await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**', ackTimeoutMs: 100, maxDeliveries: 3 }, reader.handler);
    const poison = await engine.publish('producer', { type: TYPE, payload: bytes('poison') });
    const stuck = await engine.publish('producer', { type: TYPE, payload: bytes('stuck') });
    const fine = await engine.publish('producer', { type: TYPE, payload: bytes('fine') });

    await waitFor(() => reader.deliveriesOf(stuck.id).length === 3, 5_000, () => `${reader.deliveriesOf(stuck.id).length} of 3 deliveries of stuck`);
    const letters = await deadLettersOnceThere(engine, 2);
    const byId = new Map(letters.map((l) => [l.id, l]));
    expect(byId.get(poison.id)).toMatchObject({ shard: poison.shard, offset: poison.offset, type: TYPE, reason: 'discarded: cannot parse', attempts: 1 });
    expect(byId.get(stuck.id)).toMatchObject({ offset: stuck.offset, reason: 'not acked after 3 deliveries', attempts: 3 });
    expect(byId.has(fine.id)).toBe(false);

    await sleep(400);
    expect(reader.deliveriesOf(poison.id)).toHaveLength(1);
    expect(reader.deliveriesOf(stuck.id)).toHaveLength(3);
  });

  it('replays one or all back into the subscription; replays owed survive a restart', async () => {
    const dataDir = await harness.dataDir();
    let engine = await harness.open({ dataDir });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    const discardAll = new DeliveryRecorder((delivery, consumer) => consumer.discard(delivery, 'not now'));
    let consumer = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, discardAll.handler);
    const receipts = [];
    for (let i = 0; i < 3; i++) receipts.push(await engine.publish('producer', { type: TYPE, payload: bytes(`event-${i}`) }));
    await waitFor(() => discardAll.deliveries.length === 3, 5_000, 'three deliveries');
    const letters = await deadLettersOnceThere(engine, 3);
    expect(letters.map((l) => l.id).sort()).toEqual(receipts.map((r) => r.id).sort());
    await consumer.close();

    // Replay one, with a consumer that holds it unacked, then restart: it is still owed.
    const holder = new DeliveryRecorder(holdAll);
    consumer = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, holder.handler);
    expect(await engine.replayDeadLetters('reader', 'orders', [{ shard: receipts[0]!.shard, offset: receipts[0]!.offset }])).toBe(1);
    await waitFor(() => holder.deliveries.length === 1, 5_000, 'the replayed event delivered');
    expect(holder.deliveries[0]).toMatchObject({ offset: receipts[0]!.offset, attempt: 1 });
    expect((await engine.deadLetters('reader', 'orders')).map((l) => l.id).sort()).toEqual([receipts[1]!.id, receipts[2]!.id].sort());

    await harness.close(engine);
    engine = await harness.open({ dataDir });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    const acker = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, acker.handler);
    await waitFor(() => acker.acked.size === 1, 5_000, 'the owed replay delivered after the restart');
    expect(acker.deliveries.map((d: Delivery) => text(d.event.payload))).toEqual(['event-0']);

    // Replay the rest; once acked, nothing is owed any more, across another restart.
    expect(await engine.replayDeadLetters('reader', 'orders', 'all')).toBe(2);
    await waitFor(() => acker.acked.size === 3, 5_000, 'all replays acked');
    expect(await engine.deadLetters('reader', 'orders')).toEqual([]);
    await sleep(100);
    await harness.close(engine);
    engine = await harness.open({ dataDir });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    const after = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**' }, after.handler);
    await sleep(300);
    expect(after.deliveries).toEqual([]);
  });
  it('puts many dead letters back at the pace of the window, never more outstanding than maxInFlight', async () => {
    const engine = await harness.open({ shards: 1 });
    for (const id of ['producer', 'reader']) engine.registerClient({ id });
    const discardAll = new DeliveryRecorder((delivery, consumer) => consumer.discard(delivery, 'later'));
    const first = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**', maxInFlight: 2 }, discardAll.handler);
    for (let i = 0; i < 6; i++) await engine.publish('producer', { type: TYPE, payload: bytes(`event-${i}`) });
    await deadLettersOnceThere(engine, 6);
    await first.close();

    const held: Delivery[] = [];
    const holder = new DeliveryRecorder((delivery) => held.push(delivery));
    const consumer = await engine.subscribe('reader', { name: 'orders', pattern: 'orders/**', maxInFlight: 2 }, holder.handler);
    expect(await engine.replayDeadLetters('reader', 'orders', 'all')).toBe(6);
    await waitFor(() => held.length === 2, 5_000, () => `${held.length} of 2 replays out`);
    await sleep(200);
    expect(held, 'the window bounds the replays out at once').toHaveLength(2);
    while (holder.deliveries.length < 6) {
      const next = held.splice(0);
      consumer.ack(next);
      await waitFor(() => held.length > 0 || holder.deliveries.length === 6, 5_000, () => `${holder.deliveries.length} of 6 replays delivered`);
    }
    consumer.ack(held.splice(0));
    expect(holder.deliveries.map((d) => text(d.event.payload)).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `event-${i}`));
    await deadLettersOnceThere(engine, 0);
    expect(await engine.deadLetters('reader', 'orders')).toEqual([]);
  });
});
