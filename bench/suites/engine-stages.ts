import crypto from 'node:crypto';
import { MessageChannel } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { Log, type AppendRecord } from '../../native-free-storage/index.js';
import type { Delivery } from '../../src/engine/delivery.js';
import { DEFAULT_EVENT_PRIORITY, validatePublishInput, type PublishInput, type StoredEvent } from '../../src/engine/event.js';
import { decodeEventBody, encodeEventBody, eventStreamTag } from '../../src/engine/event-codec.js';
import { canonicalSigningBytes, privateKeyFromSeed, publicKeyFromRaw, signEvent, verifyEventSignature, generateSigningKeyPair } from '../../src/engine/signing.js';
import { readThreadTimes } from './engine-threads.js';

/**
 * The cost of each stage an event passes through, measured alone on the main thread, in
 * microseconds per event: what bounds the end-to-end figures from below.
 */

/** Keeps results alive so the optimizer cannot drop the measured work. */
let sink = 0;
export function sinkValue(): number {
  return sink;
}

/** Rounds each stage is timed in; the fastest counts, since other load only ever slows a round down. */
const ROUNDS = 5;

/** Microseconds per call of `fn(i)` (fastest of ROUNDS rounds of iterations / ROUNDS calls), after a warm-up. */
function microsPerCall(iterations: number, warmup: number, fn: (i: number) => number): number {
  for (let i = 0; i < warmup; i++) sink ^= fn(i);
  const perRound = Math.max(1, Math.floor(iterations / ROUNDS));
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now();
    for (let i = round * perRound, end = i + perRound; i < end; i++) sink ^= fn(i);
    best = Math.min(best, ((performance.now() - start) * 1000) / perRound);
  }
  return best;
}

export function storedEventOf(input: PublishInput, id: string, sender: string, now: number): StoredEvent {
  return {
    id,
    type: input.type,
    payload: input.payload,
    headers: input.headers ?? {},
    key: input.key ?? null,
    sender,
    publishedAt: now,
    recipients: input.recipients ?? null,
    signature: input.signature ?? null,
    priority: DEFAULT_EVENT_PRIORITY,
    deliverAt: 0,
    expiresAt: 0,
  };
}

/** validatePublishInput on the inputs the end-to-end runs publish ({type, payload}). */
export function measureValidate(inputs: (i: number) => PublishInput, iterations: number): number {
  return microsPerCall(iterations, Math.min(iterations, 50_000), (i) => validatePublishInput(inputs(i)).payload.length);
}

export function measureCodec(inputs: (i: number) => PublishInput, iterations: number): { encodeUs: number; decodeUs: number } {
  const now = Date.now();
  const events = Array.from({ length: 1024 }, (_, i) => storedEventOf(inputs(i), `evt-${i.toString(36).padStart(20, '0')}`, 'bench-producer-0', now));
  const encodeUs = microsPerCall(iterations, Math.min(iterations, 50_000), (i) => encodeEventBody(events[i & 1023]!).length);
  const bodies = events.map((event) => encodeEventBody(event));
  const decodeUs = microsPerCall(iterations, Math.min(iterations, 50_000), (i) => decodeEventBody(bodies[i & 1023]!).publishedAt);
  return { encodeUs, decodeUs };
}

/**
 * Ed25519 verification: the engine's verifyEventSignature (canonical encoding + checks + verify)
 * and node:crypto's verify alone on precomputed canonical bytes.
 */
export function measureVerify(payloads: readonly Uint8Array[], samples: number): { verifyEventUs: number; cryptoVerifyUs: number } {
  const { publicKey, secretKey } = generateSigningKeyPair();
  const signer = privateKeyFromSeed(secretKey);
  const verifier = publicKeyFromRaw(publicKey);
  const events = Array.from({ length: Math.min(samples, 1000) }, (_, i) => {
    const content = { type: `bench/t${i % 100}`, id: `sig-${i}`, key: null, headers: {}, payload: payloads[i % payloads.length]! };
    return { content, canonical: canonicalSigningBytes(content), signature: signEvent(signer, content) };
  });
  const n = events.length;
  const verifyEventUs = microsPerCall(samples, 200, (i) => {
    const e = events[i % n]!;
    if (!verifyEventSignature(verifier, e.content, e.signature)) throw new Error('a valid signature did not verify');
    return 1;
  });
  const cryptoVerifyUs = microsPerCall(samples, 200, (i) => {
    const e = events[i % n]!;
    return crypto.verify(null, e.canonical, verifier, e.signature) ? 1 : 0;
  });
  return { verifyEventUs, cryptoVerifyUs };
}

export interface AppendCost {
  /** Wall time per record at full speed (= 1 / throughput). */
  wallUs: number;
  /** Main-thread CPU per record (encoding the records, write syscalls; fsyncs run on the libuv pool). */
  mainCpuUs: number | null;
  records: number;
}

/**
 * The shard's log append in-process: encoded event bodies with their stream tags, in batches like
 * a shard's publish tasks, `inFlight` batches outstanding, fsync 'interval' (group commit).
 */
export async function measureLogAppend(
  dir: string,
  inputs: (i: number) => PublishInput,
  opts: { records: number; batchSize: number; inFlight: number },
): Promise<AppendCost> {
  const now = Date.now();
  const pool: AppendRecord[] = Array.from({ length: 4096 }, (_, i) => {
    const input = inputs(i);
    return { body: encodeEventBody(storedEventOf(input, `evt-${i}`, 'bench-producer-0', now)), timestamp: now, stream: eventStreamTag(input.type) };
  });
  const log = await Log.open(dir, { fsync: 'interval' });
  try {
    const batchAt = (first: number): AppendRecord[] => Array.from({ length: opts.batchSize }, (_, k) => pool[(first + k) % pool.length]!);
    const before = readThreadTimes().get(process.pid);
    const start = performance.now();
    let submitted = 0;
    await new Promise<void>((resolve, reject) => {
      let outstanding = 0;
      const submit = (): void => {
        while (outstanding < opts.inFlight && submitted < opts.records) {
          const batch = batchAt(submitted);
          submitted += batch.length;
          outstanding++;
          log.append(batch).then(() => {
            outstanding--;
            if (submitted >= opts.records && outstanding === 0) resolve();
            else submit();
          }, reject);
        }
      };
      submit();
    });
    const wallMs = performance.now() - start;
    const after = readThreadTimes().get(process.pid);
    return {
      wallUs: (wallMs * 1000) / submitted,
      mainCpuUs: before && after ? (after.runNs - before.runNs) / 1000 / submitted : null,
      records: submitted,
    };
  } finally {
    await log.close();
  }
}

/** A publish batch of plain event objects, each payload its own exact-size buffer (the naive task layout). */
function publishTask(inputs: (i: number) => PublishInput, size: number): object {
  const events = Array.from({ length: size }, (_, i) => {
    const input = inputs(i);
    return { type: input.type, payload: new Uint8Array(input.payload) };
  });
  return { op: 'publish', producer: { id: 'bench-producer-0', publicKey: null, requireSignatures: false }, events, shard: 0, epoch: 0, seq: 1 };
}

/** A batch of deliveries as plain objects with full events (the naive worker -> engine layout). */
function deliveryMessage(inputs: (i: number) => PublishInput, size: number): object {
  const now = Date.now();
  const deliveries: Delivery[] = Array.from({ length: size }, (_, i) => ({
    subscription: 'bench-consumer/bench',
    consumer: 'bench-consumer/bench#1',
    shard: 0,
    offset: 1_000_000 + i,
    attempt: 1,
    event: storedEventOf({ ...inputs(i), payload: new Uint8Array(inputs(i).payload) }, `0${(now * 1000 + i).toString(36)}abcdefgh`, 'bench-producer-0', now),
  }));
  return { shard: 0, epoch: 0, deliveries };
}

export interface CloneCost {
  /** structuredClone (serialize + deserialize, one thread) per event. */
  cloneUs: number;
  /** postMessage through a MessageChannel and receive it back on this thread, per event. */
  channelUs: number;
}

async function cloneCost(message: object, events: number, reps: number): Promise<CloneCost> {
  const cloneUs = microsPerCall(reps, Math.max(5, reps >> 3), () => (structuredClone(message) ? 1 : 0)) / events;
  const { port1, port2 } = new MessageChannel();
  try {
    const roundTrip = (): Promise<void> =>
      new Promise((resolve) => {
        port2.once('message', () => resolve());
        port1.postMessage(message);
      });
    for (let i = 0; i < Math.max(5, reps >> 3); i++) await roundTrip();
    const perRound = Math.max(1, Math.floor(reps / ROUNDS));
    let best = Infinity;
    for (let round = 0; round < ROUNDS; round++) {
      const start = performance.now();
      for (let i = 0; i < perRound; i++) await roundTrip();
      best = Math.min(best, ((performance.now() - start) * 1000) / perRound);
    }
    return { cloneUs, channelUs: best / events };
  } finally {
    port1.close();
    port2.close();
  }
}

export function measurePublishClone(inputs: (i: number) => PublishInput, batch: number, reps: number): Promise<CloneCost> {
  return cloneCost(publishTask(inputs, batch), batch, reps);
}

/** Events in a publish task however the engine lays it out (an array of events, or a packed batch); null if unknown. */
function eventsInTask(task: object): number | null {
  const t = task as { events?: unknown; batch?: { types?: unknown } };
  if (Array.isArray(t.events)) return t.events.length;
  if (Array.isArray(t.batch?.types)) return t.batch.types.length;
  return null;
}

/**
 * structuredClone of publish tasks exactly as the engine built them (copied during a warm-up).
 * Buffers are copied here where the engine may transfer them, so this bounds the cost from above.
 */
export function measureCapturedPublishClone(tasks: readonly object[], reps: number): { cloneUs: number; meanEvents: number } | null {
  const counts = tasks.map(eventsInTask);
  if (tasks.length === 0 || counts.some((n) => n === null)) return null;
  const events = (counts as number[]).reduce((a, b) => a + b, 0);
  const perRep = microsPerCall(reps, Math.max(5, reps >> 3), () => {
    let n = 0;
    for (const task of tasks) n += structuredClone(task) ? 1 : 0;
    return n;
  });
  return { cloneUs: perRep / events, meanEvents: events / tasks.length };
}

export function measureDeliveryClone(inputs: (i: number) => PublishInput, batch: number, reps: number): Promise<CloneCost> {
  return cloneCost(deliveryMessage(inputs, batch), batch, reps);
}
