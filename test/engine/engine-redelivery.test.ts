import { afterEach, describe, expect, it } from 'vitest';
import type { Receipt } from '../../src/engine/delivery.js';
import { DeliveryRecorder, positionOf, waitFor, type DeliveryPolicy } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

/**
 * Gaps between deliveries are measured where they arrive, after crossing a thread: an earlier
 * delivery that arrived late shortens the gap by its lateness. Bounds from the publish call (before
 * any delivery could exist) are exact; gaps between deliveries get this much slack.
 */
const DELIVERY_LATENCY_SLACK_MS = 100;

async function openWithClients() {
  const engine = await harness.open({ workers: 1 });
  engine.registerClient({ id: 'producer' });
  engine.registerClient({ id: 'worker' });
  return engine;
}

function seqOf(payload: Uint8Array): string {
  return text(payload);
}

describe('redelivery', () => {
  it('redelivers an unacked event after the ack timeout with an increasing attempt number', async () => {
    const engine = await openWithClients();
    const ACK_TIMEOUT_MS = 200;
    // Ignore the slow event's first two deliveries, ack the third; ack everything else at once.
    const recorder = new DeliveryRecorder((delivery, consumer, r) => {
      if (seqOf(delivery.event.payload) === 'slow' && delivery.attempt < 3) return;
      r.ack(consumer, delivery);
    });
    await engine.subscribe('worker', { name: 'jobs', pattern: 'jobs/*', ackTimeoutMs: ACK_TIMEOUT_MS }, recorder.handler);
    const publishedAt = Date.now();
    const slow = await engine.publish('producer', { type: 'jobs/run', payload: bytes('slow') });
    const fast = await engine.publish('producer', { type: 'jobs/run', payload: bytes('fast') });

    await recorder.waitForAcked([positionOf(slow)], 5_000);
    await sleep(3 * ACK_TIMEOUT_MS);
    const slowDeliveries = recorder.timeline.filter((e) => e.kind === 'delivered' && e.delivery.event.id === slow.id);
    expect(slowDeliveries.map((e) => e.delivery.attempt)).toEqual([1, 2, 3]);
    expect(slowDeliveries.every((e) => e.delivery.offset === slow.offset && seqOf(e.delivery.event.payload) === 'slow')).toBe(true);
    expect(slowDeliveries[1]!.at - publishedAt).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS);
    expect(slowDeliveries[2]!.at - publishedAt).toBeGreaterThanOrEqual(2 * ACK_TIMEOUT_MS);
    for (let i = 1; i < slowDeliveries.length; i++) {
      const gap = slowDeliveries[i]!.at - slowDeliveries[i - 1]!.at;
      expect(gap, `gap before attempt ${i + 1}`).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - DELIVERY_LATENCY_SLACK_MS);
      expect(gap, `gap before attempt ${i + 1}`).toBeLessThan(ACK_TIMEOUT_MS + 1_500);
    }
    // The acked event was delivered once; the slow one was not delivered again after its ack.
    expect(recorder.deliveriesOf(fast.id).map((d) => d.attempt)).toEqual([1]);
  });

  it('redelivers a nacked event at once, or after its delay', async () => {
    const engine = await openWithClients();
    const DELAY_MS = 300;
    const policy: DeliveryPolicy = (delivery, consumer, r) => {
      const seq = seqOf(delivery.event.payload);
      if (delivery.attempt === 1 && seq === 'now') return r.nack(consumer, delivery);
      if (delivery.attempt === 1 && seq === 'later') return r.nack(consumer, delivery, DELAY_MS);
      r.ack(consumer, delivery);
    };
    const recorder = new DeliveryRecorder(policy);
    // A long ack timeout: whatever comes back early comes back because of the nack.
    await engine.subscribe('worker', { name: 'jobs', pattern: 'jobs/*', ackTimeoutMs: 10_000 }, recorder.handler);
    const now = await engine.publish('producer', { type: 'jobs/run', payload: bytes('now') });
    const later = await engine.publish('producer', { type: 'jobs/run', payload: bytes('later') });
    const plain = await engine.publish('producer', { type: 'jobs/run', payload: bytes('plain') });
    await recorder.waitForAcked([now, later, plain].map(positionOf), 5_000);

    const timeOf = (receipt: Receipt, kind: 'delivered' | 'nacked', attempt: number) =>
      recorder.timeline.find((e) => e.kind === kind && e.delivery.event.id === receipt.id && e.delivery.attempt === attempt)!.at;
    expect(recorder.deliveriesOf(now.id).map((d) => d.attempt)).toEqual([1, 2]);
    expect(timeOf(now, 'delivered', 2) - timeOf(now, 'nacked', 1)).toBeLessThan(1_000);
    expect(recorder.deliveriesOf(later.id).map((d) => d.attempt)).toEqual([1, 2]);
    const wait = timeOf(later, 'delivered', 2) - timeOf(later, 'nacked', 1);
    expect(wait).toBeGreaterThanOrEqual(DELAY_MS);
    expect(wait).toBeLessThan(DELAY_MS + 1_500);
    // The delayed event did not hold up the one published after it.
    expect(timeOf(plain, 'delivered', 1)).toBeLessThan(timeOf(later, 'delivered', 2));
    expect(recorder.deliveriesOf(plain.id).map((d) => d.attempt)).toEqual([1]);
  });
});

describe('max deliveries', () => {
  it('stops after maxDeliveries ack timeouts, moves on, and does not redeliver after a restart', async () => {
    const dataDir = await harness.dataDir();
    const engine = await harness.open({ dataDir, workers: 1 });
    engine.registerClient({ id: 'producer' });
    engine.registerClient({ id: 'worker' });
    const ACK_TIMEOUT_MS = 150;
    const MAX = 3;
    const recorder = new DeliveryRecorder((delivery, consumer, r) => {
      if (seqOf(delivery.event.payload) !== 'poison') r.ack(consumer, delivery);
    });
    // One event in flight at a time: the subscription can only move on once the poison is given up.
    const options = { name: 'jobs', pattern: 'jobs/*', ackTimeoutMs: ACK_TIMEOUT_MS, maxDeliveries: MAX, maxInFlight: 1 };
    await engine.subscribe('worker', options, recorder.handler);
    const publishedAt = Date.now();
    const poison = await engine.publish('producer', { type: 'jobs/run', payload: bytes('poison') });
    const next = await engine.publish('producer', { type: 'jobs/run', payload: bytes('next') });
    const last = await engine.publish('producer', { type: 'jobs/run', payload: bytes('last') });
    await recorder.waitForAcked([next, last].map(positionOf), 5_000);
    await sleep(3 * ACK_TIMEOUT_MS);

    const poisonDeliveries = recorder.timeline.filter((e) => e.delivery.event.id === poison.id);
    expect(poisonDeliveries.map((e) => e.delivery.attempt)).toEqual([1, 2, 3]);
    const lastPoison = recorder.timeline.indexOf(poisonDeliveries.at(-1)!);
    const firstNext = recorder.timeline.findIndex((e) => e.delivery.event.id === next.id);
    expect(firstNext, 'the next event waits for the poison to be given up').toBeGreaterThan(lastPoison);
    expect(recorder.timeline[firstNext]!.at - publishedAt, 'three ack timeouts passed first').toBeGreaterThanOrEqual(MAX * ACK_TIMEOUT_MS);
    expect(recorder.timeline[firstNext]!.at - recorder.timeline[lastPoison]!.at).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - DELIVERY_LATENCY_SLACK_MS);
    expect(recorder.deliveriesOf(next.id).map((d) => d.attempt)).toEqual([1]);
    expect(recorder.deliveriesOf(last.id).map((d) => d.attempt)).toEqual([1]);

    // The dead letter is journaled like an ack: a restart does not bring the poison back.
    await harness.close(engine);
    const reopened = await harness.open({ dataDir, workers: 1 });
    reopened.registerClient({ id: 'producer' });
    reopened.registerClient({ id: 'worker' });
    const after = new DeliveryRecorder();
    await reopened.subscribe('worker', options, after.handler);
    const fresh = await reopened.publish('producer', { type: 'jobs/run', payload: bytes('fresh') });
    await after.waitForAcked([positionOf(fresh)], 5_000);
    await sleep(2 * ACK_TIMEOUT_MS);
    expect(after.deliveries.map((d) => d.event.id)).toEqual([fresh.id]);
  });

  it('gives up on an always-nacked event of a held key after maxDeliveries and releases the key', async () => {
    const engine = await openWithClients();
    const MAX = 4;
    const recorder = new DeliveryRecorder((delivery, consumer, r) => {
      if (seqOf(delivery.event.payload) === 'poison') r.nack(consumer, delivery);
      else r.ack(consumer, delivery);
    });
    await engine.subscribe('worker', { name: 'strict', pattern: 'jobs/*', ordered: true, maxDeliveries: MAX, ackTimeoutMs: 10_000 }, recorder.handler);
    const poison = await engine.publish('producer', { type: 'jobs/run', key: 'a', payload: bytes('poison') });
    const sameKey = await engine.publish('producer', { type: 'jobs/run', key: 'a', payload: bytes('same-key') });
    const otherKey = await engine.publish('producer', { type: 'jobs/run', key: 'b', payload: bytes('other-key') });
    await recorder.waitForAcked([sameKey, otherKey].map(positionOf), 5_000);
    await sleep(200);

    expect(recorder.deliveriesOf(poison.id).map((d) => d.attempt)).toEqual([1, 2, 3, 4]);
    const lastPoison = recorder.timeline.findLastIndex((e) => e.delivery.event.id === poison.id);
    const sameKeyFirst = recorder.timeline.findIndex((e) => e.delivery.event.id === sameKey.id);
    expect(sameKeyFirst, 'the key is held until the poison is given up').toBeGreaterThan(lastPoison);
    expect(recorder.deliveriesOf(sameKey.id).map((d) => d.attempt)).toEqual([1]);
    await waitFor(() => recorder.acked.has(positionOf(otherKey)), 1_000, 'other key acked');
  });
});
