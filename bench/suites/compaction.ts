import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_COMPACTION_IO_BYTES_PER_SECOND, Log, type AppendRecord, type CompactionPlan, type DropRange } from '../../native-free-storage/index.js';
import { DEFAULT_EVENT_PRIORITY } from '../../src/engine/event.js';
import { encodeEventBody } from '../../src/engine/event-codec.js';
import { RecordKind } from '../../src/engine/shard/record-kind.js';
import { CompactionPool, compactLog } from '../../src/engine/compaction/compaction-pool.js';
import { percentile, sortedCopy } from '../harness/percentiles.js';
import type { BenchRow, Suite, SuiteContext, SuiteOutput } from '../harness/results.js';
import { appendWindowed, makeBatch, makePayloadPool } from './storage-workload.js';

const MB = 1e6;
const MIB = 2 ** 20;
const BODY_BYTES = 256;
/** Every other block of this many offsets is dropped: half the events are removable. */
const DROP_BLOCK = 100;

interface CompactionConfig {
  /** Records of the drop-range log (throughput and space). */
  rangeRecords: number;
  /** Events of the key-compaction log; every key is written twice, so half are superseded. */
  keyRecords: number;
  segmentBytes: number;
  /** Records of the latency log: enough sealed data to keep compacting through every compaction phase. */
  latencyRecords: number;
  /**
   * Baseline / compaction phase pairs (in ABBA order), and the length of a phase: many short phases, so
   * a burst from anything else on the machine falls on both sides alike.
   */
  phasePairs: number;
  phaseMs: number;
  /** Steady load: one batch every appendEveryMs. */
  appendEveryMs: number;
  appendBatch: number;
}

const FULL: CompactionConfig = {
  rangeRecords: 1_000_000,
  keyRecords: 300_000,
  segmentBytes: 16 * MIB,
  latencyRecords: 1_500_000,
  phasePairs: 12,
  phaseMs: 1000,
  appendEveryMs: 2,
  appendBatch: 10,
};

const QUICK: CompactionConfig = {
  ...FULL,
  rangeRecords: 200_000,
  keyRecords: 100_000,
  segmentBytes: 8 * MIB,
  latencyRecords: 600_000,
  phasePairs: 8,
  phaseMs: 500,
};

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

/** Build a log fast (fsync never, big batches), close it, and reopen it with the default fsync policy. */
async function builtLog(dir: string, segmentBytes: number, fill: (log: Log) => Promise<void>): Promise<Log> {
  const builder = await Log.open(dir, { fsync: 'never', segmentBytes });
  await fill(builder);
  await builder.close();
  // Reopened: its checkpoint names the active segment, so every sealed one is compactable at once.
  return Log.open(dir, { segmentBytes });
}

function everyOtherBlock(from: number, to: number): DropRange[] {
  const ranges: DropRange[] = [];
  for (let start = from - (from % (2 * DROP_BLOCK)); start < to; start += 2 * DROP_BLOCK) ranges.push({ from: start, to: start + DROP_BLOCK });
  return ranges;
}

function keyedEvent(i: number, keys: number, payload: Buffer): AppendRecord {
  const body = encodeEventBody({
    id: `e${i}`,
    type: 'bench.keys',
    payload,
    headers: {},
    key: `k${i % keys}`,
    sender: 'bench',
    publishedAt: 0,
    recipients: null,
    signature: null,
    priority: DEFAULT_EVENT_PRIORITY,
    deliverAt: 0,
    expiresAt: 0,
  });
  return { body, attributes: RecordKind.EVENT };
}

async function run(ctx: SuiteContext): Promise<SuiteOutput> {
  const cfg = ctx.quick ? QUICK : FULL;
  const rows: BenchRow[] = [];
  const checkFailures: string[] = [];
  const check = (ok: boolean, failure: string): void => {
    if (!ok) checkFailures.push(failure);
  };
  const payloads = makePayloadPool(4096, BODY_BYTES);
  const unthrottled = new CompactionPool({ ioBytesPerSecond: Infinity });
  const throttled = new CompactionPool();
  try {
    await measureRangeCompaction(ctx, cfg, payloads, unthrottled, rows, check);
    await measureKeyCompaction(ctx, cfg, payloads, unthrottled, rows, check);
    await measureLatency(ctx, cfg, payloads, throttled, rows, check);
  } finally {
    await unthrottled.close();
    await throttled.close();
  }
  return { rows, checkFailures };
}

async function measureRangeCompaction(ctx: SuiteContext, cfg: CompactionConfig, payloads: Buffer[], pool: CompactionPool, rows: BenchRow[], check: (ok: boolean, failure: string) => void): Promise<void> {
  ctx.progress(`drop ranges: building ${cfg.rangeRecords} records of ${BODY_BYTES} B in ${cfg.segmentBytes / MIB} MiB segments`);
  const log = await builtLog(path.join(ctx.dir, 'ranges'), cfg.segmentBytes, async (l) => {
    await appendWindowed(l, payloads, { totalRecords: cfg.rangeRecords, batchSize: 10_000, maxInFlight: 4 });
  });
  try {
    const sealed = log.sealedSegments();
    const before = sealed.reduce((sum, s) => sum + s.sizeBytes, 0);
    const nextOffset = log.nextOffset;
    let kept = 0;
    let dropped = 0;
    ctx.progress(`drop ranges: compacting ${sealed.length} segments (${round(before / MIB)} MiB), throttle off`);
    const started = performance.now();
    for (const segment of sealed) {
      const report = await compactLog(log, { segments: [segment.baseOffset], dropRanges: everyOtherBlock(segment.baseOffset, segment.nextOffset) }, pool);
      kept += report.recordsKept;
      dropped += report.recordsDropped;
    }
    const seconds = (performance.now() - started) / 1000;
    const after = log.sealedSegments().reduce((sum, s) => sum + s.sizeBytes, 0);
    rows.push({
      name: 'compaction_mb_per_s',
      value: round(before / MB / seconds, 1),
      unit: 'MB/s',
      note: `input segment bytes / time; ${sealed.length} x ${cfg.segmentBytes / MIB} MiB segments, half the offsets in drop ranges; throttle off (ioBytesPerSecond Infinity), 1 compaction thread, prepare + rewrite + install`,
    });
    rows.push({ name: 'space_reclaimed_ratio', value: round(after / before, 3), unit: 'ratio', note: `.log bytes after / before (${round(after / MIB)} of ${round(before / MIB)} MiB)`, target: { op: '<=', value: 0.55 } });
    const sealedEnd = sealed.at(-1)!.nextOffset;
    check(kept + dropped === sealedEnd, `compaction saw ${kept + dropped} records, the sealed segments held ${sealedEnd}`);
    check(log.nextOffset === nextOffset, `nextOffset moved from ${nextOffset} to ${log.nextOffset}`);
    let readBack = 0;
    let wrong = 0;
    for (const record of log.records(0)) {
      if (record.offset >= sealedEnd) break;
      readBack++;
      const dropBlock = Math.floor(record.offset / DROP_BLOCK) % 2 === 0;
      if (dropBlock || !record.body.equals(payloads[record.offset % payloads.length]!)) wrong++;
    }
    check(readBack === kept, `read back ${readBack} records, compaction kept ${kept}`);
    check(wrong === 0, `${wrong} records read back were dropped ones or had other bytes`);
  } finally {
    await log.close();
  }
}

async function measureKeyCompaction(ctx: SuiteContext, cfg: CompactionConfig, payloads: Buffer[], pool: CompactionPool, rows: BenchRow[], check: (ok: boolean, failure: string) => void): Promise<void> {
  // Key of event i is i mod (n/2): the first half is superseded by the second.
  const keys = cfg.keyRecords / 2;
  ctx.progress(`key compaction: building ${cfg.keyRecords} engine events, ${keys} keys`);
  const log = await builtLog(path.join(ctx.dir, 'keys'), cfg.segmentBytes, async (l) => {
    for (let i = 0; i < cfg.keyRecords; i += 5000) {
      await l.append(Array.from({ length: Math.min(5000, cfg.keyRecords - i) }, (_, j) => keyedEvent(i + j, keys, payloads[(i + j) % payloads.length]!)));
    }
  });
  try {
    const sealed = log.sealedSegments();
    const before = sealed.reduce((sum, s) => sum + s.sizeBytes, 0);
    let bytesRead = 0;
    let superseded = 0;
    ctx.progress(`key compaction: compacting ${sealed.length} segments (${round(before / MIB)} MiB), throttle off`);
    const started = performance.now();
    for (const segment of sealed) {
      const plan: CompactionPlan = { segments: [segment.baseOffset], keyCompaction: { tombstoneBeforeTimestamp: 0 } };
      const report = await compactLog(log, plan, pool);
      bytesRead += report.bytesRead;
      superseded += report.dropped.byKey;
    }
    const seconds = (performance.now() - started) / 1000;
    const after = log.sealedSegments().reduce((sum, s) => sum + s.sizeBytes, 0);
    const expected = Math.min(keys, sealed.at(-1)!.nextOffset);
    check(superseded === expected, `key compaction dropped ${superseded} superseded events, expected ${expected}`);
    rows.push({
      name: 'compaction_keys_mb_per_s',
      value: round(before / MB / seconds, 1),
      unit: 'MB/s',
      note: `input segment bytes / time, key compaction of engine events (each key twice); every compaction also reads the log after its segment for newer keys (${round(bytesRead / MIB)} MiB read in all); throttle off`,
    });
    rows.push({ name: 'compaction_keys_read_mb_per_s', value: round(bytesRead / MB / seconds, 1), unit: 'MB/s', note: 'all bytes read (segment twice, later segments once) / time' });
    rows.push({ name: 'space_reclaimed_keys_ratio', value: round(after / before, 3), unit: 'ratio', note: `.log bytes after / before (key compaction)` });
  } finally {
    await log.close();
  }
}

/**
 * Append latency (append to durable, default fsync interval policy) under a steady open-loop load, in
 * alternating phases without and with compaction running at the default throttle. A compaction phase
 * starts compactions for `phaseMs` and lasts until the last one is installed; its baseline phase lasts
 * as long.
 */
async function measureLatency(ctx: SuiteContext, cfg: CompactionConfig, payloads: Buffer[], pool: CompactionPool, rows: BenchRow[], check: (ok: boolean, failure: string) => void): Promise<void> {
  ctx.progress(`latency: building ${cfg.latencyRecords} records`);
  const log = await builtLog(path.join(ctx.dir, 'latency'), cfg.segmentBytes, async (l) => {
    await appendWindowed(l, payloads, { totalRecords: cfg.latencyRecords, batchSize: 10_000, maxInFlight: 4 });
  });
  const baseline: number[] = [];
  const during: number[] = [];
  let samples = baseline;
  let failures = 0;
  let stop = false;
  let appended = 0;
  // Open loop: batches leave on a fixed schedule whatever the latency, measured from the scheduled time.
  const load = (async () => {
    let next = performance.now();
    const inFlight = new Set<Promise<void>>();
    while (!stop) {
      const scheduled = next;
      const target = samples;
      const pending: Promise<void> = log.append(makeBatch(payloads, appended, cfg.appendBatch)).then(
        () => {
          target.push((performance.now() - scheduled) * 1000);
        },
        () => {
          failures++;
        },
      );
      appended += cfg.appendBatch;
      inFlight.add(pending);
      void pending.finally(() => inFlight.delete(pending));
      next += cfg.appendEveryMs;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
    }
    await Promise.all(inFlight);
  })();
  let compactedBytes = 0;
  let compactionMs = 0;
  let compactions = 0;
  let starved = false;
  /** Compact one segment after another (default throttle) for at least `ms`; returns the time taken. */
  const compactFor = async (ms: number): Promise<number> => {
    samples = during;
    const started = performance.now();
    do {
      // Not yet compacted: still more than half full (a compacted one is about half).
      const segment = log.sealedSegments().find((s) => s.compactable && s.sizeBytes > cfg.segmentBytes * 0.75);
      if (!segment) {
        starved = true;
        break;
      }
      const report = await compactLog(log, { segments: [segment.baseOffset], dropRanges: everyOtherBlock(segment.baseOffset, segment.nextOffset) }, pool);
      compactedBytes += report.bytesBefore;
      compactions++;
    } while (performance.now() - started < ms);
    const took = performance.now() - started;
    compactionMs += took;
    return took;
  };
  const idleFor = async (ms: number): Promise<void> => {
    samples = baseline;
    await sleep(ms);
  };
  try {
    await sleep(200); // warm-up, not measured
    baseline.length = 0;
    for (let pair = 0; pair < cfg.phasePairs; pair++) {
      ctx.progress(`latency: phase pair ${pair + 1}/${cfg.phasePairs}`);
      if (pair % 2 === 0) {
        await idleFor(await compactFor(cfg.phaseMs));
      } else {
        await idleFor(cfg.phaseMs);
        await compactFor(cfg.phaseMs);
      }
    }
  } finally {
    stop = true;
    await load;
  }
  try {
    check(failures === 0, `${failures} appends failed during the latency test`);
    check(!starved, 'the latency log ran out of segments to compact: some compaction phases were short');
    check(baseline.length > 100 && during.length > 100, `too few latency samples (baseline ${baseline.length}, during ${during.length})`);
    const p99Base = percentile(sortedCopy(baseline), 99);
    const p99During = percentile(sortedCopy(during), 99);
    const loadText = `${cfg.appendBatch} x ${BODY_BYTES} B every ${cfg.appendEveryMs} ms, open loop`;
    rows.push({ name: 'publish_p99_us_baseline', value: round(p99Base), unit: 'µs', note: `append to durable, fsync interval (default 5 ms); ${loadText}; ${baseline.length} samples` });
    rows.push({ name: 'publish_p99_us_during_compaction', value: round(p99During), unit: 'µs', note: `same, while compacting at the default throttle (${DEFAULT_COMPACTION_IO_BYTES_PER_SECOND / MIB} MiB/s); ${during.length} samples` });
    rows.push({
      name: 'publish_p99_ratio_during_compaction',
      value: round(p99During / p99Base, 2),
      unit: 'ratio',
      target: { op: '<=', value: 1.5 },
      note: `${cfg.phasePairs} pairs of ~${cfg.phaseMs} ms phases in ABBA order on the same log, ${compactions} compactions of ${cfg.segmentBytes / MIB} MiB segments`,
    });
    rows.push({ name: 'compaction_throttled_mb_per_s', value: round(compactedBytes / MB / (compactionMs / 1000), 1), unit: 'MB/s', note: 'input segment bytes / compaction phase time, default throttle (reads + writes)' });
    const tail = log.read(Math.max(log.startOffset, log.nextOffset - 10), { maxRecords: 10 });
    check(tail.at(-1)?.offset === log.nextOffset - 1, 'the latency log does not read back to its end');
  } finally {
    await log.close();
  }
}

const compactionSuite: Suite = {
  name: 'compaction',
  description: 'log compaction: rewrite throughput, space reclaimed, and append latency while compacting',
  run,
};

export default compactionSuite;
