import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { assertBuilt, spawnEngine, type EngineChild } from './spawn-engine.js';

let tmp: string;
const running: EngineChild[] = [];
beforeAll(assertBuilt);
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ensync-cli-stats-'));
});
afterEach(async () => {
  for (const engine of running.splice(0)) {
    if (engine.child.exitCode === null) engine.child.kill('SIGKILL');
    await engine.exited;
  }
  await rm(tmp, { recursive: true, force: true });
});

async function stats(argv: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const code = await runCli({ argv: ['stats', ...argv], env, cwd: tmp, stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe('ensync-engine stats', () => {
  it('prints a one-screen summary of a running engine; a wrong token or no engine is a clear error', async () => {
    const engine = spawnEngine(['start', '--data-dir', tmp, '--port', '0', '--admin-port', '0']);
    running.push(engine);
    const admin = await engine.waitForLine('admin listening');
    await engine.waitForLine('engine ready');
    const { adminToken } = JSON.parse(await readFile(path.join(tmp, 'dev-credentials.json'), 'utf8')) as { adminToken: string };
    const url = `http://127.0.0.1:${admin.port as number}`;

    const ok = await stats(['--admin-url', url, '--token', adminToken]);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/EnSync engine .* ok, up/);
    expect(ok.out).toContain('native uWebSockets.js');
    expect(ok.out).toContain('0 published, 0 delivered');
    expect(ok.out).toContain('1 disconnected');
    expect(ok.out).toContain('publish_to_durable');

    const viaEnv = await stats([], { ENSYNC_ADMIN_URL: url, ENSYNC_ADMIN_TOKEN: adminToken });
    expect(viaEnv.code).toBe(0);
    expect((await stats([`--admin-url=${url}`, `--token=${adminToken}`])).code).toBe(0);
    // A token may start with '-' (base64url): it is still the token's value, not another option.
    const dashed = await stats(['--admin-url', url, '--token', '-not-the-token-0123456789']);
    expect(dashed.code).toBe(1);
    expect(dashed.err).toContain('the admin token was refused');
    expect((await stats(['--admin-url', url, '--colour'])).code).toBe(2);
    const refused = await stats(['--admin-url', url, '--token', 'wrong-token-0123456789']);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('the admin token was refused');
    expect((await stats(['--admin-url', url])).code).toBe(2);
    engine.child.kill('SIGTERM');
    await engine.exited;
    const down = await stats(['--admin-url', url, '--token', adminToken]);
    expect(down.code).toBe(1);
    expect(down.err).toContain('cannot read');
  });
});
