/**
 * What operators watch: Prometheus metrics, latency histograms, subscriptions, a summary for the
 * dashboard, and the dashboard page itself (public: it asks for the token and sends it with every
 * data request).
 */
import type { Engine } from '../engine/engine.js';
import { PROMETHEUS_CONTENT_TYPE } from '../observability/prometheus.js';
import type { ClientStore } from '../registry/client-store.js';
import type { AdminRoute } from './admin-server.js';
import type { ClientSessions, ClientStatus } from './client-sessions.js';
import { DASHBOARD_HTML } from './dashboard-page.js';
import { renderLatency } from './latency-route.js';
import { renderMetrics } from './metrics-route.js';

export interface MonitoringContext {
  engine: Engine;
  store: ClientStore;
  sessions: ClientSessions;
}

/** Registered clients by status (a client that never connected counts as disconnected). */
function connectionsByStatus(store: ClientStore, sessions: ClientSessions): Record<ClientStatus, number> {
  const counts: Record<ClientStatus, number> = { active: 0, idle: 0, disconnected: 0 };
  const now = Date.now();
  for (const record of store.list()) counts[sessions.get(record.id, now)?.status ?? 'disconnected']++;
  return counts;
}

export function monitoringRoutes({ engine, store, sessions }: MonitoringContext): AdminRoute[] {
  return [
    { method: 'GET', path: '/', public: true, handle: () => ({ status: 200, text: DASHBOARD_HTML, contentType: 'text/html; charset=utf-8' }) },
    {
      method: 'GET',
      path: '/metrics',
      handle: async () => ({
        status: 200,
        text: renderMetrics(await engine.shardStats(), { connectionsByStatus: connectionsByStatus(store, sessions), compaction: engine.compaction.totals }),
        contentType: PROMETHEUS_CONTENT_TYPE,
      }),
    },
    {
      method: 'GET',
      path: '/admin/latency',
      handle: async (request) => ({ status: 200, body: renderLatency(await engine.latencyNow(request.query.get('reset') === 'true')) }),
    },
    {
      method: 'GET',
      path: '/admin/subscriptions',
      handle: async () => {
        const rows = (await engine.shardStats()).flatMap((stats) => stats.metrics.subscriptions.map((s) => ({ shard: stats.shard, ...s })));
        // One row per subscription, summed over its shards.
        const bySubscription = new Map<string, { subscription: string; lagOffsets: number; inFlight: number; paused: boolean; deadLettered: number; shards: number }>();
        for (const row of rows) {
          const entry = bySubscription.get(row.subscription) ?? { subscription: row.subscription, lagOffsets: 0, inFlight: 0, paused: false, deadLettered: 0, shards: 0 };
          entry.lagOffsets += row.lagOffsets;
          entry.inFlight += row.inFlight;
          entry.paused ||= row.paused;
          entry.deadLettered += row.deadLettered;
          entry.shards++;
          bySubscription.set(row.subscription, entry);
        }
        return { status: 200, body: [...bySubscription.values()] };
      },
    },
    {
      method: 'GET',
      path: '/admin/summary',
      handle: async () => {
        const stats = await engine.shardStats();
        let published = 0;
        let delivered = 0;
        for (const shard of stats) {
          for (const counts of shard.metrics.eventTypes) {
            published += counts.published;
            delivered += counts.delivered;
          }
        }
        const subscriptions = new Map<string, { subscription: string; lag: number; inFlight: number; paused: boolean }>();
        for (const shard of stats) {
          for (const s of shard.metrics.subscriptions) {
            const entry = subscriptions.get(s.subscription) ?? { subscription: s.subscription, lag: 0, inFlight: 0, paused: false };
            entry.lag += s.lagOffsets;
            entry.inFlight += s.inFlight;
            entry.paused ||= s.paused;
            subscriptions.set(s.subscription, entry);
          }
        }
        return {
          status: 200,
          body: { at: Date.now(), published, delivered, connections: connectionsByStatus(store, sessions), subscriptions: [...subscriptions.values()] },
        };
      },
    },
  ];
}
