import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse-config.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ensync-config-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function configOf(argv: string[], env: Record<string, string> = {}) {
  const parsed = parseConfig(argv, env, '/elsewhere');
  if (parsed.kind !== 'config') throw new Error('expected a config');
  return parsed.config;
}

describe('--config file', () => {
  it('reads settings named like the flags, below flags and env vars; relative paths resolve against its folder', () => {
    const file = write('engine.json', { port: 8181, 'data-dir': 'state', 'log-level': 'warn', fsync: 'always', 'max-connections-per-client': 7 });
    const config = configOf(['--config', file]);
    expect(config).toMatchObject({ client: { port: 8181 }, dataDir: path.join(dir, 'state'), logLevel: 'warn', storage: { fsync: 'always' }, limits: { maxConnectionsPerClient: 7 } });
    expect(configOf(['--config', file], { ENSYNC_PORT: '9000' }).client.port).toBe(9000);
    expect(configOf(['--config', file, '--port', '9100'], { ENSYNC_PORT: '9000' }).client.port).toBe(9100);
    expect(configOf([], { ENSYNC_CONFIG: file }).client.port).toBe(8181);
  });

  it('refuses a bad file with a message naming the file and the setting', () => {
    expect(() => configOf(['--config', path.join(dir, 'missing.json')])).toThrow(/--config: cannot read .*missing\.json as JSON/);
    expect(() => configOf(['--config', write('bad.json', '{ not json')])).toThrow(/as JSON/);
    expect(() => configOf(['--config', write('array.json', [1])])).toThrow(/must hold a JSON object/);
    expect(() => configOf(['--config', write('unknown.json', { colour: 'red' })])).toThrow(/unknown setting "colour"/);
    expect(() => configOf(['--config', write('nested.json', { port: { n: 1 } })])).toThrow(/"port" must be a string or a number/);
    expect(() => configOf(['--config', write('badport.json', { port: 70000 })])).toThrow(/port in .*badport\.json must be an integer from 0 to 65535/);
  });
});

describe('--log-level', () => {
  it('takes debug, info, warn or error', () => {
    expect(configOf([]).logLevel).toBe('info');
    expect(configOf(['--log-level', 'debug']).logLevel).toBe('debug');
    expect(configOf([], { ENSYNC_LOG_LEVEL: 'error' }).logLevel).toBe('error');
    expect(() => configOf(['--log-level', 'loud'])).toThrow(/--log-level must be one of debug, info, warn, error/);
  });
});
