import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONFIG_OPTIONS } from '../../src/config/config-options.js';
import { REPO_ROOT, assertBuilt, runEngineToExit } from './spawn-engine.js';

let tmp: string;
beforeAll(assertBuilt);
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ensync-cli-args-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function expectOneLineError(stderr: string, fragment: string): void {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^ensync-engine: error: /);
  expect(lines[0]).toContain(fragment);
}

describe('ensync-engine arguments', () => {
  it('exits 2 with one clear line for an unknown flag, before touching the data dir', async () => {
    const dataDir = path.join(tmp, 'data');
    const { code, stdout, stderr } = await runEngineToExit(['start', '--data-dir', dataDir, '--bogus']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expectOneLineError(stderr, "unknown flag '--bogus'");
    expect(existsSync(dataDir)).toBe(false);
  });

  it('exits 2 for a non-numeric port, an out-of-range port and an unknown fsync policy', async () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
      [['--port', 'abc'], {}, "--port must be an integer from 0 to 65535 (got 'abc')"],
      [['start', '--admin-port', '70000'], {}, "--admin-port must be an integer from 0 to 65535 (got '70000')"],
      [['start'], { ENSYNC_FSYNC: 'sometimes' }, "ENSYNC_FSYNC must be one of always, interval, never (got 'sometimes')"],
    ];
    for (const [args, env, message] of cases) {
      const { code, stderr } = await runEngineToExit([...args, '--data-dir', tmp], env);
      expect(code, args.join(' ')).toBe(2);
      expectOneLineError(stderr, message);
    }
  });

  it('exits 2 for an unknown command, also after help', async () => {
    const { code, stderr } = await runEngineToExit(['launch']);
    expect(code).toBe(2);
    expectOneLineError(stderr, "unknown command 'launch'");
    const help = await runEngineToExit(['help', 'launch']);
    expect(help.code).toBe(2);
    expectOneLineError(help.stderr, "unknown command 'launch'");
  });

  it('prints the package version for --version', async () => {
    const { version } = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const { code, stdout } = await runEngineToExit(['--version']);
    expect(code).toBe(0);
    expect(stdout).toBe(`${version}\n`);
  });

  it('prints usage naming every flag and env var for --help, start --help and help start', async () => {
    for (const args of [['--help'], ['start', '--help'], ['help', 'start'], ['help']]) {
      const { code, stdout, stderr } = await runEngineToExit(args);
      expect(code, args.join(' ')).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toMatch(/^Usage: ensync-engine/);
      for (const option of CONFIG_OPTIONS) {
        expect(stdout).toContain(`--${option.flag} <${option.valueName}>`);
        expect(stdout).toContain(option.env);
      }
    }
  });

  it('has a node shebang so it works as the package bin', async () => {
    const main = await readFile(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'), 'utf8');
    expect(main.startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});
