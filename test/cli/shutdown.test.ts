import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DeliverFrame, PublishedFrame } from '../../src/protocol/index.js';
import { RawClient } from '../server/ws/raw-client.js';
import { assertBuilt, spawnEngine, type EngineChild } from './spawn-engine.js';

let tmp: string;
const running: EngineChild[] = [];

beforeAll(assertBuilt);
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ensync-cli-shutdown-'));
});
afterEach(async () => {
  for (const engine of running.splice(0)) {
    if (engine.child.exitCode === null && engine.child.signalCode === null) engine.child.kill('SIGKILL');
    await engine.exited;
  }
  await rm(tmp, { recursive: true, force: true });
});

async function startEngine(): Promise<{ engine: EngineChild; url: string; clientId: string; secretKey: Uint8Array }> {
  const engine = spawnEngine(['start', '--data-dir', tmp, '--port', '0', '--admin-port', '0']);
  running.push(engine);
  const listening = await engine.waitForLine('client port listening');
  await engine.waitForLine('engine ready');
  const credentials = JSON.parse(await readFile(path.join(tmp, 'dev-credentials.json'), 'utf8')) as { clientId: string; secretKey: string };
  return { engine, url: `ws://127.0.0.1:${listening.port as number}/ws`, clientId: credentials.clientId, secretKey: new Uint8Array(Buffer.from(credentials.secretKey, 'base64')) };
}

describe('graceful shutdown with connected clients', () => {
  it('closes sockets with going-away on SIGTERM, keeps what was confirmed, and delivers it after a restart', async () => {
    const first = await startEngine();
    const client = await RawClient.authenticated(first.url, first.clientId, first.secretKey);
    const published = (await client.request({ t: 'publish', id: client.id(), events: [{ type: 'orders/created', payload: new Uint8Array([1, 2, 3]), id: 'kept-1' }] })) as PublishedFrame;
    expect(published.results[0]).toMatchObject({ id: 'kept-1', duplicate: false });

    first.engine.child.kill('SIGTERM');
    expect((await client.waitClosed()).code).toBe(1001);
    expect(await first.engine.exited).toEqual({ code: 0, signal: null });
    expect(first.engine.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['client port closed', 'engine closed', 'engine stopped']));

    const second = await startEngine();
    const reader = await RawClient.authenticated(second.url, second.clientId, second.secretKey);
    await reader.request({ t: 'subscribe', id: reader.id(), name: 'after-restart', pattern: 'orders/*', from: 'all' });
    const delivered = (await reader.next((f) => f.t === 'deliver')) as DeliverFrame;
    expect(delivered.deliveries[0]!.event).toMatchObject({ id: 'kept-1', type: 'orders/created' });
    reader.close();
  });
});
