import { afterEach, describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../../src/engine/signing.js';
import { createLogger } from '../../src/observability/logger.js';
import { adminRoutes } from '../../src/server/admin-routes.js';
import { startAdminServer, type AdminServer } from '../../src/server/admin-server.js';
import { DeliveryRecorder, waitFor } from '../helpers/engine-deliveries.js';
import { WsEngineHarness, type WsEngine } from '../helpers/ws-engine.js';
import { RawClient } from './ws/raw-client.js';

const harness = new WsEngineHarness();
const servers: AdminServer[] = [];
const logLines: string[] = [];
const TOKEN = 'admin-routes-test-token-0123';
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  await harness.cleanup();
});

async function adminFor(running: WsEngine): Promise<(method: string, path: string, body?: unknown, token?: string | null) => Promise<{ status: number; json: any }>> {
  const logger = createLogger({ sink: (line) => logLines.push(line) });
  const server = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    adminToken: TOKEN,
    logger,
    routes: adminRoutes({ engine: running.engine, store: running.store, clients: running.clients, sessions: running.server.sessions, logger }),
  });
  servers.push(server);
  return async (method, path, body, token = TOKEN) => {
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    const res = await fetch(`http://127.0.0.1:${server.address.port}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, json: await res.json() };
  };
}

describe('management routes', () => {
  it('answers 401 on every route without the right token', async () => {
    const running = await harness.start();
    const call = await adminFor(running);
    for (const [method, path] of [
      ['GET', '/admin/clients'],
      ['POST', '/admin/clients'],
      ['DELETE', '/admin/clients/x'],
      ['GET', '/admin/streams'],
      ['GET', '/admin/events/x?type=a'],
      ['POST', '/admin/subscriptions/c/n/pause'],
      ['POST', '/admin/subscriptions/c/n/resume'],
      ['POST', '/admin/subscriptions/c/n/replay-dead-letters'],
      ['GET', '/admin/retention'],
      ['PUT', '/admin/retention'],
      ['GET', '/admin/compaction'],
      ['PUT', '/admin/compaction'],
      ['POST', '/admin/compaction/run'],
    ] as const) {
      for (const token of [null, 'not-the-token-000000000']) {
        const { status, json } = await call(method, path, undefined, token);
        expect(status, `${method} ${path}`).toBe(401);
        expect(json.error.code).toBe('UNAUTHORIZED');
      }
    }
  });

  it('lists clients with their status, adds and removes them (the change takes effect at once)', async () => {
    const running = await harness.start();
    const call = await adminFor(running);
    const known = running.addClient('known');
    const connected = await RawClient.authenticated(running.url, known.id, known.secretKey);
    let clients = (await call('GET', '/admin/clients')).json as Array<{ id: string; status: string; connections: number }>;
    expect(clients).toEqual([expect.objectContaining({ id: 'known', status: 'active', connections: 1, publish: ['**'], published: 0, publishedPerSecond: 0 })]);

    const { publicKey, secretKey } = generateSigningKeyPair();
    const added = await call('POST', '/admin/clients', { id: 'added', publicKey: Buffer.from(publicKey).toString('base64'), publish: ['orders/*'], subscribe: ['orders/**'] });
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({ id: 'added', publish: ['orders/*'], requireSignatures: false });
    const newcomer = await RawClient.authenticated(running.url, 'added', secretKey);
    expect(newcomer.closed).toBeNull();
    expect((await call('POST', '/admin/clients', { id: 'added', publicKey: Buffer.from(publicKey).toString('base64') })).status).toBe(400);
    expect((await call('POST', '/admin/clients', { id: 'bad key', publicKey: 'x' })).status).toBe(400);

    expect((await call('DELETE', '/admin/clients/added')).json).toEqual({ removed: 'added' });
    expect((await call('DELETE', '/admin/clients/added')).status).toBe(404);
    clients = (await call('GET', '/admin/clients')).json;
    expect(clients.map((c) => c.id)).toEqual(['known']);
    await expect(RawClient.authenticated(running.url, 'added', secretKey)).rejects.toThrow(/AUTH_FAILED/);
    connected.close();
    expect(logLines.some((l) => l.includes('admin action: add client') && l.includes('admin-token'))).toBe(true);
  });

  it('shows streams and an event with its trail; pauses, resumes and replays a subscription', async () => {
    const running = await harness.start();
    const call = await adminFor(running);
    const engine = running.engine;
    running.addClient('app');
    const reader = new DeliveryRecorder((delivery, consumer) => (delivery.attempt === 1 && delivery.event.id === 'drop-me' ? consumer.discard(delivery, 'bad') : consumer.ack(delivery)));
    await engine.subscribe('app', { name: 'work', pattern: 'jobs/**' }, reader.handler);
    const receipt = await engine.publish('app', { type: 'jobs/run', id: 'job-1', payload: new Uint8Array([7]) });
    await engine.publish('app', { type: 'jobs/run', id: 'drop-me', payload: new Uint8Array([8]) });
    await waitFor(() => reader.deliveries.length === 2, 5000, 'two deliveries');

    const streams = (await call('GET', '/admin/streams')).json as Array<{ shard: number; nextOffset: number }>;
    expect(streams.reduce((n, s) => n + s.nextOffset, 0)).toBe(2);
    const event = await call('GET', '/admin/events/job-1?type=jobs/run');
    expect(event.json).toMatchObject({ shard: receipt.shard, offset: receipt.offset, event: { id: 'job-1', type: 'jobs/run', payloadBase64: 'Bw==' } });
    expect(event.json.trail.map((e: { kind: string }) => e.kind)).toEqual(['published', 'delivered', 'acked']);
    expect((await call('GET', '/admin/events/job-1')).status).toBe(400);
    expect((await call('GET', '/admin/events/nope?type=jobs/run')).status).toBe(404);

    expect((await call('POST', '/admin/subscriptions/app/work/replay-dead-letters')).json).toMatchObject({ replayed: 1 });
    await waitFor(() => reader.deliveriesOf('drop-me').length === 2, 5000, 'the replayed dead letter');

    expect((await call('POST', '/admin/subscriptions/app/work/pause')).status).toBe(200);
    await engine.publish('app', { type: 'jobs/run', id: 'while-paused', payload: new Uint8Array([9]) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reader.deliveriesOf('while-paused')).toHaveLength(0);
    expect((await call('POST', '/admin/subscriptions/app/work/resume')).status).toBe(200);
    await waitFor(() => reader.deliveriesOf('while-paused').length === 1, 5000, 'delivery after resume');
    expect((await call('POST', '/admin/subscriptions/app/missing/pause')).status).toBe(404);

    expect((await call('GET', '/admin/retention')).json).toEqual({ retentionMs: null, retentionBytes: null });
    const changed = await call('PUT', '/admin/retention', { retentionMs: 7 * 24 * 60 * 60 * 1000 });
    expect(changed.status).toBe(200);
    expect(changed.json).toMatchObject({ retentionMs: 604_800_000, retentionBytes: null, segmentsDeleted: 0 });
    expect(engine.retention.retentionMs).toBe(604_800_000);
    expect((await call('PUT', '/admin/retention', { retentionMs: 'a week' })).status).toBe(400);
    expect(logLines.some((l) => l.includes('admin action: change retention'))).toBe(true);
  });

  it('shows and changes the compaction settings, runs a round, and logs who did it', async () => {
    const running = await harness.start({ engine: { shards: 1, segmentBytes: 16 * 1024, compaction: { checkIntervalMs: 0 } } });
    const { engine } = running;
    running.addClient('app');
    const call = await adminFor(running);
    const initial = await call('GET', '/admin/compaction');
    expect(initial.status).toBe(200);
    expect(initial.json).toMatchObject({ settings: { policies: [], checkIntervalMs: 0 }, running: false, totals: { runs: 0, compactions: 0 }, recent: [] });

    const changed = await call('PUT', '/admin/compaction', { policies: [{ pattern: 'jobs/**', removeAckedAfterMs: 0 }] });
    expect(changed.status).toBe(200);
    expect(changed.json.settings.policies).toEqual([{ pattern: 'jobs/**', removeAckedAfterMs: 0, compaction: 'none', tombstoneRetentionMs: 86_400_000 }]);
    expect(engine.compactionSettings.policies).toHaveLength(1);
    const refused = await call('PUT', '/admin/compaction', { policies: [{ pattern: 'jobs/**', compaction: 'latest' }] });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(engine.compactionSettings.policies[0]!.pattern, 'a refused change changes nothing').toBe('jobs/**');

    // Settled events in sealed segments: a round removes them.
    const reader = new DeliveryRecorder();
    await engine.subscribe('app', { name: 'jobs', pattern: 'jobs/**' }, reader.handler);
    const events = Array.from({ length: 600 }, (_, i) => ({ type: 'jobs/run', payload: new Uint8Array(200).fill(i % 256) }));
    for (let i = 0; i < events.length; i += 200) await engine.publishMany('app', events.slice(i, i + 200));
    await waitFor(() => reader.acked.size === 600, 10_000, () => `${reader.acked.size} of 600 acked`);
    await new Promise((resolve) => setTimeout(resolve, 1200)); // the log's checkpoint past the sealed segments
    const round = await call('POST', '/admin/compaction/run');
    expect(round.status).toBe(200);
    expect(round.json.compactions.length).toBeGreaterThan(0);
    expect(round.json.bytesReclaimed).toBeGreaterThan(0);
    const after = await call('GET', '/admin/compaction');
    expect(after.json.totals).toMatchObject({ runs: 1, compactions: round.json.compactions.length });
    expect(after.json.recent[0]).toMatchObject({ shard: 0, reason: 'clean', installed: true });
    expect(logLines.some((l) => l.includes('admin action: change compaction settings') && l.includes('admin-token'))).toBe(true);
    expect(logLines.some((l) => l.includes('admin action: run compaction'))).toBe(true);
  });
});

