import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { monitoringRoutes } from '../../src/server/monitoring-routes.js';
import { startAdminServer, type AdminServer } from '../../src/server/admin-server.js';
import { DeliveryRecorder, waitFor } from '../helpers/engine-deliveries.js';
import { WsEngineHarness } from '../helpers/ws-engine.js';
import { RawClient } from './ws/raw-client.js';

interface ParsedFamily {
  name: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: Record<string, string> }>;
}
// The parser ships CommonJS without type declarations.
const parsePrometheusText = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

const TOKEN = 'monitoring-test-token-0123456789';
const harness = new WsEngineHarness();
let admin: AdminServer | null = null;
afterEach(async () => {
  await admin?.close();
  admin = null;
  await harness.cleanup();
});

describe('monitoring routes', () => {
  it('serves metrics (parsed by a Prometheus parser), latency, subscriptions and the summary, only with the token', async () => {
    const running = await harness.start();
    const app = running.addClient('app');
    running.addClient('never-connected');
    admin = await startAdminServer({
      host: '127.0.0.1',
      port: 0,
      adminToken: TOKEN,
      logger: createLogger({ sink: () => {} }),
      routes: monitoringRoutes({ engine: running.engine, store: running.store, sessions: running.server.sessions }),
    });
    const base = `http://127.0.0.1:${admin.address.port}`;
    const get = (path: string, token: string | null = TOKEN) => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

    const connected = await RawClient.authenticated(running.url, app.id, app.secretKey);
    const reader = new DeliveryRecorder();
    await running.engine.subscribe('app', { name: 'watch', pattern: 'm/**' }, reader.handler);
    for (let i = 0; i < 30; i++) await running.engine.publish('app', { type: 'm/x', payload: new Uint8Array([i]) });
    await waitFor(() => reader.acked.size === 30, 5000, 'acks');
    await new Promise((resolve) => setTimeout(resolve, 100));

    for (const path of ['/metrics', '/admin/latency', '/admin/subscriptions', '/admin/summary']) {
      expect((await get(path, null)).status, path).toBe(401);
      expect((await get(path, 'wrong-token-000000000000')).status, path).toBe(401);
    }

    const metrics = await get('/metrics');
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusText(await metrics.text());
    const family = (name: string) => families.find((f) => f.name === name)!;
    expect(family('ensync_events_published_total').metrics).toEqual([expect.objectContaining({ labels: { type: 'm/x' }, value: '30' })]);
    expect(family('ensync_events_acked_total').metrics[0]!.value).toBe('30');
    const clients = Object.fromEntries(family('ensync_clients').metrics.map((m) => [m.labels!.status, m.value]));
    expect(clients).toEqual({ active: '1', idle: '0', disconnected: '1' });

    const latency = (await (await get('/admin/latency')).json()) as { stages: Record<string, { count: number; p99: number; encoded: string }> };
    expect(latency.stages.publish_to_durable!.count).toBe(30);
    expect(latency.stages.publish_to_ack!.count).toBe(30);
    expect(latency.stages.publish_to_ack!.encoded.length).toBeGreaterThan(0);
    // Group commits of the shards' events logs, timed in the workers.
    expect(latency.stages.fsync!.count).toBeGreaterThan(0);
    expect(latency.stages.fsync!.p99).toBeGreaterThan(0);
    // ?reset=true starts a new interval.
    await get('/admin/latency?reset=true');
    expect(((await (await get('/admin/latency')).json()) as typeof latency).stages.publish_to_durable!.count).toBe(0);

    const subscriptions = (await (await get('/admin/subscriptions')).json()) as Array<{ subscription: string; inFlight: number; paused: boolean }>;
    expect(subscriptions).toEqual([expect.objectContaining({ subscription: 'app/watch', inFlight: 0, paused: false })]);
    const summary = (await (await get('/admin/summary')).json()) as { published: number; delivered: number; connections: Record<string, number> };
    expect(summary).toMatchObject({ published: 30, delivered: 30, connections: { active: 1, idle: 0, disconnected: 1 } });

    const page = await get('/', null);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('Admin token');
    connected.close();
  });
});
