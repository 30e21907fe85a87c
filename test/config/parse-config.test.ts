import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import type { EngineConfig } from '../../src/config/engine-config.js';
import { parseConfig, type Env } from '../../src/config/parse-config.js';

const CWD = path.resolve('/srv/ensync');

function configOf(argv: string[], env: Env = {}): EngineConfig {
  const parsed = parseConfig(argv, env, CWD);
  if (parsed.kind !== 'config') throw new Error(`expected a config, got ${parsed.kind}`);
  return parsed.config;
}

function errorOf(argv: string[], env: Env = {}): ConfigError {
  try {
    parseConfig(argv, env, CWD);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify({ argv, env })}`);
}

describe('parseConfig defaults', () => {
  it('uses ./data under the cwd, 8080/0.0.0.0 for clients, 127.0.0.1:9090 for admin, interval fsync', () => {
    expect(configOf([])).toEqual({
      dataDir: path.join(CWD, 'data'),
      client: { host: '0.0.0.0', port: 8080 },
      admin: { host: '127.0.0.1', port: 9090 },
      storage: { fsync: 'interval', fsyncIntervalMs: 5 },
      logLevel: 'info',
      limits: { maxPayloadBytes: 1048576, maxFrameBytes: 2097152, maxSubscriptionsPerConnection: 64, maxConnectionsPerClient: 100 },
    });
  });

  it('refuses a limit out of its range, naming the flag', () => {
    expect(() => configOf(['--max-frame-bytes', '10'])).toThrow(/--max-frame-bytes must be an integer from 1024 to/);
    expect(() => configOf(['--max-connections-per-client', 'many'])).toThrow(/--max-connections-per-client/);
    expect(() => configOf([], { ENSYNC_MAX_PAYLOAD_BYTES: '0' })).toThrow(/ENSYNC_MAX_PAYLOAD_BYTES/);
  });

  it('treats empty env vars as unset', () => {
    expect(configOf([], { ENSYNC_PORT: '', ENSYNC_DATA_DIR: '' })).toEqual(configOf([]));
  });
});

describe('parseConfig flags', () => {
  it('reads every flag, in both --flag value and --flag=value form', () => {
    const config = configOf([
      '--data-dir', 'var/ensync',
      '--port=8181',
      '--admin-port', '0',
      '--host', '::',
      '--admin-host=localhost',
      '--fsync', 'always',
      '--fsync-interval-ms=20',
      '--max-payload-bytes', '2048',
      '--max-frame-bytes=65536',
      '--max-subscriptions-per-connection', '7',
      '--max-connections-per-client=9',
    ]);
    expect(config).toEqual({
      dataDir: path.join(CWD, 'var', 'ensync'),
      client: { host: '::', port: 8181 },
      admin: { host: 'localhost', port: 0 },
      storage: { fsync: 'always', fsyncIntervalMs: 20 },
      logLevel: 'info',
      limits: { maxPayloadBytes: 2048, maxFrameBytes: 65536, maxSubscriptionsPerConnection: 7, maxConnectionsPerClient: 9 },
    });
  });

  it('keeps an absolute data dir as given', () => {
    const abs = path.resolve('/mnt/disk/ensync');
    expect(configOf(['--data-dir', abs]).dataDir).toBe(abs);
  });

  it('lets the last repetition of a flag win', () => {
    expect(configOf(['--port', '1000', '--port', '2000']).client.port).toBe(2000);
  });

  it('accepts the port bounds 0 and 65535', () => {
    expect(configOf(['--port', '0', '--admin-port', '65535'])).toMatchObject({
      client: { port: 0 },
      admin: { port: 65535 },
    });
  });

  it('returns help for --help and -h, even with other flags', () => {
    expect(parseConfig(['--help'], {}, CWD)).toEqual({ kind: 'help' });
    expect(parseConfig(['--port', '1', '-h'], {}, CWD)).toEqual({ kind: 'help' });
  });
});

describe('parseConfig env vars and precedence', () => {
  const env: Env = {
    ENSYNC_DATA_DIR: '/env/data',
    ENSYNC_PORT: '7000',
    ENSYNC_ADMIN_PORT: '7001',
    ENSYNC_HOST: '10.0.0.1',
    ENSYNC_ADMIN_HOST: '10.0.0.2',
    ENSYNC_FSYNC: 'never',
    ENSYNC_FSYNC_INTERVAL_MS: '50',
    ENSYNC_MAX_PAYLOAD_BYTES: '1000',
    ENSYNC_MAX_FRAME_BYTES: '4096',
    ENSYNC_MAX_SUBSCRIPTIONS_PER_CONNECTION: '3',
    ENSYNC_MAX_CONNECTIONS_PER_CLIENT: '4',
  };

  it('reads every env var', () => {
    expect(configOf([], env)).toEqual({
      dataDir: path.resolve(CWD, '/env/data'),
      client: { host: '10.0.0.1', port: 7000 },
      admin: { host: '10.0.0.2', port: 7001 },
      storage: { fsync: 'never', fsyncIntervalMs: 50 },
      logLevel: 'info',
      limits: { maxPayloadBytes: 1000, maxFrameBytes: 4096, maxSubscriptionsPerConnection: 3, maxConnectionsPerClient: 4 },
    });
  });

  it('prefers flags over env vars, setting by setting', () => {
    const config = configOf(['--port', '7100', '--fsync', 'always'], env);
    expect(config.client.port).toBe(7100);
    expect(config.storage.fsync).toBe('always');
    // Settings without a flag still come from the environment.
    expect(config.admin.port).toBe(7001);
    expect(config.storage.fsyncIntervalMs).toBe(50);
  });

  it('ignores env vars it does not know', () => {
    expect(configOf([], { ENSYNC_PORTS: '1', PORT: '2' }).client.port).toBe(8080);
  });
});

describe('parseConfig errors', () => {
  it.each([
    [['--port', 'abc'], 'INVALID_PORT', "--port must be an integer from 0 to 65535 (got 'abc')"],
    [['--port', '65536'], 'INVALID_PORT', "--port must be an integer from 0 to 65535 (got '65536')"],
    [['--admin-port=-1'], 'INVALID_PORT', "--admin-port must be an integer from 0 to 65535 (got '-1')"],
    [['--port', '80.5'], 'INVALID_PORT', "--port must be an integer from 0 to 65535 (got '80.5')"],
    [['--port', '1e3'], 'INVALID_PORT', "--port must be an integer from 0 to 65535 (got '1e3')"],
    [['--fsync', 'sometimes'], 'INVALID_FSYNC_POLICY', "--fsync must be one of always, interval, never (got 'sometimes')"],
    [['--fsync-interval-ms', '0'], 'INVALID_FSYNC_INTERVAL', "--fsync-interval-ms must be an integer from 1 to 60000 (got '0')"],
    [['--fsync-interval-ms', '60001'], 'INVALID_FSYNC_INTERVAL', "--fsync-interval-ms must be an integer from 1 to 60000 (got '60001')"],
    [['--host', 'not a host'], 'INVALID_HOST', "--host must be an IP address or host name (got 'not a host')"],
    [['--data-dir', '  '], 'INVALID_DATA_DIR', '--data-dir must be a non-empty path'],
    [['--verbose'], 'UNKNOWN_FLAG', "unknown flag '--verbose'"],
    [['-x'], 'UNKNOWN_FLAG', "unknown flag '-x'"],
    [['extra'], 'UNEXPECTED_ARGUMENT', "unexpected argument 'extra'"],
    [['--help=yes'], 'UNEXPECTED_ARGUMENT', '--help does not take a value'],
    [['--port'], 'MISSING_VALUE', '--port needs a value <port>'],
  ] as const)('%j -> %s', (argv, code, message) => {
    const err = errorOf([...argv]);
    expect(err.code).toBe(code);
    expect(err.message).toBe(message);
  });

  it('refuses to take the next flag as a value', () => {
    const err = errorOf(['--data-dir', '--port', '1']);
    expect(err.code).toBe('MISSING_VALUE');
    expect(err.message).toMatch(/^--data-dir needs a value <path>/);
  });

  it('names the env var when the bad value came from the environment', () => {
    const err = errorOf([], { ENSYNC_ADMIN_PORT: 'ninety' });
    expect(err.code).toBe('INVALID_PORT');
    expect(err.message).toBe("ENSYNC_ADMIN_PORT must be an integer from 0 to 65535 (got 'ninety')");
    expect(errorOf([], { ENSYNC_FSYNC: 'ALWAYS' }).message).toMatch(/^ENSYNC_FSYNC must be one of/);
  });

  it('does not validate an env var that a valid flag overrides', () => {
    expect(configOf(['--port', '8082'], { ENSYNC_PORT: 'junk' }).client.port).toBe(8082);
  });

  it('produces one-line messages', () => {
    for (const argv of [['--nope'], ['--port', '-5'], ['--fsync', 'x']]) {
      expect(errorOf(argv).message).not.toContain('\n');
    }
  });
});
