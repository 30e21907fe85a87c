/**
 * The four workloads of `npm run bench -- peers`, run against one broker by driver processes
 * (fixtures/peer-driver.ts): publish with a window, consume with an ack each, end-to-end latency
 * at fixed rates (producer and consumer in separate processes), publish over 100 types. The
 * server's CPU time is sampled over the same interval as each driver's own.
 */
import { fileURLToPath } from 'node:url';
import type { ConsumeLatencyTask, ConsumeTask, PeerMessage, PeerResult, ProduceRateTask, PublishTask } from '../fixtures/peer-task.js';
import { BenchError } from '../harness/bench-error.js';
import { CpuWindow } from '../harness/process-cpu.js';
import type { BenchRow, Target } from '../harness/results.js';
import { runJsonLineChild } from '../harness/spawned.js';
import type { BrokerName, RunningBroker } from './peers-brokers.js';

const DRIVER = fileURLToPath(new URL('../fixtures/peer-driver.js', import.meta.url));

export interface WorkloadConfig {
  events: number;
  window: number;
  prefetch: number;
  types: number;
  payloadBytes: number;
  latencyMs: number;
  rates: number[];
  /** A driver gives up after this long; the suite kills it a little later. */
  timeoutMs: number;
}

/** What the suite needs of one broker's run beyond its rows: the figures the ratios compare. */
export interface BrokerFigures {
  publishPerS: number;
  consumePerS: number;
  p99At5k: number | null;
}

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;
const rateLabel = (rate: number): string => `${rate / 1000}k`;

interface Measured {
  result: PeerResult;
  serverCpuPct: number;
  clientCpuPct: number;
}

/** The server's CPU over a driver's measured phase: from its `start` line to its result line. */
class ServerCpu {
  private window: CpuWindow | null = null;
  pct = 0;

  constructor(private readonly pid: number) {}

  onDriverMessage(message: PeerMessage): void {
    if (message.event === 'start') this.window = new CpuWindow(this.pid);
    else if (message.event === 'result' && this.window !== null) this.pct = this.window.percent().pct;
  }
}

/** Run one driver and the server's CPU window alongside. */
async function runMeasured(broker: RunningBroker, label: string, task: PublishTask | ConsumeTask): Promise<Measured> {
  const server = new ServerCpu(broker.pid);
  const { result } = runJsonLineChild<PeerResult>(`${broker.name} ${label}`, DRIVER, task, {
    timeoutMs: task.timeoutMs + 10_000,
    onMessage: (message) => server.onDriverMessage(message as PeerMessage),
  });
  const outcome = await result;
  return {
    result: outcome,
    serverCpuPct: server.pct,
    clientCpuPct: outcome.elapsedMs > 0 ? (100 * outcome.clientCpuMs) / outcome.elapsedMs : 0,
  };
}

/** A client process this busy is what limits the figure (its GC threads can take it past 100%). */
const CLIENT_BOUND_PCT = 90;

function cpuNote(m: Measured): string {
  const bound = m.clientCpuPct >= CLIENT_BOUND_PCT ? ': client-bound (the load generator is the limit)' : '';
  return `CPU: server ${round(m.serverCpuPct)}%, client ${round(m.clientCpuPct)}% of one core${bound}`;
}

async function latencyAt(
  broker: RunningBroker,
  cfg: WorkloadConfig,
  rate: number,
): Promise<{ consumer: PeerResult; producer: PeerResult; serverCpuPct: number }> {
  const topic = `lat${rateLabel(rate)}`;
  const expect = Math.floor((rate * cfg.latencyMs) / 1000);
  const consumerTask: ConsumeLatencyTask = {
    mode: 'consume-latency',
    endpoint: broker.consumer,
    topic,
    payloadBytes: cfg.payloadBytes,
    timeoutMs: cfg.latencyMs + cfg.timeoutMs,
    group: `latency-${rateLabel(rate)}`,
    prefetch: cfg.prefetch,
    expect,
    // The first second warms connections and the JIT: it is left out.
    skip: Math.min(rate, Math.floor(expect / 4)),
  };
  let producer: Promise<PeerResult> | null = null;
  const server = new ServerCpu(broker.pid);
  const consumer = runJsonLineChild<PeerResult>(`${broker.name} latency consumer`, DRIVER, consumerTask, {
    timeoutMs: consumerTask.timeoutMs + 10_000,
    onMessage: (message, consumerChild) => {
      if ((message as PeerMessage).event !== 'ready') return;
      const producerTask: ProduceRateTask = {
        mode: 'produce-rate',
        // Paced sends: each is written at once rather than waiting for the previous tick's pipeline.
        endpoint: { ...broker.producer, autoPipelining: false },
        topic,
        payloadBytes: cfg.payloadBytes,
        timeoutMs: cfg.timeoutMs,
        rate,
        durationMs: cfg.latencyMs,
        maxUnconfirmed: Math.max(10_000, rate),
      };
      producer = runJsonLineChild<PeerResult>(`${broker.name} producer ${rateLabel(rate)}`, DRIVER, producerTask, {
        timeoutMs: cfg.latencyMs + cfg.timeoutMs + 10_000,
        onMessage: (m) => server.onDriverMessage(m as PeerMessage),
      }).result;
      // Once the producer is done the consumer gets a second for what is in flight, then reports.
      producer.finally(() => consumerChild.stdin!.end()).catch(() => undefined);
    },
  });
  const consumed = await consumer.result;
  if (producer === null) throw new BenchError('NOT_READY', `${broker.name}: the latency consumer finished without becoming ready`);
  const produced = await (producer as Promise<PeerResult>);
  return { consumer: consumed, producer: produced, serverCpuPct: server.pct };
}

/** Runs `use` against a broker started for it on an empty directory, and stops it afterwards. */
export type WithFreshBroker = <T>(use: (broker: RunningBroker) => Promise<T>) => Promise<T>;

/**
 * Every workload against one broker: its rows, its check failures, its headline figures. The
 * latency runs get a fresh instance: the two publishes stored before would otherwise put them in
 * the middle of background work those events started (Redis rewrites its AOF once it passes 64 MB).
 */
export async function measureBroker(
  name: BrokerName,
  withFreshBroker: WithFreshBroker,
  cfg: WorkloadConfig,
  progress: (message: string) => void,
  rows: BenchRow[],
  checkFailures: string[],
  targets: Partial<Record<string, Target>>,
): Promise<BrokerFigures> {
  const row = (suffix: string, value: number, unit: string, note?: string): void => {
    const target = targets[`${name}_${suffix}`];
    rows.push({ name: `${name}_${suffix}`, value, unit, ...(note === undefined ? {} : { note }), ...(target ? { target } : {}) });
  };
  const throughput = await withFreshBroker((broker) => measureThroughput(broker, cfg, progress, row, checkFailures));
  const p99At5k = await withFreshBroker((broker) => measureLatency(broker, cfg, progress, row, checkFailures));
  return { ...throughput, p99At5k };
}

type RowSink = (suffix: string, value: number, unit: string, note?: string) => void;

async function measureThroughput(
  broker: RunningBroker,
  cfg: WorkloadConfig,
  progress: (message: string) => void,
  row: RowSink,
  checkFailures: string[],
): Promise<{ publishPerS: number; consumePerS: number }> {
  const name = broker.name;
  const base = { payloadBytes: cfg.payloadBytes, timeoutMs: cfg.timeoutMs };

  progress(`${name}: publish ${cfg.events} events, window ${cfg.window}`);
  const pub = await runMeasured(broker, 'publish', { ...base, mode: 'publish', endpoint: broker.producer, topic: 'pub', total: cfg.events, window: cfg.window, types: 1 });
  if (pub.result.errors > 0) checkFailures.push(`${name} publish: ${pub.result.errors} of ${cfg.events} events failed`);
  const publishPerS = (pub.result.count * 1000) / pub.result.elapsedMs;
  row('publish_per_s', round(publishPerS), 'events/s', `${pub.result.count} x ${cfg.payloadBytes} B confirmed in ${round(pub.result.elapsedMs)} ms, ${cfg.window} unconfirmed at most, one type; ${cpuNote(pub)}`);
  row('publish_server_cpu_pct', round(pub.serverCpuPct), '%', 'server process CPU (all threads) / wall time during the publish');
  row('publish_client_cpu_pct', round(pub.clientCpuPct), '%', 'publishing process CPU / wall time (near 100%: the client limits the figure)');

  progress(`${name}: consume ${pub.result.count} events, ack each, prefetch ${cfg.prefetch}`);
  const con = await runMeasured(broker, 'consume', { ...base, mode: 'consume', endpoint: broker.consumer, topic: 'pub', total: pub.result.count, group: 'consume', prefetch: cfg.prefetch });
  if (con.result.errors > 0) checkFailures.push(`${name} consume: ${con.result.errors} events had a wrong payload`);
  const consumePerS = (con.result.count * 1000) / con.result.elapsedMs;
  row('consume_per_s', round(consumePerS), 'events/s', `${con.result.count} events from the start of the stream, each acked, ${cfg.prefetch} unacked at most, in ${round(con.result.elapsedMs)} ms; ${cpuNote(con)}`);
  row('consume_server_cpu_pct', round(con.serverCpuPct), '%');
  row('consume_client_cpu_pct', round(con.clientCpuPct), '%');

  progress(`${name}: publish ${cfg.events} events over ${cfg.types} types`);
  const many = await runMeasured(broker, 'publish 100 types', { ...base, mode: 'publish', endpoint: broker.producer, topic: 'pub100', total: cfg.events, window: cfg.window, types: cfg.types });
  if (many.result.errors > 0) checkFailures.push(`${name} publish over ${cfg.types} types: ${many.result.errors} events failed`);
  row(`publish_${cfg.types}types_per_s`, round((many.result.count * 1000) / many.result.elapsedMs), 'events/s', `event i to type i % ${cfg.types}; ${cpuNote(many)}`);

  return { publishPerS, consumePerS };
}

/** Latency at each fixed rate; returns the p99 at 5,000 events/s (null when not measured). */
async function measureLatency(
  broker: RunningBroker,
  cfg: WorkloadConfig,
  progress: (message: string) => void,
  row: RowSink,
  checkFailures: string[],
): Promise<number | null> {
  const name = broker.name;
  let p99At5k: number | null = null;
  for (const rate of cfg.rates) {
    const label = rateLabel(rate);
    progress(`${name}: latency at ${rate} events/s for ${cfg.latencyMs} ms`);
    const { consumer, producer, serverCpuPct } = await latencyAt(broker, cfg, rate);
    if (producer.errors > 0) checkFailures.push(`${name} latency at ${label}: ${producer.errors} publishes failed`);
    const lat = consumer.latency;
    if (!lat || lat.count === 0) {
      checkFailures.push(`${name} latency at ${label}: nothing delivered`);
      continue;
    }
    const lost = producer.count - consumer.count;
    const note =
      `${lat.count} events timed (first ${consumer.count - lat.count} left out), publish → received by the other process; ` +
      `p50 ${lat.p50}, p99 ${lat.p99}, p99.9 ${lat.p999}, max ${lat.max} µs` +
      (producer.behind ? `; the producer fell ${producer.behind} events behind the rate` : '') +
      (lost > 0 ? `; ${lost} of ${producer.count} not received 1 s after the last send` : '') +
      `; CPU: server ${round(serverCpuPct)}%, producer ${round((100 * producer.clientCpuMs) / producer.elapsedMs)}%, consumer ${round((100 * consumer.clientCpuMs) / consumer.elapsedMs)}%`;
    if (rate === 5000) {
      row('p50_us_at_5k', lat.p50, 'µs', note);
      p99At5k = lat.p99;
    }
    row(`p99_us_at_${label}`, lat.p99, 'µs', rate === 5000 ? undefined : note);
  }
  return p99At5k;
}
