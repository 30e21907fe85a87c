import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { PublishInput } from '../../src/engine/event.js';
import { generateSigningKeyPair, privateKeyFromSeed, signEvent } from '../../src/engine/signing.js';
import type { BenchRow, Suite, SuiteContext, SuiteOutput } from '../harness/results.js';
import { runFlow, type FlowResult, type FlowSpec } from './engine-flow.js';
import { measureCapturedPublishClone, measureCodec, measureDeliveryClone, measureLogAppend, measurePublishClone, measureValidate, measureVerify } from './engine-stages.js';
import { identifyFsPool, threadTimesAvailable } from './engine-threads.js';

const PAYLOAD_BYTES = 256;
const PAYLOAD_POOL = 4096;
const TYPE_COUNT = 100;
const CLONE_BATCH = 1000;
const TARGET_EVENTS_PER_S = 200_000;

interface EngineBenchConfig {
  /** Timed events of each unsigned run (after `warmupEvents` untimed ones). */
  events: number;
  signedEvents: number;
  warmupEvents: number;
  producers: number;
  /** Per producer: the engine's default publishWindow. */
  window: number;
  stageIterations: number;
  verifySamples: number;
  appendRecords: number;
  cloneReps: number;
  stallMs: number;
}

const FULL: EngineBenchConfig = {
  events: 600_000,
  signedEvents: 60_000,
  warmupEvents: 50_000,
  producers: 8,
  window: 1000,
  stageIterations: 500_000,
  verifySamples: 5000,
  appendRecords: 1_000_000,
  cloneReps: 200,
  stallMs: 30_000,
};

const QUICK: EngineBenchConfig = {
  ...FULL,
  events: 100_000,
  signedEvents: 15_000,
  warmupEvents: 20_000,
  stageIterations: 200_000,
  verifySamples: 2000,
  appendRecords: 300_000,
  cloneReps: 60,
  stallMs: 20_000,
};

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;
const pct = (part: number, whole: number): string => `${Math.round((100 * part) / whole)}%`;

function payloadPool(): Uint8Array[] {
  // Each payload owns an exact-size buffer, as a network front end's decoded frames would.
  return Array.from({ length: PAYLOAD_POOL }, () => new Uint8Array(crypto.randomBytes(PAYLOAD_BYTES)));
}

const manyTypes = Array.from({ length: TYPE_COUNT }, (_, i) => `bench/t${String(i).padStart(2, '0')}`);

function unsignedInputs(pool: readonly Uint8Array[], types: readonly string[]): (i: number) => PublishInput {
  return (i) => ({ type: types[i % types.length]!, payload: pool[i % pool.length]! });
}

/** Signs every event up front, so the timed run measures verification only. */
function signedInputs(pool: readonly Uint8Array[], count: number): { publicKey: Uint8Array; inputs: PublishInput[] } {
  const { publicKey, secretKey } = generateSigningKeyPair();
  const signer = privateKeyFromSeed(secretKey);
  const inputs = Array.from({ length: count }, (_, i) => {
    const type = manyTypes[i % TYPE_COUNT]!;
    const id = `sig-${i.toString(36)}`;
    const payload = pool[i % pool.length]!;
    return { type, id, payload, signature: signEvent(signer, { type, id, key: null, headers: {}, payload }) };
  });
  return { publicKey, inputs };
}

/** Rows for one run: throughput, then where its CPU went. */
function flowRows(name: string, label: string, result: FlowResult, target?: number): BenchRow[] {
  const prefix = name.replace(/_events_per_s$/, '');
  const perEvent = (ms: number): number => round((ms * 1000) / Math.max(1, result.completed), 2);
  const { main, workers, fsPool, background } = result.cpu;
  const wait = [main.waitMs, workers.waitMs].every((w) => w !== null)
    ? `; runnable-but-waiting: main ${round(main.waitMs!)} ms, workers ${round(workers.waitMs!)} ms`
    : '';
  const tasks = Object.entries(result.tasks).map(([op, n]) => `${op} ${n}`).join(', ');
  const errors = [...result.publishErrors].map(([code, n]) => `${code} x${n}`).join(', ');
  const rows: BenchRow[] = [
    {
      name,
      value: round(result.eventsPerS),
      unit: 'events/s',
      note:
        `${label}; ${result.completed} events in ${round(result.elapsedMs)} ms, ${result.workerThreads} worker thread(s)` +
        (result.redeliveries > 0 ? `; ${result.redeliveries} redeliveries` : '') +
        (errors ? `; publish errors ${errors}` : ''),
      ...(target ? { target: { op: '>=' as const, value: target } } : {}),
    },
  ];
  if (!threadTimesAvailable()) {
    rows.push({ name: `${prefix}_process_cpu_us_per_event`, value: perEvent(result.processCpuMs), unit: 'µs/event', note: 'all threads (no per-thread times on this OS)' });
    return rows;
  }
  rows.push(
    {
      name: `${prefix}_main_cpu_us_per_event`,
      value: perEvent(main.cpuMs),
      unit: 'µs/event',
      note: `main thread busy ${pct(main.cpuMs, result.elapsedMs)} of the run${wait}`,
    },
    {
      name: `${prefix}_workers_cpu_us_per_event`,
      value: perEvent(workers.cpuMs),
      unit: 'µs/event',
      note: `shard workers busy ${pct(workers.cpuMs, result.elapsedMs * Math.max(1, workers.threads))} (each, on average); mean publish task ${round(result.meanPublishBatch)} events; mean delivery batch ${round(result.meanDeliveryBatch)}; tasks: ${tasks}`,
    },
  );
  if (fsPool.threads > 0) {
    rows.push({ name: `${prefix}_fs_pool_cpu_us_per_event`, value: perEvent(fsPool.cpuMs), unit: 'µs/event', note: `libuv pool (${fsPool.threads} threads): fsyncs, async fs` });
  }
  rows.push({
    name: `${prefix}_background_cpu_us_per_event`,
    value: perEvent(background.cpuMs),
    unit: 'µs/event',
    note:
      `${fsPool.threads > 0 ? 'V8 GC/compiler helper threads' : 'V8 GC/compiler helpers and the libuv pool (fsyncs)'}; ` +
      `process total ${round(result.processCpuMs)} ms = ${round(result.processCpuMs / result.elapsedMs, 2)} cores of ${os.availableParallelism()}`,
  });
  rows.push({
    name: `${prefix}_main_cpu_share`,
    value: round(main.cpuMs / Math.max(1, main.cpuMs + workers.cpuMs + fsPool.cpuMs + background.cpuMs), 3),
    unit: 'ratio',
    note: 'main thread CPU / CPU of all threads (per-thread times from /proc/self/task: Node 20 has no process.threadCpuUsage)',
  });
  return rows;
}

async function run(ctx: SuiteContext): Promise<SuiteOutput> {
  const cfg = ctx.quick ? QUICK : FULL;
  const rows: BenchRow[] = [];
  const checkFailures: string[] = [];
  const fsPoolTids = await identifyFsPool();
  const pool = payloadPool();
  const many = unsignedInputs(pool, manyTypes);
  const base = (label: string): Omit<FlowSpec, 'input' | 'consume'> => ({
    dataDir: path.join(ctx.dir, label),
    events: cfg.events,
    warmupEvents: cfg.warmupEvents,
    producers: cfg.producers,
    window: cfg.window,
    stallMs: cfg.stallMs,
    fsPoolTids,
  });
  const flow = async (name: string, label: string, spec: FlowSpec, target?: number): Promise<FlowResult> => {
    ctx.progress(`${name}: ${label}`);
    const result = await runFlow(spec);
    if (result.failure) checkFailures.push(`${name}: ${result.failure}`);
    else if (result.completed < spec.events) checkFailures.push(`${name}: ${result.completed} of ${spec.events} events ${spec.consume ? 'delivered' : 'confirmed'}`);
    rows.push(...flowRows(name, label, result, target));
    ctx.progress(`${name}: ${round(result.eventsPerS)} events/s`);
    return result;
  };
  const setup = `${cfg.producers} producers x window ${cfg.window}, ${PAYLOAD_BYTES} B payloads, fsync interval`;
  const cores = os.availableParallelism();
  const defaultWorkers = Math.max(1, cores - 1);

  const defaultRun = await flow(
    'inprocess_events_per_s',
    `${TYPE_COUNT} types, default workers (${defaultWorkers}), ${setup}, 1 consumer acking all`,
    { ...base('default'), consume: true, input: many },
    TARGET_EVENTS_PER_S,
  );
  const noTrail = await flow('inprocess_no_trail_events_per_s', `as inprocess_events_per_s, without the audit trail`, {
    ...base('no-trail'),
    consume: true,
    trail: false,
    input: many,
  });
  rows.push({
    name: 'trail_cost_ratio',
    value: Math.round((noTrail.eventsPerS / defaultRun.eventsPerS) * 1000) / 1000,
    unit: 'ratio',
    note: 'throughput without the audit trail / with it, in the same run (1.0 = free)',
  });
  await flow('inprocess_batched_events_per_s', `${TYPE_COUNT} types, default workers, publishMany batches of 100, ${setup}`, {
    ...base('batched'),
    consume: true,
    batch: 100,
    input: many,
  });
  await flow('inprocess_1worker_events_per_s', `${TYPE_COUNT} types, workers 1, ${setup}`, { ...base('one-worker'), workers: 1, consume: true, input: many });
  if (defaultWorkers !== cores) {
    // With cores - 1 workers by default, one worker per core shows what the main thread's share costs.
    await flow(`inprocess_${cores}workers_events_per_s`, `${TYPE_COUNT} types, workers ${cores} (one per core), ${setup}`, {
      ...base('all-cores'),
      workers: cores,
      consume: true,
      input: many,
    });
  }
  await flow('inprocess_hot_type_events_per_s', `1 type (one shard), default workers, ${setup}`, { ...base('hot'), consume: true, input: unsignedInputs(pool, ['bench/hot']) });

  const signedWarmup = Math.round(cfg.warmupEvents / 10);
  ctx.progress(`signing ${cfg.signedEvents + signedWarmup} events`);
  const signStart = performance.now();
  const signed = signedInputs(pool, cfg.signedEvents + signedWarmup);
  const signUs = ((performance.now() - signStart) * 1000) / signed.inputs.length;
  await flow('inprocess_signed_events_per_s', `every event signed (Ed25519, verified by the engine), ${TYPE_COUNT} types, default workers, ${setup}`, {
    ...base('signed'),
    events: cfg.signedEvents,
    warmupEvents: signedWarmup,
    consume: true,
    input: (i) => signed.inputs[i]!,
    publicKey: signed.publicKey,
  });

  await flow('publish_only_events_per_s', `no subscriber, ${TYPE_COUNT} types, default workers, ${setup}; until the last receipt`, {
    ...base('publish-only'),
    consume: false,
    input: many,
  });

  rows.push(...(await stageRows(ctx, cfg, pool, many, signUs, defaultRun.capturedPublishTasks)));
  return { rows, checkFailures };
}

/** Each stage alone, in µs per event. */
async function stageRows(
  ctx: SuiteContext,
  cfg: EngineBenchConfig,
  pool: readonly Uint8Array[],
  many: (i: number) => PublishInput,
  signUs: number,
  engineTasks: object[],
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const us = (name: string, value: number, note: string, digits = 3): void => {
    rows.push({ name, value: round(value, digits), unit: 'µs/event', note });
  };
  ctx.progress('stages: validation, codec, signatures');
  us('stage_validate_us_per_event', measureValidate(many, cfg.stageIterations), 'validatePublishInput({type, payload}); stages: fastest of 5 rounds, one thread');
  const codec = measureCodec(many, cfg.stageIterations);
  us('stage_encode_us_per_event', codec.encodeUs, `encodeEventBody of a StoredEvent with a ${PAYLOAD_BYTES} B payload`);
  us('stage_decode_us_per_event', codec.decodeUs, 'decodeEventBody of that body');
  const verify = measureVerify(pool, cfg.verifySamples);
  us('stage_verify_us_per_event', verify.verifyEventUs, 'verifyEventSignature: canonical bytes + node:crypto Ed25519 verify', 2);
  us('stage_crypto_verify_us_per_event', verify.cryptoVerifyUs, `crypto.verify alone; signing took ${round(signUs, 1)} µs/event`, 2);

  ctx.progress(`stages: log append of ${cfg.appendRecords} records`);
  const append = await measureLogAppend(path.join(ctx.dir, 'log-append'), many, { records: cfg.appendRecords, batchSize: 500, inFlight: 8 });
  us(
    'stage_log_append_us_per_event',
    append.wallUs,
    `Log.append of encoded bodies + stream tags, batches of 500, 8 in flight, fsync interval: wall time per record (${round(1e6 / append.wallUs)} records/s)`,
  );
  if (append.mainCpuUs !== null) us('stage_log_append_cpu_us_per_event', append.mainCpuUs, 'CPU of the appending thread (record encoding, CRC, write syscalls)');

  ctx.progress('stages: structured clone');
  const plainPublish = await measurePublishClone(many, CLONE_BATCH, cfg.cloneReps);
  us('stage_clone_publish_batch_us_per_event', plainPublish.cloneUs, `structuredClone of a batch of ${CLONE_BATCH} plain {type, payload} objects`);
  us('stage_channel_publish_batch_us_per_event', plainPublish.channelUs, 'same batch through a MessageChannel and back to this thread');
  const asBuilt = measureCapturedPublishClone(engineTasks, cfg.cloneReps);
  if (asBuilt) {
    us(
      'stage_clone_engine_publish_task_us_per_event',
      asBuilt.cloneUs,
      `structuredClone of ${engineTasks.length} publish tasks as the engine builds them (mean ${round(asBuilt.meanEvents)} events; buffers copied where the engine may transfer them)`,
    );
  }
  const plainDelivery = await measureDeliveryClone(many, CLONE_BATCH, cfg.cloneReps);
  us('stage_clone_delivery_batch_us_per_event', plainDelivery.cloneUs, `structuredClone of ${CLONE_BATCH} plain Delivery objects with full events`);
  us('stage_channel_delivery_batch_us_per_event', plainDelivery.channelUs, 'same batch through a MessageChannel');
  return rows;
}

const engineSuite: Suite = {
  name: 'engine',
  description: 'in-process publish -> deliver -> ack throughput of the engine, and the cost of each stage',
  run,
};

export default engineSuite;
