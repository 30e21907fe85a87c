/** GET /health: can the process serve, what it runs (WebSocket backend), and where its shards stand. */
import { statfs } from 'node:fs/promises';
import type { ShardStats } from '../engine/shard-messages.js';
import type { WorkBoardView } from '../observability/work-progress.js';
import type { AdminRoute } from './admin-server.js';

export interface HealthReport {
  /** `starting`: the engine is still opening (recovering its logs); see `work`. */
  status: 'ok' | 'starting' | 'failed';
  uptimeSeconds: number;
  version: string;
  dataDir: string;
  /** Null until the client port listens. */
  websocket: { backend: 'native' | 'fallback'; detail: string; port: number; tls: boolean; connections: number } | null;
  shards: Array<Pick<ShardStats, 'shard' | 'nextOffset' | 'subscriptions' | 'scheduledPending'>>;
  /** Free space of the data directory's file system (bytes available to the engine's user). */
  dataDirFreeBytes: number | null;
  /** Long work running (recovery, replays, compaction) with its progress, and the latest finished. */
  work: WorkBoardView;
  /** Why the status is failed. */
  error?: string;
}

export interface HealthSource {
  version: string;
  dataDir: string;
  startedAtMs: number;
  /** The engine's shards (null while it opens); rejects when the engine cannot serve (closed, a shard unavailable). */
  shardStats: (() => Promise<ShardStats[]>) | null;
  websocket(): HealthReport['websocket'];
  work(): WorkBoardView;
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
    dataDirFreeBytes: null,
    work: source.work(),
  };
  try {
    const fsStats = await statfs(source.dataDir);
    report.dataDirFreeBytes = fsStats.bavail * fsStats.bsize;
  } catch {
    // Reported as null: health still answers when the file system cannot be asked.
  }
  if (!source.shardStats) {
    report.status = 'starting';
    return report;
  }
  try {
    report.shards = (await source.shardStats()).map(({ shard, nextOffset, subscriptions, scheduledPending }) => ({ shard, nextOffset, subscriptions, scheduledPending }));
  } catch (error) {
    report.status = 'failed';
    report.error = error instanceof Error ? error.message : String(error);
  }
  return report;
}

/** `source` is read on every request: the process fills in shardStats and websocket as they open. */
export function healthRoute(source: HealthSource): AdminRoute {
  return {
    method: 'GET',
    path: '/health',
    public: true,
    handle: async () => {
      const report = await buildHealthReport(source);
      // 503 (starting, failed) lets load balancers and probes act on status without parsing the body.
      return { status: report.status === 'ok' ? 200 : 503, body: report };
    },
  };
}
