import crypto from 'node:crypto';
import path from 'node:path';
import type { Delivery } from '../../src/engine/delivery.js';
import { Engine } from '../../src/engine/engine.js';
import { EngineError } from '../../src/engine/errors.js';
import type { PublishInput } from '../../src/engine/event.js';
import type { BenchRow, Suite, SuiteContext, SuiteOutput } from '../harness/results.js';
import { runFlow, type FlowResult, type FlowSpec } from './engine-flow.js';
import { identifyFsPool } from './engine-threads.js';

const PAYLOAD_BYTES = 256;
const TYPE_COUNT = 100;
const LATENESS_TARGET_MS = 50;
/** Scheduled events delivered (untimed) before the timed ones. */
const WARMUP_EVENTS = 20_000;
const WARMUP_PREFIX = 'warmup/t';

interface DeliveryBenchConfig {
  /** Timed events of each throughput run. */
  events: number;
  warmupEvents: number;
  /** Events scheduled in the large lateness run. */
  scheduled: number;
  /** Their due times are spread over this long, starting once all are published. */
  spreadMs: number;
  stallMs: number;
}

const FULL: DeliveryBenchConfig = { events: 400_000, warmupEvents: 50_000, scheduled: 1_000_000, spreadMs: 30_000, stallMs: 30_000 };
const QUICK: DeliveryBenchConfig = { events: 100_000, warmupEvents: 20_000, scheduled: 100_000, spreadMs: 10_000, stallMs: 20_000 };

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

const types = Array.from({ length: TYPE_COUNT }, (_, i) => `bench/t${String(i).padStart(2, '0')}`);
const payloads = Array.from({ length: 4096 }, () => new Uint8Array(crypto.randomBytes(PAYLOAD_BYTES)));

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface LatenessResult {
  delivered: number;
  p50: number;
  p99: number;
  max: number;
  early: number;
  publishMs: number;
  /** Largest sum over shards of entries pending, and of those held in memory, sampled every 250 ms. */
  peakPending: number;
  peakInMemory: number;
  failure: string | null;
}

/**
 * Schedule `count` events with deliverAt spread over `spreadMs` after they are all published, with
 * one subscriber acking everything; lateness = delivery time - due time, per event.
 */
async function measureLateness(dataDir: string, count: number, spreadMs: number, stallMs: number, progress: (m: string) => void): Promise<LatenessResult> {
  const engine = await Engine.open({ dataDir });
  try {
    const producers = 8;
    for (let p = 0; p < producers; p++) engine.registerClient({ id: `producer-${p}` });
    engine.registerClient({ id: 'consumer' });
    const lateness = new Float64Array(count);
    let delivered = 0;
    let early = 0;
    let lastProgress = Date.now();
    let warmedUp = 0;
    await engine.subscribe('consumer', { name: 'scheduled', pattern: '**' }, (deliveries: Delivery[], consumer) => {
      const now = Date.now();
      for (const delivery of deliveries) {
        if (delivery.event.type.startsWith(WARMUP_PREFIX)) {
          warmedUp++;
          continue;
        }
        const late = now - delivery.event.deliverAt;
        if (late < 0) early++;
        if (delivered < count) lateness[delivered++] = late;
      }
      lastProgress = now;
      consumer.ack(deliveries);
    });
    const schedule = (n: number, typePrefix: string, dueStart: number, spread: number) =>
      Promise.all(
        Array.from({ length: producers }, async (_, p) => {
          const per = Math.ceil(n / producers);
          for (let start = p * per; start < Math.min(n, (p + 1) * per); start += 1000) {
            const end = Math.min(n, (p + 1) * per, start + 1000);
            const batch: PublishInput[] = [];
            for (let i = start; i < end; i++) {
              batch.push({ type: `${typePrefix}${i % TYPE_COUNT}`, payload: payloads[i % payloads.length]!, deliverAt: dueStart + Math.floor((i / n) * spread) });
            }
            const results = await engine.publishMany(`producer-${p}`, batch);
            const failed = results.find((r) => r instanceof EngineError);
            if (failed) throw failed;
          }
        }),
      );
    // Warm-up, untimed: the scheduling path runs hot before the timed events come due (as in a
    // running server), so their lateness is not the JIT's first pass.
    const warmup = Math.min(WARMUP_EVENTS, count);
    await schedule(warmup, WARMUP_PREFIX, Date.now() + 1000, 1000);
    while (warmedUp < warmup) await new Promise((resolve) => setTimeout(resolve, 20));
    // Publishing runs at roughly 100k events/s here; leave room so every event is stored before its due time.
    const publishStart = Date.now();
    const dueStart = publishStart + 5_000 + Math.ceil(count / 50);
    await schedule(count, 'bench/t', dueStart, spreadMs);
    const publishMs = Date.now() - publishStart;
    let peakPending = 0;
    let peakInMemory = 0;
    const sample = async (): Promise<void> => {
      const stats = await engine.shardStats();
      peakPending = Math.max(peakPending, stats.reduce((n, s) => n + s.scheduledPending, 0));
      peakInMemory = Math.max(peakInMemory, stats.reduce((n, s) => n + s.scheduledInMemory, 0));
    };
    let lastSample = 0;
    progress(`scheduled ${count} events in ${publishMs} ms; due from +${dueStart - publishStart} ms over ${spreadMs} ms`);
    lastProgress = Date.now();
    while (delivered < count) {
      if (Date.now() - lastProgress > Math.max(stallMs, dueStart - Date.now() + stallMs)) {
        return { delivered, p50: Number.NaN, p99: Number.NaN, max: Number.NaN, early, publishMs, peakPending, peakInMemory, failure: `stalled: ${delivered} of ${count} delivered` };
      }
      if (Date.now() - lastSample >= 250) {
        lastSample = Date.now();
        await sample();
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const sorted = lateness.slice(0, delivered).sort();
    return { delivered, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1]!, early, publishMs, peakPending, peakInMemory, failure: null };
  } finally {
    await engine.close();
  }
}

async function run(ctx: SuiteContext): Promise<SuiteOutput> {
  const cfg = ctx.quick ? QUICK : FULL;
  const rows: BenchRow[] = [];
  const checkFailures: string[] = [];
  const fsPoolTids = await identifyFsPool();
  const base = (label: string, input: (i: number) => PublishInput, trail = true): FlowSpec => ({
    dataDir: path.join(ctx.dir, label),
    events: cfg.events,
    warmupEvents: cfg.warmupEvents,
    producers: 8,
    window: 1000,
    stallMs: cfg.stallMs,
    fsPoolTids,
    consume: true,
    trail,
    input,
  });
  const flow = async (name: string, spec: FlowSpec): Promise<FlowResult> => {
    ctx.progress(`${name}`);
    const result = await runFlow(spec);
    if (result.failure) checkFailures.push(`${name}: ${result.failure}`);
    else if (result.completed < spec.events) checkFailures.push(`${name}: ${result.completed} of ${spec.events} events delivered`);
    ctx.progress(`${name}: ${round(result.eventsPerS)} events/s`);
    return result;
  };
  const plainInput = (i: number): PublishInput => ({ type: types[i % TYPE_COUNT]!, payload: payloads[i % payloads.length]! });
  const prioritizedInput = (i: number): PublishInput => ({ ...plainInput(i), priority: (i * 7) % 10 });

  // Side by side in one run: the plain path, with priorities, and without the trail.
  const plain = await flow('plain', base('plain', plainInput));
  const prioritized = await flow('priorities', base('priorities', prioritizedInput));
  const noTrail = await flow('no-trail', base('no-trail', plainInput, false));
  const setup = `${TYPE_COUNT} types, ${PAYLOAD_BYTES} B payloads, 8 producers x window 1000, 1 consumer acking all, fsync interval`;
  rows.push(
    { name: 'plain_events_per_s', value: round(plain.eventsPerS), unit: 'events/s', note: `default priority, trail on; ${setup}` },
    { name: 'priorities_events_per_s', value: round(prioritized.eventsPerS), unit: 'events/s', note: 'priorities 0-9 mixed (90% off the default: read through lanes)' },
    {
      name: 'priority_cost_ratio',
      value: round(plain.eventsPerS / prioritized.eventsPerS, 3),
      unit: 'ratio',
      note: 'throughput of the plain path / with mixed priorities, same run (1.0 = free)',
    },
    { name: 'no_trail_events_per_s', value: round(noTrail.eventsPerS), unit: 'events/s', note: 'default priority, audit trail off' },
    {
      name: 'trail_cost_ratio',
      value: round(noTrail.eventsPerS / plain.eventsPerS, 3),
      unit: 'ratio',
      note: 'throughput without the audit trail / with it, same run (1.0 = free)',
    },
  );

  for (const [label, count, spreadMs] of [
    ['10', 10, 1000],
    [String(cfg.scheduled), cfg.scheduled, cfg.spreadMs],
  ] as const) {
    ctx.progress(`lateness with ${count} scheduled events`);
    const result = await measureLateness(path.join(ctx.dir, `lateness-${label}`), count, spreadMs, cfg.stallMs, ctx.progress);
    if (result.failure) checkFailures.push(`lateness ${label}: ${result.failure}`);
    if (result.early > 0) checkFailures.push(`lateness ${label}: ${result.early} events delivered before their due time`);
    const suffix = count === cfg.scheduled ? '' : `_${label}`;
    const note = `${result.delivered} events scheduled (published in ${result.publishMs} ms, after ${Math.min(WARMUP_EVENTS, count)} untimed warm-up ones), due over ${spreadMs} ms, 1 consumer acking; p50 ${round(result.p50, 1)} ms, max ${round(result.max, 1)} ms`;
    rows.push({ name: `schedule_lateness_p99_ms${suffix}`, value: round(result.p99, 1), unit: 'ms', note, target: { op: '<=', value: LATENESS_TARGET_MS } });
    if (count === cfg.scheduled) {
      rows.push({
        name: 'schedule_in_memory_peak_entries',
        value: result.peakInMemory,
        unit: 'entries',
        note: `largest number of schedule entries held in memory (all shards, sampled every 250 ms) while at most ${result.peakPending} were pending`,
      });
    }
  }
  return { rows, checkFailures };
}

const deliverySuite: Suite = {
  name: 'delivery',
  description: 'the cost of priorities and of the audit trail, and the lateness of scheduled delivery',
  run,
};

export default deliverySuite;
