/**
 * `ensync-engine stats --admin-url <url> --token <token>`: a one-screen summary of a running engine,
 * from its management interface (health, summary, subscriptions, latency).
 */
import { EXIT_FAILURE, EXIT_OK, PROGRAM_NAME, usageError, type CliCommand, type CliContext } from '../command.js';

export const statsCommand: CliCommand = {
  name: 'stats',
  summary: 'print a one-screen summary of a running engine (from its admin port)',
  usage: statsUsage,
  run: runStats,
};

function statsUsage(): string {
  return [
    `Usage: ${PROGRAM_NAME} stats [--admin-url <url>] [--token <token>]`,
    '',
    'Reads the management interface of a running engine and prints its state on one screen.',
    '',
    '  --admin-url <url>  admin address (default http://127.0.0.1:9090; env ENSYNC_ADMIN_URL)',
    '  --token <token>    admin token (env ENSYNC_ADMIN_TOKEN)',
    '  -h, --help         print this help',
    '',
  ].join('\n');
}

/** The parts of GET /health printed here. */
interface HealthBody {
  status: string;
  version: string;
  uptimeSeconds: number;
  websocket: { backend: string; port: number; connections: number } | null;
  dataDirFreeBytes: number | null;
  work?: { active: Array<{ kind: string; shard: number; detail: string; done: number; total: number | null; unit: string }> };
}

interface Summary {
  published: number;
  delivered: number;
  connections: Record<string, number>;
}
interface SubscriptionRow {
  subscription: string;
  lagOffsets: number;
  inFlight: number;
  paused: boolean;
  deadLettered: number;
}
interface LatencyStage {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

const n = (value: number): string => Math.round(value).toLocaleString('en-US');

async function runStats(ctx: CliContext): Promise<number> {
  let values: { 'admin-url'?: string; token?: string; help?: boolean };
  try {
    values = readStatsArgs(ctx.argv);
  } catch (error) {
    return usageError(ctx, (error as Error).message);
  }
  if (values.help) {
    ctx.stdout(statsUsage());
    return EXIT_OK;
  }
  const base = (values['admin-url'] ?? ctx.env.ENSYNC_ADMIN_URL ?? 'http://127.0.0.1:9090').replace(/\/+$/, '');
  const token = values.token ?? ctx.env.ENSYNC_ADMIN_TOKEN;
  if (!token) return usageError(ctx, 'give the admin token with --token or ENSYNC_ADMIN_TOKEN');
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (res.status === 401) throw new Error('the admin token was refused');
    if (!res.ok && path !== '/health') throw new Error(`${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  };
  try {
    const health = await get<HealthBody>('/health');
    const head = [
      `EnSync engine ${health.version} at ${base}: ${health.status}, up ${n(health.uptimeSeconds)} s`,
      (health.websocket ? `  WebSocket: ${health.websocket.backend} uWebSockets.js on port ${health.websocket.port}, ${health.websocket.connections} connections` : '  WebSocket: not listening yet') +
        (health.dataDirFreeBytes === null ? '' : `; data dir free ${n(health.dataDirFreeBytes / 1024 / 1024)} MiB`),
      ...(health.work?.active ?? []).map((w) => `  running: ${w.kind} (shard ${w.shard}) ${w.detail}: ${n(w.done)}${w.total === null ? '' : ` of ${n(w.total)}`} ${w.unit}`),
    ];
    if (health.status === 'starting') {
      ctx.stdout([...head, ''].join('\n'));
      return EXIT_OK;
    }
    const [summary, subscriptions, latency] = await Promise.all([
      get<Summary>('/admin/summary'),
      get<SubscriptionRow[]>('/admin/subscriptions'),
      get<{ stages: Record<string, LatencyStage> }>('/admin/latency'),
    ]);
    const lines = [
      ...head,
      `  events: ${n(summary.published)} published, ${n(summary.delivered)} delivered`,
      `  clients: ${Object.entries(summary.connections).map(([status, count]) => `${count} ${status}`).join(', ')}`,
      '',
      '  subscription                          lag   in flight   dead letters   paused',
      ...subscriptions.map((s) => `  ${s.subscription.padEnd(34)} ${n(s.lagOffsets).padStart(6)} ${n(s.inFlight).padStart(11)} ${n(s.deadLettered).padStart(14)}   ${s.paused ? 'yes' : ''}`),
      ...(subscriptions.length === 0 ? ['  (none)'] : []),
      '',
      '  latency (µs)                count        p50        p99        max',
      ...Object.entries(latency.stages).map(([stage, s]) => `  ${stage.padEnd(26)} ${n(s.count).padStart(7)} ${n(s.p50).padStart(10)} ${n(s.p99).padStart(10)} ${n(s.max).padStart(10)}`),
      '',
    ];
    ctx.stdout(lines.join('\n'));
    return EXIT_OK;
  } catch (error) {
    ctx.stderr(`${PROGRAM_NAME}: error: cannot read ${base}: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
}

/**
 * `--admin-url <url>`, `--token <token>` (or `--name=value`), `-h`/`--help`. Read by hand: a token
 * may start with '-' (base64url), which a generic parser takes for another option.
 */
function readStatsArgs(argv: readonly string[]): { 'admin-url'?: string; token?: string; help?: boolean } {
  const values: { 'admin-url'?: string; token?: string; help?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      values.help = true;
      continue;
    }
    const match = /^--(admin-url|token)(?:=(.*))?$/s.exec(arg);
    if (!match) throw new Error(`unknown argument '${arg}'`);
    const name = match[1] as 'admin-url' | 'token';
    const value = match[2] ?? argv[++i];
    if (value === undefined || value === '') throw new Error(`--${name} needs a value`);
    values[name] = value;
  }
  return values;
}

