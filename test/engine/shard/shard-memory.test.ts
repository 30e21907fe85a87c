import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { META_FIELDS, type PackedDeliveries } from '../../../src/engine/delivery-batch.js';
import type { ShardConfig } from '../../../src/engine/shard-messages.js';
import { Shard } from '../../../src/engine/shard/shard.js';
import { resolveSubscriptionSpec } from '../../../src/engine/subscription-spec.js';
import { waitFor } from '../../helpers/engine-deliveries.js';
import { encodePublishBatch, producerIdentity } from '../../helpers/engine-shard-batch.js';
import { TempDirs } from '../../helpers/temp-dirs.js';

const temps = new TempDirs();
const shards: Shard[] = [];
afterEach(async () => {
  await Promise.allSettled(shards.splice(0).map((shard) => shard.close()));
  await temps.cleanup();
});

/** Live heap plus array buffer backing stores: event bodies live outside the JS heap. */
function retained(): { heap: number; total: number } {
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, total: usage.heapUsed + usage.arrayBuffers };
}

/** A full collection on demand: the flag can be set at run time, and a new context picks it up. */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

const EVENTS = 1_000_000;
const BATCH = 1_000;
/** Publish batches in flight at once (fsync 'never': they complete as fast as they are written). */
const PUBLISH_PIPELINE = 8;
const SAMPLES = 20;
const HEAP_BOUND_BYTES = 64 * 1024 * 1024;

describe('draining a backlog', () => {
  it(`acks ${EVENTS} stored events with a bounded heap`, async () => {
    const gc = exposeGc();
    const dataDir = await temps.make('engine-shard-memory-');
    const config: ShardConfig = {
      dataDir,
      fsync: 'never',
      fsyncIntervalMs: 5,
      trail: true,
      trailRetentionBytes: 64 * 1024 * 1024,
      signatureChecksInFlight: 1,
      retentionMs: null,
      retentionBytes: null,
      segmentBytes: 64 * 1024 * 1024,
      dedupWindowMs: 120_000,
      maxDedupEntries: 1_000_000,
      maxPayloadBytes: 1024 * 1024,
    };
    const seen = new Uint8Array(EVENTS);
    let delivered = 0;
    let redelivered = 0;
    let shard!: Shard;
    const samples: Array<{ heap: number; total: number }> = [];
    let nextSampleAt = EVENTS / SAMPLES;
    const errors: unknown[] = [];

    // The consumer acks everything it receives, as it arrives.
    const emit = (packed: PackedDeliveries) => {
      const offsets: number[] = [];
      for (let i = 0; i < packed.count; i++) {
        const offset = packed.meta[i * META_FIELDS]!;
        offsets.push(offset);
        if (seen[offset]) redelivered++;
        else delivered++;
        seen[offset] = 1;
      }
      shard.settle({ acks: [{ subscription: packed.names[packed.meta[2]!]!, offsets }], nacks: [], discards: [], defers: [] });
      if (delivered >= nextSampleAt) {
        nextSampleAt += EVENTS / SAMPLES;
        gc();
        samples.push(retained());
      }
    };
    shard = await Shard.open(0, config, emit, (error) => errors.push(error));
    shards.push(shard);
    const spec = resolveSubscriptionSpec('svc-drain', { name: 'backlog', pattern: 'load/*', start: { from: 'all' } });
    shard.subscribe(spec);

    const started = Date.now();
    const producer = producerIdentity('svc-load');
    const payload = new Uint8Array(16).fill(1);
    const inFlight = new Set<Promise<void>>();
    for (let base = 0; base < EVENTS; base += BATCH) {
      const events = Array.from({ length: BATCH }, () => ({ type: 'load/tick', payload }));
      const publishing: Promise<void> = shard.publish(encodePublishBatch(producer, events), null).then((result) => {
        if (result.errors.length > 0) throw new Error(`publish refused: ${JSON.stringify(result.errors[0])}`);
        inFlight.delete(publishing);
      });
      inFlight.add(publishing);
      if (inFlight.size >= PUBLISH_PIPELINE) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    expect(shard.nextOffset).toBe(EVENTS);
    const publishMs = Date.now() - started;

    gc();
    const baseline = retained();
    const drainStarted = Date.now();
    shard.attach(spec.key, 'consumer-1', 1000);
    await waitFor(() => delivered === EVENTS, 30_000, () => `${delivered} of ${EVENTS} delivered`);
    const drainMs = Date.now() - drainStarted;

    const peakHeap = Math.max(...samples.map((x) => x.heap));
    const peakTotal = Math.max(...samples.map((x) => x.total));
    const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
    console.log(
      `shard-memory: ${EVENTS} events; publish ${publishMs} ms, drain ${drainMs} ms; baseline heap ${mib(baseline.heap)} MiB ` +
        `(+ buffers ${mib(baseline.total)} MiB); peak during drain heap ${mib(peakHeap)} MiB (+${mib(peakHeap - baseline.heap)}), ` +
        `+ buffers ${mib(peakTotal)} MiB (+${mib(peakTotal - baseline.total)}) over ${samples.length} samples`,
    );
    expect(errors).toEqual([]);
    expect(redelivered, 'nothing redelivered: every delivery was acked at once').toBe(0);
    expect(samples.length).toBeGreaterThanOrEqual(SAMPLES - 1);
    expect(peakHeap - baseline.heap, 'heap growth while draining').toBeLessThan(HEAP_BOUND_BYTES);
    expect(peakTotal - baseline.total, 'heap and buffer growth while draining').toBeLessThan(HEAP_BOUND_BYTES);
  }, 60_000);
});
