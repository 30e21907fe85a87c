/**
 * The limits of this machine the peers' figures are read against: how many publish frames a
 * client process can push through loopback WebSocket into a bare uWebSockets.js server that only
 * counts them, and the disk's raw write bandwidth and fsync latency.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CeilingResult, CeilingTask } from '../fixtures/ceiling-client.js';
import { measureSequentialWrite, measureSyncLatencyUs } from '../harness/disk-probe.js';
import { percentile, sortedCopy } from '../harness/percentiles.js';
import { CpuWindow } from '../harness/process-cpu.js';
import type { BenchRow } from '../harness/results.js';
import { runJsonLineChild, startServerProcess } from '../harness/spawned.js';

const COUNT_SERVER = fileURLToPath(new URL('../fixtures/uws-count-server.js', import.meta.url));
const CEILING_CLIENT = fileURLToPath(new URL('../fixtures/ceiling-client.js', import.meta.url));
const MIB = 2 ** 20;

export interface CeilingConfig {
  durationMs: number;
  /** Events per publish frame: the same frames the engine's producer sends. */
  batch: number;
  payloadBytes: number;
  diskBytes: number;
  fsyncSamples: number;
}

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

interface Ceiling {
  framesPerS: number;
  mbPerS: number;
  frameBytes: number;
  serverCpuPct: number;
  clientCpuPct: number;
}

async function sendFrames(url: string, pid: number, cfg: CeilingConfig, batch: number): Promise<Ceiling> {
  const task: CeilingTask = { url, batch, payloadBytes: cfg.payloadBytes, durationMs: cfg.durationMs, inFlight: 64 };
  const window = new CpuWindow(pid);
  const result = await runJsonLineChild<CeilingResult>(`ceiling client (${batch}/frame)`, CEILING_CLIENT, task, { timeoutMs: cfg.durationMs + 60_000 }).result;
  const server = window.percent();
  return {
    framesPerS: (result.frames * 1000) / result.elapsedMs,
    mbPerS: result.bytes / 1e6 / (result.elapsedMs / 1000),
    frameBytes: result.frameBytes,
    serverCpuPct: server.pct,
    clientCpuPct: (100 * result.clientCpuMs) / result.elapsedMs,
  };
}

export async function measureCeiling(dir: string, cfg: CeilingConfig, progress: (message: string) => void, checkFailures: string[]): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  progress('ceiling: bare uWebSockets.js server counting frames');
  const server = await startServerProcess('uws count server', process.execPath, [COUNT_SERVER], {
    timeoutMs: 30_000,
    ready: (line) => (line.startsWith('{') ? (JSON.parse(line) as { port: number; backend: string; detail: string }) : undefined),
  });
  try {
    if (server.info.backend !== 'native') checkFailures.push(`ceiling: uWebSockets.js fell back to its JavaScript implementation (${server.info.detail})`);
    const url = `ws://127.0.0.1:${server.info.port}/ws`;
    const framed = await sendFrames(url, server.pid, cfg, cfg.batch);
    rows.push({
      name: 'ceiling_frames_per_s',
      value: round(framed.framesPerS),
      unit: 'frames/s',
      note: `publish frames of ${cfg.batch} x ${cfg.payloadBytes} B (${framed.frameBytes} B) from one ws client process, counted by a bare uWS server (${server.info.backend}); CPU: server ${round(framed.serverCpuPct)}%, client ${round(framed.clientCpuPct)}%`,
    });
    rows.push({ name: 'ceiling_events_per_s', value: round(framed.framesPerS * cfg.batch), unit: 'events/s', note: `ceiling_frames_per_s x ${cfg.batch} events per frame; ${round(framed.mbPerS)} MB/s` });
    const single = await sendFrames(url, server.pid, cfg, 1);
    rows.push({
      name: 'ceiling_1event_frames_per_s',
      value: round(single.framesPerS),
      unit: 'frames/s',
      note: `publish frames of one event (${single.frameBytes} B): the per-frame cost; CPU: server ${round(single.serverCpuPct)}%, client ${round(single.clientCpuPct)}%`,
    });
  } finally {
    await server.stop(5000);
  }

  progress(`disk: sequential write of ${cfg.diskBytes / MIB} MiB, ${cfg.fsyncSamples} x (4 KiB append + fsync)`);
  const disk = measureSequentialWrite(path.join(dir, 'disk-probe.bin'), cfg.diskBytes);
  rows.push({ name: 'disk_write_mb_per_s', value: round(disk.mbPerS, 1), unit: 'MB/s', note: `${cfg.diskBytes / MIB} MiB in 1 MiB writes + one fsync, on the brokers' filesystem` });
  const syncs = sortedCopy(measureSyncLatencyUs(path.join(dir, 'fsync-probe.bin'), cfg.fsyncSamples));
  rows.push({ name: 'disk_fsync_p50_us', value: round(percentile(syncs, 50)), unit: 'µs', note: `4 KiB append + fsync, ${syncs.length} samples: the floor of an always-fsync receipt` });
  rows.push({ name: 'disk_fsync_p99_us', value: round(percentile(syncs, 99)), unit: 'µs' });
  return rows;
}
