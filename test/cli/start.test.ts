import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { holdHalfReceivedRequest } from '../server/hold-admin-connection.js';
import { REPO_ROOT, assertBuilt, spawnEngine, type EngineChild } from './spawn-engine.js';

let tmp: string;
const running: EngineChild[] = [];

beforeAll(assertBuilt);
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ensync-cli-start-'));
});
afterEach(async () => {
  for (const engine of running.splice(0)) {
    if (engine.child.exitCode === null && engine.child.signalCode === null) engine.child.kill('SIGKILL');
    await engine.exited;
  }
  await rm(tmp, { recursive: true, force: true });
});

function start(args: string[], env: NodeJS.ProcessEnv = {}): EngineChild {
  const engine = spawnEngine(args, env);
  running.push(engine);
  return engine;
}

async function adminPort(engine: EngineChild): Promise<number> {
  const line = await engine.waitForLine('admin listening');
  expect(line.host).toBe('127.0.0.1');
  expect(typeof line.port).toBe('number');
  expect(line.port).toBeGreaterThan(0);
  return line.port as number;
}

async function packageVersion(): Promise<string> {
  return (JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

describe('ensync-engine start', () => {
  it('creates the data dir, answers GET /health, and stops cleanly on SIGTERM', async () => {
    const dataDir = path.join(tmp, 'nested', 'data');
    const engine = start(['start', '--data-dir', dataDir, '--admin-port', '0', '--port', '0']);
    const port = await adminPort(engine);
    await engine.waitForLine('engine ready');

    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 'ok',
      version: await packageVersion(),
      dataDir,
      websocket: { backend: 'native', tls: false, connections: 0 },
    });
    expect((body.shards as unknown[]).length).toBeGreaterThan(0);
    expect(body.uptimeSeconds).toBeGreaterThanOrEqual(0);
    // Every shard's opening was followed as long work, finished before the engine was ready.
    const work = body.work as { active: unknown[]; finished: Array<{ id: string; kind: string; error?: string }> };
    expect(work.active).toEqual([]);
    const recovered = work.finished.filter((w) => w.kind === 'recovery');
    expect(recovered.map((w) => w.id).sort()).toEqual((body.shards as Array<{ shard: number }>).map((s) => `recovery:shard-${s.shard}`).sort());
    expect(recovered.every((w) => w.error === undefined)).toBe(true);

    const missing = await fetch(`http://127.0.0.1:${port}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route for GET /nope' } });

    // The WebSocket port is reported with the backend that serves it, and the development client's credentials.
    const clientLine = await engine.waitForLine('client port listening');
    expect(clientLine).toMatchObject({ host: '0.0.0.0', port: (body.websocket as { port: number }).port });
    expect(engine.lines.find((l) => l.msg === 'uWebSockets.js loaded')).toBeDefined();
    expect(engine.lines.find((l) => l.msg === 'data dir')?.dataDir).toBe(dataDir);
    const devLine = engine.lines.find((l) => l.msg.startsWith('created the development client'));
    expect(devLine?.file).toBe(path.join(dataDir, 'dev-credentials.json'));
    expect(statSync(path.join(dataDir, 'dev-credentials.json')).mode & 0o777).toBe(0o600);

    engine.child.kill('SIGTERM');
    const { code, signal } = await engine.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(engine.stderr()).toBe('');
    expect(existsSync(path.join(dataDir, 'shards', '0', 'events', 'checkpoint'))).toBe(true);
    expect(engine.lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['shutdown requested', 'client port closed', 'admin server closed', 'engine closed', 'engine stopped']),
    );
    // Stopped means stopped: the admin port no longer answers.
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });

  it('reopens a cleanly closed data dir without a recovery scan (SIGINT, default command, env config)', async () => {
    const env = { ENSYNC_DATA_DIR: tmp, ENSYNC_ADMIN_PORT: '0', ENSYNC_PORT: '0' };
    const first = start([], env);
    await adminPort(first);
    await first.waitForLine('engine ready');
    first.child.kill('SIGINT');
    expect((await first.exited).code).toBe(0);

    const second = start([], env);
    await adminPort(second);
    await second.waitForLine('engine ready');
    // The development client exists already: it is not made again.
    expect(second.lines.some((l) => l.msg.startsWith('created the development client'))).toBe(false);
    expect(second.lines.find((l) => l.msg === 'data dir')?.dataDir).toBe(tmp);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('exits at once with code 1 on a second signal while shutdown is still in progress', async () => {
    const engine = start(['--data-dir', tmp, '--admin-port', '0', '--port', '0']);
    const port = await adminPort(engine);
    await engine.waitForLine('engine ready');
    // A half-received admin request keeps shutdown waiting for the admin server to drain.
    const held = await holdHalfReceivedRequest(port);
    engine.child.kill('SIGTERM');
    await engine.waitForLine('stopping');
    engine.child.kill('SIGINT');
    const { code } = await engine.exited;
    expect(code).toBe(1);
    expect(engine.lines.some((l) => l.msg === 'second signal, exiting without waiting for shutdown')).toBe(true);
    expect(engine.lines.some((l) => l.msg === 'engine stopped')).toBe(false);
    held.socket.destroy();
  });

  it('exits 1 with a clear log line when the admin port is taken, before opening any log', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const engine = start(['--data-dir', tmp, '--admin-port', String(taken), '--port', '0']);
      const failure = await engine.waitForLine('engine failed to start');
      expect(failure.level).toBe('error');
      expect(failure.error).toMatchObject({ code: 'ADMIN_LISTEN_FAILED' });
      expect((failure.error as { message: string }).message).toContain(`127.0.0.1:${taken}`);
      expect((await engine.exited).code).toBe(1);
      // The admin port opens first (it reports recovery progress), so nothing of the engine was opened.
      expect(existsSync(path.join(tmp, 'shards'))).toBe(false);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
