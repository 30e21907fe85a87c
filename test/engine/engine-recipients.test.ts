import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryRecorder, positionOf } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

describe('recipients', () => {
  it('delivers an addressed event only to subscriptions of the named clients', async () => {
    const engine = await harness.open({ workers: 1 });
    for (const id of ['svc-a', 'svc-b', 'svc-c']) engine.registerClient({ id });
    const bMain = new DeliveryRecorder();
    const bAudit = new DeliveryRecorder();
    const c = new DeliveryRecorder();
    const a = new DeliveryRecorder();
    await engine.subscribe('svc-b', { name: 'main', pattern: 'orders/*' }, bMain.handler);
    await engine.subscribe('svc-b', { name: 'audit', pattern: '**' }, bAudit.handler);
    await engine.subscribe('svc-c', { name: 'main', pattern: 'orders/*' }, c.handler);
    // The publisher's own subscription is no exception.
    await engine.subscribe('svc-a', { name: 'main', pattern: 'orders/*' }, a.handler);

    const type = 'orders/created';
    const toB = await engine.publish('svc-a', { type, recipients: ['svc-b'], payload: bytes('to-b') });
    const toAll = await engine.publish('svc-a', { type, payload: bytes('to-all') });
    const toCB = await engine.publish('svc-a', { type, recipients: ['svc-c', 'svc-b'], payload: bytes('to-c-and-b') });
    const toNobody = await engine.publish('svc-a', { type, recipients: ['svc-z'], payload: bytes('to-unknown') });
    // Same type, so the same shard and order: once the marker is in, everything before it was decided.
    const marker = await engine.publish('svc-a', { type, payload: bytes('marker') });
    for (const recorder of [bMain, bAudit, c, a]) await recorder.waitForAcked([positionOf(marker)], 5_000);
    await sleep(100);

    const seen = (recorder: DeliveryRecorder) => recorder.deliveries.map((d) => text(d.event.payload));
    expect(seen(bMain)).toEqual(['to-b', 'to-all', 'to-c-and-b', 'marker']);
    expect(seen(bAudit)).toEqual(['to-b', 'to-all', 'to-c-and-b', 'marker']);
    expect(seen(c)).toEqual(['to-all', 'to-c-and-b', 'marker']);
    expect(seen(a)).toEqual(['to-all', 'marker']);
    expect(bMain.deliveries[0]!.event.recipients).toEqual(['svc-b']);
    expect(bMain.deliveries[1]!.event.recipients).toBeNull();
    // Stored all the same: offsets are consecutive in the type's shard.
    expect([toB, toAll, toCB, toNobody, marker].map((r) => r.offset)).toEqual([0, 1, 2, 3, 4].map((i) => toB.offset + i));
  });
});
