import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/engine/delivery.js';
import { LatencyRecorder } from '../../src/observability/latency-recorder.js';
import { PendingAckTimes } from '../../src/observability/pending-ack-times.js';

function delivery(shard: number, offset: number, event: { publishedAt?: number; deliverAt?: number } = {}): Delivery {
  return {
    subscription: 'svc-b/billing',
    consumer: 'svc-b/billing#1',
    shard,
    offset,
    attempt: 1,
    event: {
      id: `e${shard}-${offset}`,
      type: 'orders/created',
      payload: new Uint8Array(0),
      headers: {},
      key: null,
      sender: 'svc-a',
      publishedAt: event.publishedAt ?? Date.now(),
      recipients: null,
      signature: null,
      priority: 4,
      deliverAt: event.deliverAt ?? 0,
      expiresAt: 0,
    },
  };
}

function counts(recorder: LatencyRecorder): { deliveryToAck: number; publishToAck: number } {
  const { stages } = recorder.snapshot(false);
  return { deliveryToAck: stages.delivery_to_ack.count, publishToAck: stages.publish_to_ack.count };
}

describe('PendingAckTimes', () => {
  it('records delivery_to_ack and publish_to_ack when a held delivery is acked, once', () => {
    const recorder = new LatencyRecorder();
    const times = new PendingAckTimes(recorder, 2, 10);
    times.handed([delivery(0, 7, { publishedAt: Date.now() - 40 }), delivery(1, 7)], performance.now() - 5);
    expect(times.size).toBe(2);

    times.acked([{ shard: 0, offset: 7 }]);
    times.acked([{ shard: 0, offset: 7 }]);
    times.acked([{ shard: 1, offset: 8 }]);
    expect(times.size).toBe(1);
    const { stages } = recorder.snapshot(false);
    expect(stages.delivery_to_ack.count).toBe(1);
    expect(stages.delivery_to_ack.min).toBeGreaterThanOrEqual(5_000);
    expect(stages.publish_to_ack.count).toBe(1);
    expect(stages.publish_to_ack.min).toBeGreaterThanOrEqual(40_000);
  });

  it('leaves scheduled events out of publish_to_ack but times their ack', () => {
    const recorder = new LatencyRecorder();
    const times = new PendingAckTimes(recorder, 1, 10);
    times.handed([delivery(0, 1, { publishedAt: Date.now() - 60_000, deliverAt: Date.now() - 1 })], performance.now());
    times.acked([{ shard: 0, offset: 1 }]);
    expect(counts(recorder)).toEqual({ deliveryToAck: 1, publishToAck: 0 });
  });

  it('keeps at most its bound per shard, evicting the oldest; a redelivery counts as new', () => {
    const recorder = new LatencyRecorder();
    const times = new PendingAckTimes(recorder, 2, 3);
    const now = performance.now();
    times.handed([0, 1, 2].map((offset) => delivery(0, offset)), now);
    times.handed([delivery(1, 0)], now);
    // Offset 0 comes back (taken back after an ack timeout): it is the newest now, so 1 goes first.
    times.handed([delivery(0, 0), delivery(0, 3)], now);
    expect(times.size).toBe(4);

    times.acked([1, 0, 2, 3].map((offset) => ({ shard: 0, offset })));
    expect(counts(recorder).deliveryToAck).toBe(3);
    expect(times.size).toBe(1);

    times.handed([10, 11, 12, 13, 14, 15].map((offset) => delivery(0, offset)), now);
    expect(times.size).toBe(4);
  });

  it('forgets deliveries settled otherwise, and everything when cleared, without recording', () => {
    const recorder = new LatencyRecorder();
    const times = new PendingAckTimes(recorder, 2, 10);
    times.handed([delivery(0, 1), delivery(0, 2), delivery(1, 1)], performance.now());
    times.forget([{ shard: 0, offset: 1 }, { shard: 5, offset: 1 }]);
    expect(times.size).toBe(2);
    times.acked([{ shard: 0, offset: 1 }]);
    expect(counts(recorder).deliveryToAck).toBe(0);

    times.clear();
    expect(times.size).toBe(0);
    times.acked([{ shard: 0, offset: 2 }, { shard: 1, offset: 1 }]);
    expect(counts(recorder)).toEqual({ deliveryToAck: 0, publishToAck: 0 });
  });
});
