import fs from 'node:fs';
import path from 'node:path';
import { measureSequentialWrite, measureSyncLatencyUs } from '../harness/disk-probe.js';
import { percentile, sortedCopy } from '../harness/percentiles.js';
import type { BenchRow, Suite, SuiteContext, SuiteOutput } from '../harness/results.js';
import { measureAlwaysConcurrent, measureAlwaysSerial, measureIntervalAppend, measureSequentialRead } from './storage-append.js';
import { buildLog, runCrashWriter, timeOpen } from './storage-reopen.js';
import { makePayloadPool } from './storage-workload.js';

const MB = 1e6;
const MIB = 2 ** 20;
const BODY_BYTES = 256;
/** A full scan projected to take longer than this runs on the small (1M-record) log instead. */
const FULL_SCAN_BUDGET_MS = 60_000;
/** Below this many scanned bytes the crash reopen is too short to project a full scan from. */
const MIN_BYTES_FOR_SCAN_RATE = 16 * MIB;
const SMALL_REOPEN_RECORDS = 1_000_000;

interface StorageConfig {
  diskBytes: number;
  fsyncSamples: number;
  intervalRecords: number;
  intervalBatch: number;
  intervalInFlight: number;
  alwaysMs: number;
  reopenRecords: number;
  crashAppendMs: number;
}

const FULL: StorageConfig = {
  diskBytes: 1024 * MIB,
  fsyncSamples: 300,
  intervalRecords: 3_000_000,
  intervalBatch: 1000,
  intervalInFlight: 16,
  alwaysMs: 3000,
  reopenRecords: 10_000_000,
  crashAppendMs: 2000,
};

const QUICK: StorageConfig = {
  ...FULL,
  diskBytes: 512 * MIB,
  intervalRecords: 500_000,
  alwaysMs: 1500,
  reopenRecords: SMALL_REOPEN_RECORDS,
};

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

async function run(ctx: SuiteContext): Promise<SuiteOutput> {
  const cfg = ctx.quick ? QUICK : FULL;
  const rows: BenchRow[] = [];
  const checkFailures: string[] = [];
  const check = (ok: boolean, failure: string): void => {
    if (!ok) checkFailures.push(failure);
  };
  const pool = makePayloadPool(4096, BODY_BYTES);
  const sub = (name: string): string => path.join(ctx.dir, name);

  // Disk baseline, measured on the same filesystem as the logs below.
  ctx.progress(`disk: sequential write of ${cfg.diskBytes / MIB} MiB`);
  const disk = measureSequentialWrite(sub('disk-probe.bin'), cfg.diskBytes);
  rows.push({ name: 'disk_write_mb_per_s', value: round(disk.mbPerS, 1), unit: 'MB/s', note: `${disk.bytes / MIB} MiB in 1 MiB writeSync + final fsync` });
  ctx.progress(`disk: ${cfg.fsyncSamples} x (4 KiB append + fsync)`);
  const syncs = sortedCopy(measureSyncLatencyUs(sub('fsync-probe.bin'), cfg.fsyncSamples));
  rows.push({ name: 'disk_fsync_p50_us', value: round(percentile(syncs, 50)), unit: 'µs', note: `4 KiB append + fsync, ${syncs.length} samples` });
  rows.push({ name: 'disk_fsync_p99_us', value: round(percentile(syncs, 99)), unit: 'µs' });

  ctx.progress(`append interval: ${cfg.intervalRecords} records, batches of ${cfg.intervalBatch}, ${cfg.intervalInFlight} in flight`);
  const interval = await measureIntervalAppend(sub('interval'), pool, {
    records: cfg.intervalRecords,
    batchSize: cfg.intervalBatch,
    maxInFlight: cfg.intervalInFlight,
  });
  const logMbPerS = interval.result.logBytes / MB / (interval.result.elapsedMs / 1000);
  rows.push({
    name: 'append_interval_records_per_s',
    value: round(interval.result.recordsPerS),
    unit: 'records/s',
    target: { op: '>=', value: 500_000 },
    note: `${interval.result.records} x ${BODY_BYTES} B, batch ${cfg.intervalBatch}, ${cfg.intervalInFlight} in flight`,
  });
  rows.push({ name: 'log_write_mb_per_s', value: round(logMbPerS, 1), unit: 'MB/s', note: '.log bytes appended / time' });
  rows.push({ name: 'log_write_ratio_of_disk', value: round(logMbPerS / disk.mbPerS, 3), unit: 'ratio', note: 'log_write_mb_per_s / disk_write_mb_per_s' });

  ctx.progress('read: whole interval log, pages of 1000');
  try {
    const read = measureSequentialRead(interval.log, 1000);
    check(read.records === interval.result.records, `read returned ${read.records} records, ${interval.result.records} were appended`);
    rows.push({
      name: 'read_records_per_s',
      value: round(read.recordsPerS),
      unit: 'records/s',
      target: { op: '>=', value: 1_000_000 },
      note: `${read.records} records, read(from, {maxRecords: 1000}) right after writing`,
    });
  } finally {
    await interval.log.close();
  }
  fs.rmSync(sub('interval'), { recursive: true, force: true });

  ctx.progress(`append always: batches of 100, one at a time, ${cfg.alwaysMs} ms`);
  const serial = await measureAlwaysSerial(sub('always-serial'), pool, { batchSize: 100, durationMs: cfg.alwaysMs });
  const serialLatency = sortedCopy(serial.latenciesUs);
  rows.push({ name: 'append_always_batch100_records_per_s', value: round(serial.recordsPerS), unit: 'records/s', note: `${serial.records} records, 1 batch awaited at a time` });
  rows.push({ name: 'append_always_fsync_p50_us', value: round(percentile(serialLatency, 50)), unit: 'µs', note: `per awaited batch (write + fsync), ${serialLatency.length} batches` });
  rows.push({ name: 'append_always_fsync_p99_us', value: round(percentile(serialLatency, 99)), unit: 'µs' });
  fs.rmSync(sub('always-serial'), { recursive: true, force: true });

  ctx.progress(`append always: batches of 100, 8 in flight, ${cfg.alwaysMs} ms`);
  const concurrent = await measureAlwaysConcurrent(sub('always-c8'), pool, { batchSize: 100, concurrency: 8, durationMs: cfg.alwaysMs });
  rows.push({ name: 'append_always_batch100_concurrent8_records_per_s', value: round(concurrent.recordsPerS), unit: 'records/s', note: `${concurrent.records} records, 8 batches in flight` });
  fs.rmSync(sub('always-c8'), { recursive: true, force: true });

  await measureReopen(ctx, cfg, pool, rows, check);
  return { rows, checkFailures };
}

async function measureReopen(
  ctx: SuiteContext,
  cfg: StorageConfig,
  pool: readonly Buffer[],
  rows: BenchRow[],
  check: (ok: boolean, failure: string) => void,
): Promise<void> {
  const dir = path.join(ctx.dir, 'reopen');
  ctx.progress(`reopen: building a ${cfg.reopenRecords}-record log (fsync never, batches of 10000)`);
  const built = await buildLog(dir, pool, cfg.reopenRecords);
  rows.push({ name: 'records_for_reopen', value: cfg.reopenRecords, unit: 'records', note: `${round(built.sizeBytes / MIB)} MiB of .log files` });
  rows.push({ name: 'append_never_batch10000_records_per_s', value: round(built.appendRecordsPerS), unit: 'records/s', note: `building the reopen log; close (final fsync) took ${round(built.closeMs)} ms` });

  ctx.progress('reopen: clean');
  const clean = await timeOpen(dir);
  const cleanReport = clean.log.recovery;
  check(clean.log.nextOffset === cfg.reopenRecords, `clean reopen: nextOffset ${clean.log.nextOffset}, expected ${cfg.reopenRecords}`);
  check(cleanReport.clean, 'clean reopen after close() reported recovery.clean = false');
  await clean.log.close();
  rows.push({
    name: 'reopen_clean_10m_ms',
    value: round(clean.ms, 1),
    unit: 'ms',
    target: { op: '<', value: 1000 },
    note: `Log.open of ${cfg.reopenRecords} records after close(); scanned ${cleanReport.scannedBytes} B`,
  });

  ctx.progress(`reopen: crash writer appends (fsync interval) for ${cfg.crashAppendMs} ms, then SIGKILL`);
  const writer = await runCrashWriter(dir, cfg.crashAppendMs);
  ctx.progress('reopen: after crash');
  const crash = await timeOpen(dir);
  const crashReport = crash.log.recovery;
  const crashLogBytes = crash.log.sizeBytes;
  const recordsAfterCrash = crash.log.nextOffset;
  // The recovered tail must be readable (CRC-checked) up to the recovered end.
  const tail = crash.log.read(Math.max(crash.log.startOffset, recordsAfterCrash - 1000), { maxRecords: 1000 });
  await crash.log.close();
  check(tail.length > 0 && tail[tail.length - 1]!.offset === recordsAfterCrash - 1, `after crash recovery the last readable offset is ${tail.at(-1)?.offset}, nextOffset is ${recordsAfterCrash}`);
  check(!crashReport.clean, 'reopen after SIGKILL reported recovery.clean = true');
  check(recordsAfterCrash >= writer.confirmedEnd, `reopen after crash: nextOffset ${recordsAfterCrash} < ${writer.confirmedEnd} confirmed to the writer (confirmed records lost)`);
  rows.push({ name: 'reopen_crash_ms', value: round(crash.ms, 1), unit: 'ms', note: `child appended ${recordsAfterCrash - writer.openedAt} records before SIGKILL` });
  rows.push({
    name: 'reopen_crash_scanned_bytes',
    value: crashReport.scannedBytes,
    unit: 'bytes',
    note: `${round((100 * crashReport.scannedBytes) / crashLogBytes, 2)}% of ${crashLogBytes} B of .log; truncated ${crashReport.truncatedBytes} B`,
  });
  rows.push({
    name: 'reopen_crash_confirmed_records_lost',
    value: Math.max(0, writer.confirmedEnd - recordsAfterCrash),
    unit: 'records',
    target: { op: '<=', value: 0 },
    note: 'confirmed to the child but missing after recovery',
  });

  // A full scan of the big log only if it fits the time budget, projected from the crash scan's rate.
  const projectedMs = crashReport.scannedBytes >= MIN_BYTES_FOR_SCAN_RATE ? (crashLogBytes * crash.ms) / crashReport.scannedBytes : Infinity;
  let scanDir = dir;
  let scanRecords = recordsAfterCrash;
  if (cfg.reopenRecords > SMALL_REOPEN_RECORDS && projectedMs >= FULL_SCAN_BUDGET_MS) {
    ctx.progress(`full scan: projected ${Number.isFinite(projectedMs) ? round(projectedMs) + ' ms' : 'unknown'}; building a ${SMALL_REOPEN_RECORDS}-record log instead`);
    scanDir = path.join(ctx.dir, 'reopen-small');
    await buildLog(scanDir, pool, SMALL_REOPEN_RECORDS);
    scanRecords = SMALL_REOPEN_RECORDS;
  }
  ctx.progress(`reopen: full scan of ${scanRecords} records (checkpoint deleted)`);
  fs.rmSync(path.join(scanDir, 'checkpoint'));
  const full = await timeOpen(scanDir);
  const fullReport = full.log.recovery;
  const fullLogBytes = full.log.sizeBytes;
  const recordsAfterScan = full.log.nextOffset;
  await full.log.close();
  check(recordsAfterScan === scanRecords, `full-scan reopen: nextOffset ${recordsAfterScan}, expected ${scanRecords}`);
  check(fullReport.scannedBytes >= fullLogBytes, `full-scan reopen scanned ${fullReport.scannedBytes} B of ${fullLogBytes} B without a checkpoint`);
  rows.push({ name: 'reopen_full_scan_ms', value: round(full.ms, 1), unit: 'ms', note: `no checkpoint: scans and CRC-checks every record` });
  rows.push({ name: 'reopen_full_scan_scanned_bytes', value: fullReport.scannedBytes, unit: 'bytes', note: `of ${fullLogBytes} B of .log` });
  rows.push({ name: 'records_for_full_scan', value: scanRecords, unit: 'records' });
}

const storageSuite: Suite = {
  name: 'storage',
  description: 'append/read/reopen throughput of native-free-storage against the raw disk',
  run,
};

export default storageSuite;
