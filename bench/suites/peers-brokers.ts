/**
 * The brokers `npm run bench -- peers` compares, each started by the bench on a free port and a
 * scratch directory and stopped after its workloads: this engine (fsync interval and always),
 * NATS JetStream (file storage, one replica) and Redis Streams (AOF, everysec and always).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PeerEndpoint } from '../fixtures/peer-task.js';
import { freePort } from '../harness/free-port.js';
import { startServerProcess, type ServerProcess } from '../harness/spawned.js';
import { registerBenchClients } from '../harness/bench-clients.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 30_000;

export type BrokerName = 'ours_interval' | 'ours_always' | 'nats' | 'redis_everysec' | 'redis_always';

export interface RunningBroker {
  name: BrokerName;
  /** The server process, whose CPU time the suite samples. */
  pid: number;
  /** Producer and consumer processes connect as different clients (the engine bounds unconfirmed publishes per client). */
  producer: PeerEndpoint;
  consumer: PeerEndpoint;
  version: string;
  stop(): Promise<void>;
}

export interface BrokerSpec {
  name: BrokerName;
  /** What a publish confirmation promises with this setting: how much an OS crash can lose. */
  durability: string;
  start(dir: string, programs: Map<string, string>): Promise<RunningBroker>;
}

/** The part of the engine's options the bench decides. */
export interface OursOptions {
  /** Events per publish frame at most (the producer's window is split into frames of this size). */
  maxFrameEvents: number;
}

function versionOf(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 10_000 }).trim().split('\n')[0]!;
  } catch (error) {
    return `unknown (${String(error)})`;
  }
}

function withStop(name: BrokerName, server: ServerProcess<unknown>, endpoints: { producer: PeerEndpoint; consumer: PeerEndpoint }, version: string): RunningBroker {
  return { name, pid: server.pid, ...endpoints, version, stop: () => server.stop(STOP_GRACE_MS) };
}

function oursSpec(fsync: 'interval' | 'always', options: OursOptions): BrokerSpec {
  const name: BrokerName = fsync === 'interval' ? 'ours_interval' : 'ours_always';
  return {
    name,
    durability:
      fsync === 'interval'
        ? 'receipt after the group-commit fsync (within 5 ms): nothing confirmed is lost'
        : 'receipt after an fsync of each append batch: nothing confirmed is lost',
    async start(dir) {
      const [producer, consumer] = registerBenchClients(dir, ['bench-producer', 'bench-consumer']);
      const server = await startServerProcess(name, process.execPath, [CLI, 'start', '--data-dir', dir, '--port', '0', '--admin-port', '0', '--fsync', fsync], {
        timeoutMs: READY_TIMEOUT_MS,
        ready: (line) => {
          if (!line.startsWith('{')) return undefined;
          const entry = JSON.parse(line) as { msg?: string; port?: number };
          return entry.msg === 'client port listening' ? entry.port : undefined;
        },
      });
      const address = `ws://127.0.0.1:${server.info}/ws`;
      const endpoint = (client: { clientId: string; secretKey: string }): PeerEndpoint => ({ broker: 'ours', address, ...client, maxFrameEvents: options.maxFrameEvents });
      const pkg = JSON.parse(fs.readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string };
      return withStop(name, server, { producer: endpoint(producer!), consumer: endpoint(consumer!) }, `ensync-node-engine ${pkg.version}, node ${process.version}`);
    },
  };
}

const natsSpec: BrokerSpec = {
  name: 'nats',
  durability: 'PubAck once in the page cache; NATS 2.9 fsyncs its stream files only every 2 minutes (sync_interval, not configurable before 2.10): an OS crash can lose up to 2 minutes',
  async start(dir, programs) {
    const binary = programs.get('nats-server')!;
    const port = await freePort();
    fs.mkdirSync(dir, { recursive: true });
    const server = await startServerProcess('nats-server', binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {
      timeoutMs: READY_TIMEOUT_MS,
      ready: (line) => (line.includes('Server is ready') ? port : undefined),
    });
    const endpoint: PeerEndpoint = { broker: 'nats', address: `127.0.0.1:${port}` };
    return withStop('nats', server, { producer: endpoint, consumer: endpoint }, versionOf(binary, ['--version']));
  },
};

function redisSpec(appendfsync: 'everysec' | 'always'): BrokerSpec {
  const name: BrokerName = appendfsync === 'everysec' ? 'redis_everysec' : 'redis_always';
  return {
    name,
    durability:
      appendfsync === 'everysec'
        ? 'XADD answered once in the AOF buffer; the AOF is fsynced every second: an OS crash can lose up to 1 s'
        : 'XADD answered after the AOF write and fsync of its event-loop cycle (one fsync per cycle, shared by the pipelined commands): nothing confirmed is lost',
    async start(dir, programs) {
      const binary = programs.get('redis-server')!;
      const port = await freePort();
      fs.mkdirSync(dir, { recursive: true });
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', appendfsync, '--save', '', '--daemonize', 'no', '--protected-mode', 'no', '--logfile', ''];
      const server = await startServerProcess(name, binary, args, {
        timeoutMs: READY_TIMEOUT_MS,
        ready: (line) => (line.includes('Ready to accept connections') ? port : undefined),
      });
      const endpoint: PeerEndpoint = { broker: 'redis', address: `127.0.0.1:${port}` };
      return withStop(name, server, { producer: endpoint, consumer: endpoint }, versionOf(binary, ['--version']));
    },
  };
}

/** In the order they run and appear in the table. */
export function brokerSpecs(options: OursOptions): BrokerSpec[] {
  return [oursSpec('interval', options), oursSpec('always', options), natsSpec, redisSpec('everysec'), redisSpec('always')];
}

export const DEBIAN_PROGRAMS = [
  { command: 'nats-server', pkg: 'nats-server' },
  { command: 'redis-server', pkg: 'redis-server' },
];

export function brokerDir(root: string, name: BrokerName): string {
  return path.join(root, name);
}
