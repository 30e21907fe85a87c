import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ShardStats } from '../../src/engine/shard-messages.js';
import { emptyShardMetrics } from '../../src/engine/shard/shard-metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import { AdminServerError, startAdminServer, type AdminRoute, type AdminServer } from '../../src/server/admin-server.js';
import { buildHealthReport, healthRoute } from '../../src/server/health.js';
import { holdHalfReceivedRequest } from './hold-admin-connection.js';

let tmp: string;
const logLines: string[] = [];
const logger = createLogger({ sink: (line) => logLines.push(line) });
const cleanups: Array<() => Promise<void>> = [];
const TOKEN = 'test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ensync-admin-'));
  logLines.length = 0;
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await rm(tmp, { recursive: true, force: true });
});

async function serve(routes: AdminRoute[]): Promise<{ server: AdminServer; url: string }> {
  const server = await startAdminServer({ host: '127.0.0.1', port: 0, routes, logger, adminToken: TOKEN });
  cleanups.push(() => server.close());
  return { server, url: `http://127.0.0.1:${server.address.port}` };
}

const websocket = () => ({ backend: 'native' as const, detail: 'test', port: 1234, tls: false, connections: 2 });
const shard = (n: number, nextOffset: number): ShardStats => ({ shard: n, nextOffset, subscriptions: 1, scheduledPending: 0, scheduledInMemory: 0, metrics: emptyShardMetrics(), fsyncLatency: null });

function healthFor(shardStats: () => Promise<ShardStats[]>, startedAtMs = Date.now()): AdminRoute {
  return healthRoute({ version: '9.9.9', dataDir: tmp, startedAtMs, shardStats, websocket, work: () => ({ active: [], finished: [] }) });
}

describe('GET /health', () => {
  it('reports ok, the WebSocket backend and where each shard stands', async () => {
    let offsets = [0, 0];
    const { url } = await serve([healthFor(async () => offsets.map((o, i) => shard(i, o)))]);
    const before = await fetch(`${url}/health`);
    expect(before.status).toBe(200);
    expect(before.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await before.json()).toMatchObject({
      status: 'ok',
      version: '9.9.9',
      dataDir: tmp,
      websocket: { backend: 'native', port: 1234, connections: 2 },
      shards: [{ shard: 0, nextOffset: 0 }, { shard: 1, nextOffset: 0 }],
      dataDirFreeBytes: expect.any(Number),
    });
    offsets = [3, 5];
    const after = (await (await fetch(`${url}/health`)).json()) as { shards: Array<{ nextOffset: number }> };
    expect(after.shards.map((s) => s.nextOffset)).toEqual([3, 5]);
  });

  it('answers 503 "failed" with the reason when the engine cannot serve', async () => {
    const { url } = await serve([healthFor(() => Promise.reject(new Error('the engine is closed')))]);
    const res = await fetch(`${url}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'failed', error: 'the engine is closed', websocket: { backend: 'native' } });
  });

  it('computes uptime from the start time', async () => {
    const report = await buildHealthReport({ version: '1', dataDir: tmp, startedAtMs: 10_000, shardStats: async () => [], websocket, work: () => ({ active: [], finished: [] }), now: () => 12_345 });
    expect(report.uptimeSeconds).toBe(2.345);
  });
});

describe('while the engine starts', () => {
  it('answers /health 503 "starting" with the work in progress, other paths 503 STARTING, until the routes are served', async () => {
    const running = { id: 'recovery:shard-0', kind: 'recovery' as const, shard: 0, detail: 'indexing priority lanes', done: 10, total: 100, unit: 'offsets', startedAt: 1 };
    const source = { version: '1', dataDir: tmp, startedAtMs: Date.now(), shardStats: null as null | (() => Promise<ShardStats[]>), websocket: () => null, work: () => ({ active: [running], finished: [] }) };
    const server = await startAdminServer({ host: '127.0.0.1', port: 0, routes: [healthRoute(source)], moreRoutesComing: true, logger, adminToken: TOKEN });
    cleanups.push(() => server.close());
    const url = `http://127.0.0.1:${server.address.port}`;

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'starting', websocket: null, shards: [], work: { active: [running] } });
    const early = await fetch(`${url}/admin/clients`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(early.status).toBe(503);
    expect(early.headers.get('retry-after')).toBe('1');
    expect(await early.json()).toMatchObject({ error: { code: 'STARTING' } });

    source.shardStats = async () => [shard(0, 5)];
    server.serve([{ method: 'GET', path: '/admin/clients', handle: () => ({ status: 200, body: { clients: [] } }) }]);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/admin/clients`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
  });
});

describe('admin server', () => {
  it('answers unknown paths with a 404 JSON error', async () => {
    const { url } = await serve([]);
    const res = await fetch(`${url}/metrics?x=1`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route for GET /metrics' } });
  });

  it('answers a malformed request target with a 400 JSON error', async () => {
    const { server } = await serve([]);
    const socket = net.connect(server.address.port, '127.0.0.1');
    let raw = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (raw += chunk));
    socket.write('GET http://[/health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'BAD_REQUEST', message: 'malformed request target' },
    });
  });

  it('answers a wrong method with 405 and an Allow header; HEAD works like GET without a body', async () => {
    const { url } = await serve([healthFor(async () => [shard(0, 0)])]);
    const post = await fetch(`${url}/health`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
    expect(await post.json()).toEqual({ error: { code: 'METHOD_NOT_ALLOWED', message: 'POST is not allowed on /health' } });

    const head = await fetch(`${url}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('requires the admin token on every route but the public ones, answering 401 and nothing else', async () => {
    const secret = { method: 'GET' as const, path: '/admin/secret', handle: () => ({ status: 200, body: { secret: 42 } }) };
    const { url } = await serve([secret, healthFor(async () => [])]);
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: TOKEN }, { authorization: 'Basic abc' }];
    for (const headers of attempts) {
      const res = await fetch(`${url}/admin/secret`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(await res.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
    }
    expect((await fetch(`${url}/admin/secret`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it('passes path params, the query and a JSON body to the handler; answers text routes as text', async () => {
    const seen: unknown[] = [];
    const { url } = await serve([
      { method: 'POST', path: '/admin/things/:id/:action', handle: (req) => (seen.push(req), { status: 200, body: { ok: true } }) },
      { method: 'GET', path: '/text', handle: () => ({ status: 200, text: 'a 1\n', contentType: 'text/plain; version=0.0.4' }) },
    ]);
    const res = await fetch(`${url}/admin/things/a%2Fb/pause?limit=5`, { method: 'POST', headers: auth, body: JSON.stringify({ reason: 'x' }) });
    expect(res.status).toBe(200);
    expect(seen[0]).toMatchObject({ params: { id: 'a/b', action: 'pause' }, body: { reason: 'x' }, actor: 'admin-token' });
    expect((seen[0] as { query: URLSearchParams }).query.get('limit')).toBe('5');
    const bad = await fetch(`${url}/admin/things/a/pause`, { method: 'POST', headers: auth, body: '{not json' });
    expect(bad.status).toBe(400);
    const big = await fetch(`${url}/admin/things/a/pause`, { method: 'POST', headers: auth, body: JSON.stringify({ x: 'y'.repeat(70_000) }) });
    expect(big.status).toBe(413);
    const text = await fetch(`${url}/text`, { headers: auth });
    expect(text.headers.get('content-type')).toBe('text/plain; version=0.0.4');
    expect(await text.text()).toBe('a 1\n');
  });

  it('turns a failing handler into a 500 JSON error and logs it', async () => {
    const { url } = await serve([
      { method: 'GET', path: '/boom', handle: () => Promise.reject(new Error('handler broke')) },
    ]);
    const res = await fetch(`${url}/boom`, { headers: auth });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    const logged = logLines.map((l) => JSON.parse(l) as { msg: string; error?: { message: string } });
    expect(logged.find((l) => l.msg === 'admin request failed')?.error?.message).toBe('handler broke');
  });

  it('closes promptly while a keep-alive connection is open', async () => {
    const server = await startAdminServer({ host: '127.0.0.1', port: 0, routes: [healthFor(async () => [shard(0, 0)])], logger, adminToken: TOKEN });
    const res = await fetch(`http://127.0.0.1:${server.address.port}/health`, { headers: { connection: 'keep-alive' } });
    await res.json();
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('lets a request that is still arriving hold close() until the drain timeout, then cuts it off', async () => {
    const drainTimeoutMs = 300;
    const server = await startAdminServer({ host: '127.0.0.1', port: 0, routes: [healthFor(async () => [shard(0, 0)])], logger, drainTimeoutMs, adminToken: TOKEN });
    const held = await holdHalfReceivedRequest(server.address.port);
    const started = Date.now();
    await server.close();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(drainTimeoutMs - 20);
    expect(elapsed).toBeLessThan(drainTimeoutMs + 2_000);
    await held.closed;
    expect(held.socket.destroyed).toBe(true);
  });

  it('rejects with ADMIN_LISTEN_FAILED when the port is taken', async () => {
    const { server } = await serve([]);
    const second = startAdminServer({ host: '127.0.0.1', port: server.address.port, routes: [], logger, adminToken: TOKEN });
    await expect(second).rejects.toBeInstanceOf(AdminServerError);
    await expect(second).rejects.toMatchObject({ code: 'ADMIN_LISTEN_FAILED' });
  });
});
