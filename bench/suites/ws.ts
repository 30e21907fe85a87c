import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadResult, LoadTask } from '../fixtures/ws-load-client.js';
import { trackChild } from '../harness/child-processes.js';
import { percentile, sortedCopy } from '../harness/percentiles.js';
import type { BenchRow, Suite, SuiteContext, SuiteOutput } from '../harness/results.js';
import { registerBenchClients } from '../harness/bench-clients.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const LOAD_CLIENT = fileURLToPath(new URL('../fixtures/ws-load-client.js', import.meta.url));

interface WsBenchConfig {
  publishMs: number;
  latencyMs: number;
  idleConnections: number;
}
const FULL: WsBenchConfig = { publishMs: 8000, latencyMs: 8000, idleConnections: 10_000 };
const QUICK: WsBenchConfig = { publishMs: 3000, latencyMs: 3000, idleConnections: 2000 };

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

/** The engine as users run it: its own process, on a scratch data directory, free ports. */
async function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'start', '--data-dir', dataDir, '--port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  trackChild(child);
  const port = await new Promise<number>((resolve, reject) => {
    let rest = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const entry = JSON.parse(line) as { msg: string; port?: number };
        if (entry.msg === 'client port listening') resolve(entry.port!);
      }
    });
    child.once('exit', (code) => reject(new Error(`the engine exited (${code}) before listening`)));
  });
  return { child, url: `ws://127.0.0.1:${port}/ws` };
}

/** Run a load client; `onReady` fires when it prints its ready line (subscribe, idle). */
function runClient(task: LoadTask, onReady?: (child: ChildProcess) => void): Promise<LoadResult> {
  const child = spawn(process.execPath, [LOAD_CLIENT, JSON.stringify(task)], { stdio: ['pipe', 'pipe', 'inherit'] });
  trackChild(child);
  return new Promise((resolve, reject) => {
    let rest = '';
    let result: LoadResult | null = null;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const message = JSON.parse(line) as LoadResult & { ready?: boolean };
        if (message.ready) onReady?.(child);
        else result = message;
      }
    });
    child.once('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`load client (${task.mode}) exited with ${code}`))));
  });
}

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

async function latency(server: { url: string; clientId: string; secretKey: string }, rate: number, durationMs: number, label: string): Promise<number[]> {
  const base = { url: server.url, clientId: server.clientId, secretKey: server.secretKey, type: `bench/latency-${label}` };
  const expected = Math.floor((rate * durationMs) / 1000);
  let publisher: Promise<LoadResult> | null = null;
  const subscriber = runClient({ ...base, mode: 'subscribe', subscription: `latency-${label}`, expect: expected, durationMs: durationMs + 30_000 }, (child) => {
    publisher = runClient({ ...base, mode: 'rate', rate, durationMs });
    publisher.finally(() => child.stdin!.end()).catch(() => undefined);
  });
  const received = await subscriber;
  const sent = await publisher!;
  if (sent.errors > 0 || received.latenciesUs!.length < sent.sent!) {
    throw new Error(`latency at ${label}: ${sent.sent} sent, ${sent.errors} refused, ${received.latenciesUs!.length} delivered`);
  }
  // The first second warms connections and the JIT: it is left out.
  return received.latenciesUs!.slice(Math.min(rate, Math.floor(received.latenciesUs!.length / 4)));
}

async function run(ctx: SuiteContext): Promise<SuiteOutput> {
  const cfg = ctx.quick ? QUICK : FULL;
  const rows: BenchRow[] = [];
  const checkFailures: string[] = [];
  const dataDir = path.join(ctx.dir, 'data');
  const [latencyClient, ...publishers] = registerBenchClients(dataDir, ['bench-latency', 'bench-publisher-0', 'bench-publisher-1']);
  // A client holds at most 100 connections (the server's default): idle connections come from many clients.
  const idleClients = registerBenchClients(dataDir, Array.from({ length: Math.ceil(cfg.idleConnections / 50) }, (_, i) => `bench-idle-${i}`));
  const started = await startServer(dataDir);
  const server = { ...started, ...latencyClient! };
  try {
    ctx.progress('publish throughput: 2 client processes x 4 connections, 2 frames of 100 events in flight each');
    const published = await Promise.all(
      publishers.map((publisher) => runClient({ mode: 'publish', url: server.url, ...publisher, connections: 4, window: 2, batch: 100, durationMs: cfg.publishMs })),
    );
    const confirmed = published.reduce((n, r) => n + r.confirmed!, 0);
    const errors = published.reduce((n, r) => n + r.errors, 0);
    if (errors > 0) checkFailures.push(`publish: ${errors} events refused`);
    const elapsed = Math.max(...published.map((r) => r.elapsedMs));
    rows.push({
      name: 'publish_per_s',
      value: round((confirmed * 1000) / elapsed),
      unit: 'events/s',
      note: `${confirmed} events confirmed durable in ${round(elapsed)} ms; 256 B payloads, 2 client processes (one client each) x 4 connections x 2 frames of 100 in flight, fsync interval`,
    });

    for (const rate of [5000, 20000]) {
      const label = `${rate / 1000}k`;
      ctx.progress(`latency at ${rate} events/s (publisher and subscriber in their own processes)`);
      const sample = sortedCopy(await latency(server, rate, cfg.latencyMs, label));
      if (sample.length === 0) {
        checkFailures.push(`latency at ${label}: nothing delivered`);
        continue;
      }
      const note = `${sample.length} events, publish (client) -> delivered (other client), ${rate} events/s for ${cfg.latencyMs} ms; p50 ${round(percentile(sample, 50))} µs, p99.9 ${round(percentile(sample, 99.9))} µs, max ${round(sample.at(-1)!)} µs`;
      if (rate === 5000) rows.push({ name: 'p50_us_at_5k', value: round(percentile(sample, 50)), unit: 'µs', note });
      rows.push({ name: `p99_us_at_${label}`, value: round(percentile(sample, 99)), unit: 'µs', note });
    }

    ctx.progress(`${cfg.idleConnections} idle authenticated connections`);
    const before = rssMb(server.child.pid!);
    const idleProcesses: ChildProcess[] = [];
    let ready = 0;
    let allReady!: () => void;
    const readyPromise = new Promise<void>((resolve) => (allReady = resolve));
    const idle = [0, 1].map((half) =>
      runClient({ mode: 'idle', url: server.url, ...idleClients[0]!, clients: idleClients.filter((_, i) => i % 2 === half), connections: cfg.idleConnections / 2 }, (child) => {
        idleProcesses.push(child);
        if (++ready === 2) allReady();
      }),
    );
    await Promise.race([readyPromise, Promise.all(idle)]);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const withIdle = rssMb(server.child.pid!);
    for (const child of idleProcesses) child.stdin!.end();
    const idleResults = await Promise.all(idle);
    const connected = idleResults.reduce((n, r) => n + r.connections!, 0);
    if (connected !== cfg.idleConnections) checkFailures.push(`idle: ${connected} of ${cfg.idleConnections} connections authenticated`);
    rows.push({
      name: cfg.idleConnections === 10_000 ? 'idle_10k_rss_mb' : `idle_${cfg.idleConnections}_rss_mb`,
      value: round(withIdle, 1),
      unit: 'MB',
      note: `server RSS with ${connected} idle authenticated connections (${round(before, 1)} MB before: ${round(((withIdle - before) * 1024) / Math.max(1, connected), 1)} KB per connection)`,
    });
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((resolve) => server.child.once('exit', resolve));
  }
  return { rows, checkFailures };
}

const wsSuite: Suite = {
  name: 'ws',
  description: 'the WebSocket front end over loopback, clients in their own processes: publish throughput, latency at fixed rates, idle connections',
  run,
};

export default wsSuite;
