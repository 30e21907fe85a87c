import fs from 'node:fs';
import { ensureDebianPrograms } from '../harness/debian-packages.js';
import type { BenchRow, Suite, SuiteContext, SuiteOutput, Target } from '../harness/results.js';
import { brokerDir, brokerSpecs, DEBIAN_PROGRAMS, type BrokerName } from './peers-brokers.js';
import { measureCeiling, type CeilingConfig } from './peers-ceiling.js';
import { measureBroker, type BrokerFigures, type WithFreshBroker, type WorkloadConfig } from './peers-workloads.js';

/**
 * The same workloads against this engine, NATS JetStream and Redis Streams on loopback, in one run,
 * with the machine's own limits (transport ceiling, disk) alongside.
 */

/** Events per publish frame of the engine's producer: its window of 1,000 travels as 10 frames. */
const OURS_FRAME_EVENTS = 100;

const FULL: { workload: WorkloadConfig; ceiling: CeilingConfig } = {
  workload: { events: 200_000, window: 1000, prefetch: 1000, types: 100, payloadBytes: 256, latencyMs: 10_000, rates: [5000, 20_000], timeoutMs: 180_000 },
  ceiling: { durationMs: 5000, batch: OURS_FRAME_EVENTS, payloadBytes: 256, diskBytes: 512 * 2 ** 20, fsyncSamples: 300 },
};

const QUICK: typeof FULL = {
  workload: { ...FULL.workload, events: 50_000, latencyMs: 3000, timeoutMs: 120_000 },
  ceiling: { ...FULL.ceiling, durationMs: 2000, diskBytes: 128 * 2 ** 20, fsyncSamples: 100 },
};

const TARGETS: Partial<Record<string, Target>> = {
  ours_interval_publish_per_s: { op: '>=', value: 100_000 },
  ours_interval_consume_per_s: { op: '>=', value: 150_000 },
  ours_interval_p99_us_at_5k: { op: '<=', value: 3000 },
};

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

function ratioRows(figures: Map<BrokerName, BrokerFigures>): BenchRow[] {
  const ours = figures.get('ours_interval');
  const rows: BenchRow[] = [];
  if (ours === undefined) return rows;
  const ratio = (name: string, a: number | null, b: number | null | undefined, note: string, target?: Target): void => {
    if (a === null || b === null || b === undefined || b === 0) return;
    rows.push({ name, value: round(a / b, 2), unit: 'ratio', note, ...(target ? { target } : {}) });
  };
  const redis = figures.get('redis_everysec');
  const nats = figures.get('nats');
  ratio('ratio_publish_vs_redis_everysec', ours.publishPerS, redis?.publishPerS, 'ours_interval_publish_per_s / redis_everysec_publish_per_s');
  ratio('ratio_publish_vs_nats', ours.publishPerS, nats?.publishPerS, 'ours_interval_publish_per_s / nats_publish_per_s');
  const peers = [...figures].filter(([name]) => !name.startsWith('ours_'));
  const best = peers.reduce<[BrokerName, BrokerFigures] | null>((top, entry) => (top === null || entry[1].publishPerS > top[1].publishPerS ? entry : top), null);
  if (best) ratio('ratio_publish_vs_best_peer', ours.publishPerS, best[1].publishPerS, `ours_interval_publish_per_s / ${best[0]}_publish_per_s (the fastest peer)`, { op: '>', value: 1 });
  ratio('ratio_consume_vs_redis_everysec', ours.consumePerS, redis?.consumePerS, 'ours_interval_consume_per_s / redis_everysec_consume_per_s');
  ratio('ratio_p99_at_5k_vs_redis_everysec', ours.p99At5k, redis?.p99At5k, 'ours_interval_p99_us_at_5k / redis_everysec_p99_us_at_5k: below 1, ours is lower');
  return rows;
}

async function run(ctx: SuiteContext): Promise<SuiteOutput> {
  const cfg = ctx.quick ? QUICK : FULL;
  const checkFailures: string[] = [];
  const notes: string[] = [];
  // First, before anything is measured: a missing peer that cannot be installed fails the suite at once.
  const programs = ensureDebianPrograms(DEBIAN_PROGRAMS, ctx.progress);

  const brokerRows: BenchRow[] = [];
  const figures = new Map<BrokerName, BrokerFigures>();
  for (const spec of brokerSpecs({ maxFrameEvents: OURS_FRAME_EVENTS })) {
    let version = '';
    const withFreshBroker: WithFreshBroker = async (use) => {
      const dir = brokerDir(ctx.dir, spec.name);
      ctx.progress(`${spec.name}: starting on an empty directory`);
      const broker = await spec.start(dir, programs);
      version = broker.version;
      try {
        return await use(broker);
      } finally {
        await broker.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    };
    try {
      figures.set(spec.name, await measureBroker(spec.name, withFreshBroker, cfg.workload, ctx.progress, brokerRows, checkFailures, TARGETS));
    } catch (error) {
      // One broker failing (a server that would not start, a driver that timed out) costs its own figures only.
      checkFailures.push(`${spec.name}: ${error instanceof Error ? error.message : String(error)}`);
    }
    notes.push(`${spec.name} (${version || 'did not start'}): ${spec.durability}`);
  }
  const machineRows = await measureCeiling(ctx.dir, cfg.ceiling, ctx.progress, checkFailures);
  notes.push(
    `workloads: ${cfg.workload.events} events of ${cfg.workload.payloadBytes} random bytes, ${cfg.workload.window} unconfirmed at most; ` +
      `consume from the start with an ack per event, ${cfg.workload.prefetch} unacked at most; latency at ${cfg.workload.rates.join(' and ')} events/s for ${cfg.workload.latencyMs / 1000} s each, producer and consumer in separate processes; ` +
      `clients: nats.js (noAsyncTraces), ioredis (auto-pipelining, off for the paced latency producer), raw protocol frames for ours (${OURS_FRAME_EVENTS} events per publish frame at most, acks of one tick in one frame)`,
  );
  notes.push('CPU percentages are of one core (the machine has 2): a client near 100% means that figure is limited by the load generator, not the broker');
  return { rows: [...brokerRows, ...ratioRows(figures), ...machineRows], checkFailures, notes };
}

const peersSuite: Suite = {
  name: 'peers',
  description: 'this engine against NATS JetStream and Redis Streams, same workloads over loopback, load clients in their own processes',
  run,
};

export default peersSuite;
