import crypto from 'node:crypto';
import path from 'node:path';
import * as ed from '@noble/ed25519';
import { Bench } from 'tinybench';
import { OffsetIndex, TimeIndex } from '../../native-free-storage/index.js';
import { decodeRecordAt, encodeRecordInto, encodedRecordBytes, viewOf } from '../../native-free-storage/record.js';
import { BenchError } from '../harness/bench-error.js';
import type { BenchRow, Suite, SuiteContext, SuiteOutput } from '../harness/results.js';
import { canonicalSigningBytes, generateSigningKeyPair, privateKeyFromSeed, publicKeyFromRaw } from '../../src/engine/signing.js';
import { decodeClientFrame, encodeFrame, type PublishFrame } from '../../src/protocol/index.js';

/**
 * The cost of single hot operations, with tinybench: the wire codec on a publish frame, the log
 * record's checksum, the sparse index lookups, Ed25519 verification (node:crypto against the
 * pure-JS @noble/ed25519 the browser SDK uses).
 */

const PAYLOAD_BYTES = 256;
/** A full 64 MiB segment indexed every 4 KiB (the log's defaults). */
const INDEX_ENTRIES = 16_384;
/** Records between two index entries: about 4 KiB of ~300-byte records. */
const RECORDS_PER_ENTRY = 13;
const MAX_FRAME_BYTES = 4 * 1024 * 1024;

interface Budget {
  timeMs: number;
  warmupMs: number;
}
const FULL: Budget = { timeMs: 1000, warmupMs: 250 };
const QUICK: Budget = { timeMs: 150, warmupMs: 50 };

/** Keeps results alive so the optimizer cannot drop the measured work. */
let sink = 0;
export function sinkValue(): number {
  return sink;
}

interface MicroTask {
  name: string;
  /** What one operation is, for the unit column. */
  unit: string;
  note: string;
  /** Operations per call: fast operations run in a loop so the timer's own cost does not count. */
  reps: number;
  fn: () => void;
}

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

function publishFrame(events: number, payload: Uint8Array): PublishFrame {
  return { t: 'publish', id: 7, events: Array.from({ length: events }, (_, i) => ({ type: `bench/micro/t${i % 100}`, payload })) };
}

function codecTasks(check: (ok: boolean, failure: string) => void): MicroTask[] {
  const payload = new Uint8Array(crypto.randomBytes(PAYLOAD_BYTES));
  const one = publishFrame(1, payload);
  const hundred = publishFrame(100, payload);
  const oneBytes = encodeFrame(one).slice();
  const hundredBytes = encodeFrame(hundred).slice();
  const decoded = decodeClientFrame(hundredBytes, MAX_FRAME_BYTES);
  check(decoded.t === 'publish' && decoded.events.length === 100 && Buffer.from(decoded.events[99]!.payload).equals(payload), 'publish frame does not decode to what was encoded');
  return [
    { name: 'publish_frame_encode_per_s', unit: 'frames/s', note: `encodeFrame, 1 event of ${PAYLOAD_BYTES} B (${oneBytes.length} B frame)`, reps: 100, fn: () => void (sink ^= encodeFrame(one).length) },
    { name: 'publish_frame_decode_per_s', unit: 'frames/s', note: 'decodeClientFrame with its shape checks, same frame', reps: 100, fn: () => void (sink ^= decodeClientFrame(oneBytes, MAX_FRAME_BYTES).t.length) },
    { name: 'publish_frame100_encode_events_per_s', unit: 'events/s', note: `encodeFrame, 100 events per frame (${hundredBytes.length} B), per event`, reps: 100, fn: () => void (sink ^= encodeFrame(hundred).length) },
    { name: 'publish_frame100_decode_events_per_s', unit: 'events/s', note: 'decodeClientFrame, 100 events per frame, per event', reps: 100, fn: () => void (sink ^= decodeClientFrame(hundredBytes, MAX_FRAME_BYTES).t.length) },
  ];
}

function recordTasks(check: (ok: boolean, failure: string) => void): MicroTask[] {
  const body = new Uint8Array(crypto.randomBytes(PAYLOAD_BYTES));
  const target = Buffer.alloc(encodedRecordBytes(body.length));
  const view = viewOf(target);
  const fields = { offset: 123_456_789, timestamp: Date.now(), attributes: 4, stream: 0x1234_5678, body };
  encodeRecordInto(target, view, 0, fields);
  const verified = decodeRecordAt(target, 0, true);
  check(verified.status === 'ok' && verified.record.offset === fields.offset && verified.record.body.equals(body), 'record does not decode to what was encoded');
  const corrupt = Buffer.from(target);
  corrupt[40]! ^= 1;
  check(decodeRecordAt(corrupt, 0, true).status === 'corrupt', 'a flipped body bit passed the record checksum');
  return [
    { name: 'record_encode_per_s', unit: 'records/s', note: `encodeRecordInto: header + ${PAYLOAD_BYTES} B body + CRC32`, reps: 100, fn: () => void (sink ^= encodeRecordInto(target, view, 0, fields)) },
    { name: 'record_checksum_verify_per_s', unit: 'records/s', note: 'decodeRecordAt with the CRC32 check (every read of the log)', reps: 100, fn: () => void (sink ^= decodeRecordAt(target, 0, true).status.length) },
    { name: 'record_decode_no_checksum_per_s', unit: 'records/s', note: 'decodeRecordAt without the check: the difference is the checksum', reps: 100, fn: () => void (sink ^= decodeRecordAt(target, 0, false).status.length) },
  ];
}

function indexTasks(dir: string, check: (ok: boolean, failure: string) => void): { tasks: MicroTask[]; close(): void } {
  const baseOffset = 5_000_000;
  const start = Date.now() - INDEX_ENTRIES * 10;
  const offsets = new OffsetIndex(path.join(dir, 'micro.index'), baseOffset, INDEX_ENTRIES);
  const times = new TimeIndex(path.join(dir, 'micro.timeindex'), baseOffset, INDEX_ENTRIES);
  for (let i = 0; i < INDEX_ENTRIES; i++) {
    offsets.append(baseOffset + i * RECORDS_PER_ENTRY, i * 4096);
    times.append(start + i * 10, baseOffset + i * RECORDS_PER_ENTRY);
  }
  const span = INDEX_ENTRIES * RECORDS_PER_ENTRY;
  // Precomputed probes: the random numbers are not part of the lookup.
  const probes = Array.from({ length: 4096 }, () => Math.floor(Math.random() * span));
  const probe = probes[100]!;
  check(offsets.lookup(baseOffset + probe).position === Math.floor(probe / RECORDS_PER_ENTRY) * 4096, 'offset index lookup found the wrong entry');
  check(times.lastOffsetBefore(start + 1000 * 10 + 5) === baseOffset + 1000 * RECORDS_PER_ENTRY, 'time index lookup found the wrong entry');
  let p = 0;
  return {
    tasks: [
      { name: 'offset_index_lookup_per_s', unit: 'lookups/s', note: `OffsetIndex.lookup, random offsets, ${INDEX_ENTRIES} entries (a full 64 MiB segment)`, reps: 100, fn: () => void (sink ^= offsets.lookup(baseOffset + probes[p++ & 4095]!).position) },
      { name: 'time_index_lookup_per_s', unit: 'lookups/s', note: `TimeIndex.lastOffsetBefore, random times, ${INDEX_ENTRIES} entries`, reps: 100, fn: () => void (sink ^= times.lastOffsetBefore(start + (probes[p++ & 4095]! % INDEX_ENTRIES) * 10) ?? 0) },
    ],
    close: () => {
      offsets.closeFile();
      times.closeFile();
    },
  };
}

function ed25519Tasks(check: (ok: boolean, failure: string) => void): MicroTask[] {
  // Node's SHA-512 for noble: what is compared is the curve arithmetic, not the hash.
  if (ed.hashes.sha512 === undefined) ed.hashes.sha512 = (message) => new Uint8Array(crypto.createHash('sha512').update(message).digest());
  const { publicKey, secretKey } = generateSigningKeyPair();
  const message = canonicalSigningBytes({ type: 'bench/micro/t0', id: 'evt-micro-1', key: null, headers: {}, payload: new Uint8Array(crypto.randomBytes(PAYLOAD_BYTES)) });
  const signature = new Uint8Array(crypto.sign(null, message, privateKeyFromSeed(secretKey)));
  const verifier = publicKeyFromRaw(publicKey);
  check(crypto.verify(null, message, verifier, signature), 'node:crypto did not verify a valid signature');
  check(ed.verify(signature, message, publicKey), '@noble/ed25519 did not verify a valid signature');
  const forged = signature.slice();
  forged[0]! ^= 1;
  check(!crypto.verify(null, message, verifier, forged) && !ed.verify(forged, message, publicKey), 'a forged signature verified');
  return [
    { name: 'ed25519_verify_node_per_s', unit: 'verifies/s', note: `node:crypto verify of an event's canonical bytes (${message.length} B)`, reps: 1, fn: () => void (sink ^= crypto.verify(null, message, verifier, signature) ? 1 : 0) },
    { name: 'ed25519_verify_noble_per_s', unit: 'verifies/s', note: '@noble/ed25519 verify (pure JS), same message', reps: 1, fn: () => void (sink ^= ed.verify(signature, message, publicKey) ? 1 : 0) },
  ];
}

async function measure(tasks: MicroTask[], budget: Budget): Promise<Map<string, number>> {
  const bench = new Bench({ time: budget.timeMs, warmupTime: budget.warmupMs, throws: true });
  for (const task of tasks) {
    bench.add(task.name, () => {
      for (let i = 0; i < task.reps; i++) task.fn();
    });
  }
  await bench.run();
  const perSecond = new Map<string, number>();
  for (const task of tasks) {
    const result = bench.getTask(task.name)?.result;
    // The median call: other processes on the machine only ever slow a call down.
    const medianMs = result?.latency.p50;
    if (!result || result.error || medianMs === undefined || medianMs <= 0) throw new BenchError('NO_RESULT', `micro ${task.name}: no result${result?.error ? ` (${result.error.message})` : ''}`);
    perSecond.set(task.name, (task.reps * 1000) / medianMs);
  }
  return perSecond;
}

async function run(ctx: SuiteContext): Promise<SuiteOutput> {
  const budget = ctx.quick ? QUICK : FULL;
  const checkFailures: string[] = [];
  const check = (ok: boolean, failure: string): void => {
    if (!ok) checkFailures.push(failure);
  };
  const index = indexTasks(ctx.dir, check);
  const tasks = [...codecTasks(check), ...recordTasks(check), ...index.tasks, ...ed25519Tasks(check)];
  ctx.progress(`${tasks.length} operations, ${budget.timeMs} ms each after ${budget.warmupMs} ms of warm-up`);
  let perSecond: Map<string, number>;
  try {
    perSecond = await measure(tasks, budget);
  } finally {
    index.close();
  }
  const rows: BenchRow[] = tasks.map((task) => {
    let value = perSecond.get(task.name)!;
    // 100-event frames: per event.
    if (task.name.startsWith('publish_frame100_')) value *= 100;
    return { name: task.name, value: round(value), unit: task.unit, note: `${task.note}; ${round(1e6 / value, 3)} µs each` };
  });
  const node = perSecond.get('ed25519_verify_node_per_s')!;
  const noble = perSecond.get('ed25519_verify_noble_per_s')!;
  rows.push({ name: 'ed25519_node_vs_noble_ratio', value: round(node / noble, 1), unit: 'ratio', note: 'node:crypto verifies per second / @noble/ed25519 verifies per second' });
  return { rows, checkFailures };
}

const microSuite: Suite = {
  name: 'micro',
  description: 'single hot operations with tinybench: publish frame codec, record checksum, index lookups, Ed25519 verify',
  run,
};

export default microSuite;
