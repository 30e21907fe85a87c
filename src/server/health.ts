/** GET /health: can the process serve, what it runs (WebSocket backend), and where its shards stand. */
import type { ShardStats } from '../engine/shard-messages.js';
import type { AdminRoute } from './admin-server.js';

export interface HealthReport {
  status: 'ok' | 'failed';
  uptimeSeconds: number;
  version: string;
  dataDir: string;
  websocket: { backend: 'native' | 'fallback'; detail: string; port: number; tls: boolean; connections: number };
  shards: Array<Pick<ShardStats, 'shard' | 'nextOffset' | 'subscriptions' | 'scheduledPending'>>;
  /** Why the status is failed. */
  error?: string;
}

export interface HealthSource {
  version: string;
  dataDir: string;
  startedAtMs: number;
  /** The engine's shards; rejects when the engine cannot serve (closed, a shard unavailable). */
  shardStats(): Promise<ShardStats[]>;
  websocket(): HealthReport['websocket'];
  now?: () => number;
}

export async function buildHealthReport(source: HealthSource): Promise<HealthReport> {
  const now = source.now ?? Date.now;
  const report: HealthReport = {
    status: 'ok',
    uptimeSeconds: Math.max(0, Math.round(now() - source.startedAtMs)) / 1000,
    version: source.version,
    dataDir: source.dataDir,
    websocket: source.websocket(),
    shards: [],
  };
  try {
    report.shards = (await source.shardStats()).map(({ shard, nextOffset, subscriptions, scheduledPending }) => ({ shard, nextOffset, subscriptions, scheduledPending }));
  } catch (error) {
    report.status = 'failed';
    report.error = error instanceof Error ? error.message : String(error);
  }
  return report;
}

export function healthRoute(source: HealthSource): AdminRoute {
  return {
    method: 'GET',
    path: '/health',
    public: true,
    handle: async () => {
      const report = await buildHealthReport(source);
      // 503 lets load balancers and probes act on status without parsing the body.
      return { status: report.status === 'ok' ? 200 : 503, body: report };
    },
  };
}
