import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/parse-config.js';
import { runCli } from '../../src/cli/run-cli.js';
import { privateKeyFromSeed, publicKeyFromRaw, rawPublicKey, signEvent, verifyEventSignature } from '../../src/engine/signing.js';
import { CLIENTS_FILE, ClientStore } from '../../src/registry/client-store.js';
import { TempDirs } from '../helpers/temp-dirs.js';
import { newPublicKey, waitUntil } from '../registry/registry-fixtures.js';
import { assertBuilt, runEngineToExit } from './spawn-engine.js';

const temps = new TempDirs();
let tmp: string;
let dataDir: string;
const stops: Array<() => void> = [];

beforeAll(assertBuilt);
beforeEach(async () => {
  tmp = await temps.make('ensync-cli-client-');
  dataDir = path.join(tmp, 'data');
});
afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await temps.cleanup();
});

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process, as main.ts does, with only the env the test gives. */
async function cli(argv: string[], options: { env?: Env; cwd?: string } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli({
    argv,
    env: options.env ?? {},
    cwd: options.cwd ?? tmp,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

function expectOneErrorLine(result: CliResult, code: number, fragment: string): void {
  expect(result.code, result.stderr).toBe(code);
  expect(result.stdout).toBe('');
  const lines = result.stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^ensync-engine: error: /);
  expect(lines[0]).toContain(fragment);
}

const event = { type: 'orders/created', id: 'e1', key: 'k', headers: { a: 'b' }, payload: new Uint8Array([7]) };

describe('ensync-engine keygen', () => {
  it('prints one JSON line with a 32-byte public key and the 32-byte seed that signs for it', async () => {
    const { code, stdout, stderr } = await cli(['keygen']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout.endsWith('\n')).toBe(true);
    expect(stdout.trimEnd().includes('\n')).toBe(false);
    const keys = JSON.parse(stdout) as { publicKey: string; secretKey: string };
    expect(Object.keys(keys)).toEqual(['publicKey', 'secretKey']);
    const publicKey = Buffer.from(keys.publicKey, 'base64');
    const secretKey = Buffer.from(keys.secretKey, 'base64');
    expect(publicKey).toHaveLength(32);
    expect(secretKey).toHaveLength(32);
    expect(Buffer.from(rawPublicKey(privateKeyFromSeed(secretKey))).equals(publicKey)).toBe(true);

    const signature = signEvent(secretKey, event);
    expect(verifyEventSignature(publicKeyFromRaw(publicKey), event, signature)).toBe(true);
    expect(verifyEventSignature(publicKeyFromRaw(publicKey), { ...event, id: 'e2' }, signature)).toBe(false);

    const other = JSON.parse((await cli(['keygen'])).stdout) as { publicKey: string };
    expect(other.publicKey).not.toBe(keys.publicKey);
  });

  it('takes no arguments', async () => {
    expectOneErrorLine(await cli(['keygen', 'extra']), 2, "keygen takes no arguments, got 'extra'");
    const help = await cli(['keygen', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: ensync-engine keygen/);
  });
});

describe('ensync-engine client', () => {
  it('adds, lists and removes clients, keeping the file at mode 0600', async () => {
    const { publicKey } = JSON.parse((await cli(['keygen'])).stdout) as { publicKey: string };
    const add = await cli([
      'client', 'add', 'billing', '--public-key', publicKey,
      '--publish', 'orders/*', '--publish', 'invoices/**', '--subscribe', 'payments/**', '--require-signatures',
      '--data-dir', dataDir,
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toBe('');
    const added = JSON.parse(add.stdout) as Record<string, unknown>;
    expect(added).toMatchObject({
      id: 'billing',
      publicKey,
      publish: ['orders/*', 'invoices/**'],
      subscribe: ['payments/**'],
      requireSignatures: true,
    });
    expect(Math.abs((added.addedAt as number) - Date.now())).toBeLessThan(60_000);
    expect(fs.statSync(path.join(dataDir, CLIENTS_FILE)).mode & 0o777).toBe(0o600);

    expect((await cli(['client', 'add', 'audit', `--public-key=${newPublicKey()}`, '--data-dir', dataDir])).code).toBe(0);

    const list = await cli(['client', 'list', '--data-dir', dataDir]);
    expect(list.code).toBe(0);
    expect(list.stdout.endsWith('\n')).toBe(true);
    expect(list.stdout.trimEnd().includes('\n')).toBe(false);
    const listed = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    expect(listed.map((c) => c.id)).toEqual(['billing', 'audit']);
    expect(listed[0]).toEqual(added);
    expect(listed[1]).toMatchObject({ publish: [], subscribe: [], requireSignatures: false });

    const remove = await cli(['client', 'remove', 'billing', '--data-dir', dataDir]);
    expect(remove).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(ClientStore.open(dataDir).list().map((c) => c.id)).toEqual(['audit']);
  });

  it('lists an empty registry as [] without creating the data dir', async () => {
    expect(await cli(['client', 'list', '--data-dir', dataDir])).toEqual({ code: 0, stdout: '[]\n', stderr: '' });
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('uses the same data dir as start: --data-dir, then ENSYNC_DATA_DIR, then ./data under the cwd', async () => {
    expect((await cli(['client', 'add', 'a', '--public-key', newPublicKey()])).code).toBe(0);
    expect(ClientStore.open(path.join(tmp, 'data')).get('a')).toBeDefined();

    const env = { ENSYNC_DATA_DIR: 'from-env' };
    expect((await cli(['client', 'add', 'b', '--public-key', newPublicKey()], { env })).code).toBe(0);
    expect(ClientStore.open(path.join(tmp, 'from-env')).get('b')).toBeDefined();

    expect((await cli(['client', 'add', 'c', '--public-key', newPublicKey(), '--data-dir', 'flag'], { env })).code).toBe(0);
    expect(ClientStore.open(path.join(tmp, 'flag')).get('c')).toBeDefined();
    expect(ClientStore.open(path.join(tmp, 'from-env')).get('c')).toBeUndefined();
  });

  it('refuses a duplicate id with exit 1 unless --replace is given', async () => {
    const first = newPublicKey();
    expect((await cli(['client', 'add', 'billing', '--public-key', first, '--data-dir', dataDir])).code).toBe(0);
    const second = newPublicKey();
    const duplicate = await cli(['client', 'add', 'billing', '--public-key', second, '--data-dir', dataDir]);
    expectOneErrorLine(duplicate, 1, 'client "billing" already exists');
    expect(ClientStore.open(dataDir).get('billing')!.publicKey).toBe(first);

    expect((await cli(['client', 'add', 'billing', '--public-key', second, '--replace', '--data-dir', dataDir])).code).toBe(0);
    expect(ClientStore.open(dataDir).get('billing')!.publicKey).toBe(second);
  });

  it('refuses invalid values with exit 2, naming the argument, and writes nothing', async () => {
    const key = newPublicKey();
    const cases: Array<[string[], string]> = [
      [['add', 'billing', '--public-key', Buffer.alloc(31).toString('base64')], '--public-key: publicKey must decode to 32 bytes, got 31'],
      [['add', 'billing', '--public-key', 'not*base64'], '--public-key: publicKey must be the base64'],
      [['add', 'bad id', '--public-key', key], '<id>: client id must be'],
      [['add', 'billing', '--public-key', key, '--publish', 'orders/*x'], "--publish: publish: pattern \"orders/*x\" mixes '*'"],
      [['add', 'billing', '--public-key', key, '--subscribe', '**/x'], "--subscribe: subscribe: pattern \"**/x\" may use '**' only as its last segment"],
      [['add', 'billing'], 'client add needs --public-key <base64>'],
      [['add', '--public-key', key], 'client add needs <id>'],
      [['add', 'a', 'b', '--public-key', key], "client add takes one <id>, got 'b' as well"],
      [['add', 'a', '--public-key', key, '--public-key', key], '--public-key may be given only once'],
      [['add', 'a', '--public-key'], '--public-key needs a value <base64>'],
      [['add', 'a', '--public-key', '--publish', 'x'], "--public-key needs a value <base64>; for a value starting with '-'"],
      [['add', 'a', '--public-key', key, '--require-signatures=yes'], '--require-signatures does not take a value'],
      [['add', 'a', '--public-key', key, '--bogus'], "unknown flag '--bogus'"],
      [['list', 'extra'], "client list takes no arguments, got 'extra'"],
      [['list', '--publish', 'x'], "unknown flag '--publish'"],
      [['remove'], 'client remove needs <id>'],
      [['frobnicate'], "unknown client subcommand 'frobnicate'"],
      [[], 'client needs a subcommand: add, list or remove'],
    ];
    for (const [args, message] of cases) {
      const result = await cli(['client', ...args, '--data-dir', dataDir]);
      expectOneErrorLine(result, 2, message);
    }
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('fails with exit 1 for an unknown id on remove and for a corrupt registry file', async () => {
    expectOneErrorLine(await cli(['client', 'remove', 'ghost', '--data-dir', dataDir]), 1, 'client "ghost" is not in');
    fs.mkdirSync(dataDir);
    const file = path.join(dataDir, CLIENTS_FILE);
    fs.writeFileSync(file, '{"v":1,"clients":[{');
    expectOneErrorLine(await cli(['client', 'list', '--data-dir', dataDir]), 1, `client registry ${file} is corrupt`);
    expectOneErrorLine(await cli(['client', 'add', 'a', '--public-key', newPublicKey(), '--data-dir', dataDir]), 1, file);
    expect(fs.readFileSync(file, 'utf8')).toBe('{"v":1,"clients":[{');
  });

  it('prints its usage for client --help, client add -h and help client', async () => {
    for (const args of [['client', '--help'], ['client', 'add', '-h'], ['help', 'client']]) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout).toMatch(/^Usage: ensync-engine client <add\|list\|remove>/);
      expect(result.stdout).toContain('--public-key <base64>');
    }
    const top = await cli(['--help']);
    expect(top.stdout).toMatch(/\n {2}keygen {2}/);
    expect(top.stdout).toMatch(/\n {2}client {2}/);
  });

  it('a watching store (as the engine runs it) sees a client added by the CLI within a second', async () => {
    const watched = ClientStore.open(dataDir);
    let changes = 0;
    stops.push(watched.watch(() => changes++));
    expect((await cli(['client', 'add', 'late', '--public-key', newPublicKey(), '--data-dir', dataDir])).code).toBe(0);
    expect(await waitUntil(() => changes > 0, 2_000)).toBeLessThan(1_000);
    expect(watched.get('late')).toBeDefined();
  });

  it('works through the built binary', async () => {
    const keygen = await runEngineToExit(['keygen']);
    expect(keygen.code).toBe(0);
    const { publicKey } = JSON.parse(keygen.stdout) as { publicKey: string };
    const add = await runEngineToExit(['client', 'add', 'svc', '--public-key', publicKey, '--subscribe', '**', '--data-dir', dataDir]);
    expect(add.code, add.stderr).toBe(0);
    const list = await runEngineToExit(['client', 'list', '--data-dir', dataDir]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((c) => c.id)).toEqual(['svc']);
    const bad = await runEngineToExit(['client', 'add', 'x', '--public-key', 'AAAA', '--data-dir', dataDir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--public-key');
  });
});
