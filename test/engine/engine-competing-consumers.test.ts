import { afterEach, describe, expect, it } from 'vitest';
import type { Receipt } from '../../src/engine/delivery.js';
import { DeliveryRecorder, holdAll, positionOf, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const TYPES = ['orders/created', 'orders/paid', 'orders/shipped', 'orders/returned'];

async function openWithClients() {
  const engine = await harness.open({ workers: 2, shards: 4 });
  engine.registerClient({ id: 'producer' });
  engine.registerClient({ id: 'billing' });
  return engine;
}

async function publishMany(engine: Awaited<ReturnType<typeof openWithClients>>, count: number): Promise<Receipt[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => engine.publish('producer', { type: TYPES[i % TYPES.length]!, payload: bytes(String(i)) })));
}

describe('competing consumers', () => {
  it('split one subscription: each gets some, together all, none twice', async () => {
    const engine = await openWithClients();
    const first = new DeliveryRecorder();
    const second = new DeliveryRecorder();
    // A long ack timeout: any event seen twice would be a wrong split, not a timeout.
    const options = { name: 'invoices', pattern: 'orders/**', ackTimeoutMs: 30_000 };
    await engine.subscribe('billing', options, first.handler);
    await engine.subscribe('billing', options, second.handler);

    const receipts = await publishMany(engine, 400);
    const all = receipts.map(positionOf);
    await waitFor(
      () => all.every((p) => first.acked.has(p) || second.acked.has(p)),
      10_000,
      () => `${all.filter((p) => first.acked.has(p) || second.acked.has(p)).length} of ${all.length} acked by either`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));

    const firstPositions = first.deliveries.map(positionOf);
    const secondPositions = second.deliveries.map(positionOf);
    expect(firstPositions.length).toBeGreaterThan(0);
    expect(secondPositions.length).toBeGreaterThan(0);
    expect(new Set([...firstPositions, ...secondPositions])).toEqual(new Set(all));
    expect(firstPositions.length + secondPositions.length, 'every event delivered exactly once across both').toBe(all.length);
    expect([...first.deliveries, ...second.deliveries].every((d) => d.attempt === 1)).toBe(true);
    // Round robin spreads the load: neither consumer starves.
    expect(Math.min(firstPositions.length, secondPositions.length)).toBeGreaterThan(all.length / 10);
  });

  it("redelivers a closed consumer's unacked deliveries to the other consumer", async () => {
    const engine = await openWithClients();
    const quitter = new DeliveryRecorder(holdAll);
    const stayer = new DeliveryRecorder();
    const options = { name: 'invoices', pattern: 'orders/**', ackTimeoutMs: 30_000 };
    const quitting = await engine.subscribe('billing', options, quitter.handler);
    await engine.subscribe('billing', options, stayer.handler);

    const receipts = await publishMany(engine, 200);
    const all = receipts.map(positionOf);
    await waitFor(
      () => quitter.deliveries.length + stayer.deliveries.length === all.length,
      10_000,
      () => `${quitter.deliveries.length + stayer.deliveries.length} of ${all.length} delivered`,
    );
    const heldByQuitter = quitter.deliveries.map(positionOf);
    expect(heldByQuitter.length, 'the quitting consumer got a share').toBeGreaterThan(0);

    const closedAt = Date.now();
    await quitting.close();
    await stayer.waitForAcked(all, 5_000);
    // Well before the 30 s ack timeout: the close itself handed them over.
    expect(Date.now() - closedAt).toBeLessThan(5_000);
    for (const position of heldByQuitter) {
      const redelivered = stayer.deliveries.filter((d) => positionOf(d) === position);
      expect(redelivered.map((d) => d.attempt), `redelivery of ${position}`).toEqual([2]);
    }
    expect(quitter.deliveries.length, 'nothing reaches a closed consumer').toBe(heldByQuitter.length);
    expect(stayer.deliveries.length).toBe(all.length);
  });
});
