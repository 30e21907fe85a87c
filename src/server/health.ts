/** GET /health: is the process able to serve, and where its storage log stands. */
import type { AdminRoute } from './admin-server.js';

/** The parts of the storage log that health reports; the real `Log` satisfies this structurally. */
export interface StorageStatus {
  readonly state: 'open' | 'failed' | 'closed';
  readonly startOffset: number;
  readonly nextOffset: number;
  readonly durableOffset: number;
  readonly segmentCount: number;
  readonly sizeBytes: number;
}

export interface HealthReport {
  status: 'ok' | 'failed';
  uptimeSeconds: number;
  version: string;
  dataDir: string;
  storage: {
    state: StorageStatus['state'];
    startOffset: number;
    nextOffset: number;
    durableOffset: number;
    segments: number;
    bytes: number;
  };
}

export interface HealthSource {
  version: string;
  dataDir: string;
  startedAtMs: number;
  storage: StorageStatus;
  now?: () => number;
}

export function buildHealthReport(source: HealthSource): HealthReport {
  const now = source.now ?? Date.now;
  const log = source.storage;
  return {
    status: log.state === 'open' ? 'ok' : 'failed',
    uptimeSeconds: Math.max(0, Math.round(now() - source.startedAtMs)) / 1000,
    version: source.version,
    dataDir: source.dataDir,
    storage: {
      state: log.state,
      startOffset: log.startOffset,
      nextOffset: log.nextOffset,
      durableOffset: log.durableOffset,
      segments: log.segmentCount,
      bytes: log.sizeBytes,
    },
  };
}

export function healthRoute(source: HealthSource): AdminRoute {
  return {
    method: 'GET',
    path: '/health',
    handle: () => {
      const report = buildHealthReport(source);
      // 503 lets load balancers and probes act on status without parsing the body.
      return { status: report.status === 'ok' ? 200 : 503, body: report };
    },
  };
}
