import fs from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Delivery } from '../../src/engine/delivery.js';
import { Engine } from '../../src/engine/engine.js';
import { EngineError } from '../../src/engine/errors.js';
import type { PublishInput } from '../../src/engine/event.js';
import { newThreads, readThreadTimes, splitCpu, type CpuSplit } from './engine-threads.js';

/** One in-process run: producers publish through the engine API, optionally one consumer acks everything. */
export interface FlowSpec {
  dataDir: string;
  /** Shard worker threads; undefined = the engine's default (cores - 1). */
  workers?: number;
  /** Events timed; `warmupEvents` more go first, untimed, so the JIT and the logs are warm. */
  events: number;
  warmupEvents: number;
  producers: number;
  /** Unconfirmed publishes each producer keeps (at most the engine's publishWindow). */
  window: number;
  /** With a subscriber acking every delivery (end to end), or publish only. */
  consume: boolean;
  /** Keep the engine's audit trail (default true, the engine's default). */
  trail?: boolean;
  /** Publish in batches of this many events with publishMany (window counts events); default one by one. */
  batch?: number;
  /** Unacked deliveries per shard for the subscription (the engine's default is 1000). */
  maxInFlight?: number;
  /** The i-th event published (0-based, warm-up first), called just before it is published; every payload has the same size. */
  input(i: number): PublishInput;
  /** Public key every producer registers with; set for signed runs (requireSignatures). */
  publicKey?: Uint8Array;
  /** Give up waiting after this long without progress. */
  stallMs: number;
  /** The libuv pool's threads, when known (identifyFsPool). */
  fsPoolTids: ReadonlySet<number> | null;
}

export interface FlowResult {
  events: number;
  elapsedMs: number;
  eventsPerS: number;
  /** Timed events delivered at least once (end to end) or confirmed (publish only). */
  completed: number;
  /** Deliveries with attempt > 1 during the timed part. */
  redeliveries: number;
  /** Publish errors seen (each retried if retryable). */
  publishErrors: Map<string, number>;
  workerThreads: number;
  cpu: CpuSplit;
  /** process.cpuUsage over the timed part, ms (all threads). */
  processCpuMs: number;
  /** Mean events per publish task that crossed to a shard worker (timed part). */
  meanPublishBatch: number;
  /** Copies of the first publish tasks of the warm-up, as the engine built them. */
  capturedPublishTasks: object[];
  /** Tasks sent to shard workers during the timed part, by op. */
  tasks: Record<string, number>;
  /** Mean deliveries per handler call. */
  meanDeliveryBatch: number;
  failure: string | null;
}

const SUBSCRIBER = 'bench-consumer';
const PATTERN_ALL = '**';

/** Publish tasks copied from the warm-up for the clone-cost stage: enough for a stable figure. */
const CAPTURED_PUBLISH_TASKS = 32;

/**
 * Counts what the engine sends to its shard workers by wrapping the pool's run (the real one still
 * runs), and keeps copies of the first publish tasks, exactly as the engine builds them.
 */
function watchTasks(engine: Engine): { tasks: Record<string, number>; captured: object[]; capture: boolean; reset(): void } {
  const pool = engine.shardPool;
  const run = pool.run.bind(pool);
  const watch = {
    tasks: {} as Record<string, number>,
    captured: [] as object[],
    capture: true,
    reset() {
      watch.tasks = {};
      watch.capture = false;
    },
  };
  pool.run = ((shard, body, transferList) => {
    watch.tasks[body.op] = (watch.tasks[body.op] ?? 0) + 1;
    // Copied before the run: the engine may transfer (detach) the task's buffers.
    // Its bodies trimmed to their bytes: the engine transfers the buffer (no copy), which may be a
    // larger pooled one; cloning all of it would measure the pool's sizes, not the task.
    if (watch.capture && body.op === 'publish' && watch.captured.length < CAPTURED_PUBLISH_TASKS) {
      watch.captured.push(structuredClone({ ...body, batch: { ...body.batch, bodies: body.batch.bodies.slice() } }));
    }
    return run(shard, body, transferList);
  }) as typeof pool.run;
  return watch;
}

/** Tracks which (shard, offset) were delivered, so lost and repeated deliveries are told apart. */
class DeliveryLedger {
  private readonly seen: Uint8Array[];
  delivered = 0;
  unique = 0;
  redeliveries = 0;
  calls = 0;

  constructor(
    shards: number,
    maxOffset: number,
    private readonly payloadBytes: number,
  ) {
    this.seen = Array.from({ length: shards }, () => new Uint8Array(maxOffset));
  }

  note(deliveries: readonly Delivery[]): void {
    this.calls++;
    for (const d of deliveries) {
      this.delivered++;
      if (d.attempt > 1) this.redeliveries++;
      const seen = this.seen[d.shard]!;
      if (d.offset >= seen.length) throw new Error(`delivery at offset ${d.offset} of shard ${d.shard}: more events than were published`);
      if (d.event.payload.length !== this.payloadBytes) throw new Error(`delivery at offset ${d.offset} has a ${d.event.payload.length}-byte payload, ${this.payloadBytes} were published`);
      if (seen[d.offset] === 0) {
        seen[d.offset] = 1;
        this.unique++;
      }
    }
  }
}

export async function runFlow(spec: FlowSpec): Promise<FlowResult> {
  await fs.mkdir(spec.dataDir, { recursive: true });
  // Start the libuv pool before the engine (if not yet), so the threads Engine.open creates are its workers only.
  await Promise.all(Array.from({ length: 8 }, () => fs.stat(spec.dataDir)));
  const threadsBefore = readThreadTimes();
  const engine = await Engine.open({
    dataDir: spec.dataDir,
    fsync: 'interval',
    trail: spec.trail ?? true,
    ...(spec.workers === undefined ? {} : { workers: spec.workers }),
  });
  try {
    return await drive(engine, spec, newThreads(threadsBefore, readThreadTimes()));
  } finally {
    await engine.close();
    await fs.rm(spec.dataDir, { recursive: true, force: true });
  }
}

async function drive(engine: Engine, spec: FlowSpec, workerTids: Set<number>): Promise<FlowResult> {
  const producers = Array.from({ length: spec.producers }, (_, p) => `bench-producer-${p}`);
  for (const id of producers) {
    engine.registerClient(spec.publicKey ? { id, publicKey: spec.publicKey, requireSignatures: true } : { id });
  }
  engine.registerClient({ id: SUBSCRIBER });
  const total = spec.warmupEvents + spec.events;
  const ledger = new DeliveryLedger(engine.options.shards, total, spec.input(0).payload.length);
  let onProgress = (): void => {};
  let handlerError: unknown = null;
  if (spec.consume) {
    await engine.subscribe(
      SUBSCRIBER,
      { name: 'bench', pattern: PATTERN_ALL, start: { from: 'new' }, ...(spec.maxInFlight ? { maxInFlight: spec.maxInFlight } : {}) },
      (deliveries, consumer) => {
        consumer.ack(deliveries);
        try {
          ledger.note(deliveries);
        } catch (error) {
          handlerError ??= error;
        }
        onProgress();
      },
    );
  }
  const watch = watchTasks(engine);

  let next = 0;
  /** Events below this index may be published in the current phase. */
  let phaseLimit = 0;
  let confirmed = 0;
  const errors = new Map<string, number>();
  let fatal: unknown = null;
  const issueBatch = (producer: string, size: number): void => {
    if (next >= phaseLimit || fatal) return;
    const end = Math.min(phaseLimit, next + size);
    const inputs: PublishInput[] = [];
    while (next < end) inputs.push(spec.input(next++));
    const send = (batch: PublishInput[]): void => {
      engine.publishMany(producer, batch).then((results) => {
        const retry: PublishInput[] = [];
        results.forEach((result, k) => {
          if (!(result instanceof EngineError)) {
            confirmed++;
            return;
          }
          errors.set(result.code, (errors.get(result.code) ?? 0) + 1);
          if (result.retryable) retry.push(batch[k]!);
          else fatal ??= result;
        });
        onProgress();
        if (retry.length > 0) setTimeout(() => send(retry), 1);
        else issueBatch(producer, size);
      }, (error: unknown) => {
        fatal ??= error;
        onProgress();
      });
    };
    send(inputs);
  };
  const issue = (producer: string): void => {
    if (spec.batch) {
      issueBatch(producer, spec.batch);
      return;
    }
    if (next >= phaseLimit || fatal) return;
    const i = next++;
    const input = spec.input(i);
    const publish = (): void => {
      engine.publish(producer, input).then(
        () => {
          confirmed++;
          onProgress();
          issue(producer);
        },
        (error: unknown) => {
          const code = error instanceof EngineError ? error.code : 'UNKNOWN';
          errors.set(code, (errors.get(code) ?? 0) + 1);
          // A retryable refusal (window full, shard restarting): publish the same input again shortly.
          if (error instanceof EngineError && error.retryable) setTimeout(publish, 1);
          else {
            fatal ??= error;
            onProgress();
          }
        },
      );
    };
    publish();
  };

  /**
   * Publish events up to `limit` and resolve once they are delivered (end to end) or confirmed
   * (publish only); with `allConfirmed`, also wait for every receipt. Rejects on a stall or error.
   */
  const runPhase = (limit: number, allConfirmed: boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      const progress = (): number => (spec.consume ? ledger.unique : confirmed);
      let last = -1;
      let lastChange = performance.now();
      const finish = (error: unknown): void => {
        clearInterval(watchdog);
        onProgress = () => {};
        if (error) reject(error);
        else resolve();
      };
      const check = (): void => {
        if (fatal || handlerError) finish(fatal ?? handlerError);
        else if (progress() >= limit && (!allConfirmed || confirmed >= limit)) finish(null);
      };
      const watchdog = setInterval(() => {
        const now = progress() + confirmed;
        if (now !== last) {
          last = now;
          lastChange = performance.now();
        } else if (performance.now() - lastChange > spec.stallMs) {
          finish(new Error(`no progress for ${spec.stallMs} ms: ${progress()} of ${limit} events ${spec.consume ? 'delivered' : 'confirmed'}`));
        }
      }, 100);
      onProgress = check;
      phaseLimit = limit;
      for (const producer of producers) {
        const lanes = spec.batch ? Math.max(1, Math.floor(spec.window / spec.batch)) : spec.window;
        for (let k = 0; k < lanes; k++) issue(producer);
      }
      check();
    });

  if (spec.warmupEvents > 0) await runPhase(spec.warmupEvents, true);

  watch.reset();
  const deliveredBefore = ledger.delivered;
  const callsBefore = ledger.calls;
  const redeliveriesBefore = ledger.redeliveries;
  const cpuBefore = process.cpuUsage();
  const threadsBefore = readThreadTimes();
  const start = performance.now();
  let failure: string | null = null;
  try {
    await runPhase(total, false);
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
  }
  const elapsedMs = performance.now() - start;
  const threadsAfter = readThreadTimes();
  const processCpu = process.cpuUsage(cpuBefore);
  const tasks = { ...watch.tasks };
  const completed = (spec.consume ? ledger.unique : confirmed) - spec.warmupEvents;
  const deliveries = ledger.delivered - deliveredBefore;
  // Receipts can trail the last delivery by a moment; wait for them so close() finds nothing pending.
  if (!failure && spec.consume) await runPhase(total, true).catch(() => undefined);

  return {
    events: spec.events,
    elapsedMs,
    eventsPerS: completed / (elapsedMs / 1000),
    completed,
    redeliveries: ledger.redeliveries - redeliveriesBefore,
    publishErrors: errors,
    workerThreads: workerTids.size,
    cpu: splitCpu(threadsBefore, threadsAfter, workerTids, spec.fsPoolTids),
    processCpuMs: (processCpu.user + processCpu.system) / 1000,
    meanPublishBatch: spec.events / Math.max(1, tasks.publish ?? 0),
    capturedPublishTasks: watch.captured,
    tasks,
    meanDeliveryBatch: deliveries / Math.max(1, ledger.calls - callsBefore),
    failure,
  };
}
