/**
 * Pure configuration parsing: argv + env (+ the cwd that relative paths resolve against) in,
 * typed EngineConfig out, or a ConfigError. Precedence: flag > env var > default. The only I/O:
 * TLS files are checked to be readable.
 */
import fs from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from './config-error.js';
import { CONFIG_OPTIONS, type ConfigKey, type ConfigOptionSpec } from './config-options.js';
import {
  CONFIG_DEFAULTS,
  LIMIT_RANGES,
  FSYNC_POLICIES,
  MAX_FSYNC_INTERVAL_MS,
  type EngineConfig,
  type FsyncPolicy,
} from './engine-config.js';

export type Env = Readonly<Record<string, string | undefined>>;

export type ParsedStartArgs = { kind: 'help' } | { kind: 'config'; config: EngineConfig };

/** A raw setting plus where it came from, so error messages can name the flag or the env var. */
interface RawValue {
  value: string;
  source: string;
  /** What relative paths resolve against (the config file's folder for values from it). */
  base?: string;
}

const HELP_FLAG = 'help';

export function parseConfig(argv: readonly string[], env: Env, cwd: string): ParsedStartArgs {
  const flags = readFlags(argv);
  if (flags === 'help') return { kind: 'help' };

  const fromFlagOrEnv = (key: ConfigKey): RawValue | undefined => {
    const spec = specFor(key);
    const fromFlag = flags.get(spec.flag);
    if (fromFlag !== undefined) return { value: fromFlag, source: `--${spec.flag}` };
    const fromEnv = env[spec.env];
    // An empty env var counts as unset, so `ENSYNC_PORT= npm start` behaves like no variable at all.
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: spec.env };
    return undefined;
  };
  const configFile = fromFlagOrEnv('config');
  const file = configFile ? readConfigFile(path.resolve(cwd, configFile.value), configFile.source) : null;
  const raw = (key: ConfigKey): RawValue | undefined => {
    const given = fromFlagOrEnv(key);
    if (given || !file) return given;
    const spec = specFor(key);
    const value = file.values.get(spec.flag);
    return value === undefined ? undefined : { value, source: `${spec.flag} in ${file.path}`, base: path.dirname(file.path) };
  };

  const config: EngineConfig = {
    dataDir: parseDataDir(raw('dataDir'), cwd),
    logLevel: parseLogLevel(raw('logLevel')),
    client: {
      host: parseHost(raw('clientHost'), CONFIG_DEFAULTS.clientHost),
      port: parsePort(raw('clientPort'), CONFIG_DEFAULTS.clientPort),
    },
    admin: {
      host: parseHost(raw('adminHost'), CONFIG_DEFAULTS.adminHost),
      port: parsePort(raw('adminPort'), CONFIG_DEFAULTS.adminPort),
    },
    storage: {
      fsync: parseFsync(raw('fsync')),
      fsyncIntervalMs: parseFsyncInterval(raw('fsyncIntervalMs')),
    },
    limits: {
      maxPayloadBytes: parseLimit(raw('maxPayloadBytes'), 'maxPayloadBytes'),
      maxFrameBytes: parseLimit(raw('maxFrameBytes'), 'maxFrameBytes'),
      maxSubscriptionsPerConnection: parseLimit(raw('maxSubscriptionsPerConnection'), 'maxSubscriptionsPerConnection'),
      maxConnectionsPerClient: parseLimit(raw('maxConnectionsPerClient'), 'maxConnectionsPerClient'),
    },
  };
  const adminToken = raw('adminToken');
  if (adminToken) {
    if (adminToken.value.length < 16) throw new ConfigError('INVALID_ADMIN_TOKEN', `${adminToken.source} must be at least 16 characters`);
    config.adminToken = adminToken.value;
  }
  const tls = parseTls(raw('tlsCert'), raw('tlsKey'), cwd);
  if (tls) config.tls = tls;
  return { kind: 'config', config };
}

/**
 * Reads flags token by token (parseArgs in non-strict mode) so every mistake gets our own
 * one-line message instead of Node's multi-line one.
 */
function readFlags(argv: readonly string[]): Map<string, string> | 'help' {
  const { tokens } = parseArgs({
    args: [...argv],
    options: {
      ...Object.fromEntries(CONFIG_OPTIONS.map((o) => [o.flag, { type: 'string' as const }])),
      [HELP_FLAG]: { type: 'boolean', short: 'h' },
    },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });

  const values = new Map<string, string>();
  let help = false;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      throw new ConfigError('UNEXPECTED_ARGUMENT', `unexpected argument '${token.value}'`);
    }
    if (token.name === HELP_FLAG) {
      if (token.value !== undefined) {
        throw new ConfigError('UNEXPECTED_ARGUMENT', `${token.rawName} does not take a value`);
      }
      help = true;
      continue;
    }
    const spec = CONFIG_OPTIONS.find((o) => o.flag === token.name);
    if (spec === undefined || token.rawName !== `--${spec.flag}`) {
      throw new ConfigError('UNKNOWN_FLAG', `unknown flag '${token.rawName}'`);
    }
    if (token.value === undefined) {
      throw new ConfigError('MISSING_VALUE', `${token.rawName} needs a value <${spec.valueName}>`);
    }
    // `--data-dir --port 1` would otherwise silently take "--port" as the directory.
    if (!token.inlineValue && token.value.startsWith('-')) {
      throw new ConfigError(
        'MISSING_VALUE',
        `${token.rawName} needs a value <${spec.valueName}>; for a value starting with '-' write ${token.rawName}=${token.value}`,
      );
    }
    values.set(spec.flag, token.value);
  }
  return help ? 'help' : values;
}

function specFor(key: ConfigKey): ConfigOptionSpec {
  const spec = CONFIG_OPTIONS.find((o) => o.key === key);
  if (spec === undefined) throw new Error(`no option spec for ${key}`);
  return spec;
}

/** Both files or neither; each must be readable now (the server would fail later with less to say). */
function parseTls(cert: RawValue | undefined, key: RawValue | undefined, cwd: string): EngineConfig['tls'] {
  if (!cert && !key) return undefined;
  if (!cert || !key) throw new ConfigError('INVALID_TLS', `${cert ? '--tls-key' : '--tls-cert'} is needed too: TLS takes a certificate and its key`);
  const file = (raw: RawValue) => {
    const resolved = path.resolve(raw.base ?? cwd, raw.value);
    try {
      fs.accessSync(resolved, fs.constants.R_OK);
    } catch {
      throw new ConfigError('INVALID_TLS', `${raw.source}: cannot read ${resolved}`);
    }
    return resolved;
  };
  return { certFile: file(cert), keyFile: file(key) };
}

function parseDataDir(raw: RawValue | undefined, cwd: string): string {
  const value = raw?.value ?? CONFIG_DEFAULTS.dataDir;
  if (value.trim() === '' || value.includes('\0')) {
    throw new ConfigError('INVALID_DATA_DIR', `${raw?.source ?? 'data dir'} must be a non-empty path`);
  }
  return path.resolve(raw?.base ?? cwd, value);
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

function parseLogLevel(raw: RawValue | undefined): EngineConfig['logLevel'] {
  if (raw === undefined) return 'info';
  const level = LOG_LEVELS.find((l) => l === raw.value);
  if (!level) throw new ConfigError('INVALID_LOG_LEVEL', `${raw.source} must be one of ${LOG_LEVELS.join(', ')} (got '${raw.value}')`);
  return level;
}

/**
 * A JSON file of settings keyed by flag name (`{"port": 8081, "data-dir": "data"}`). Every key must
 * be a known setting and every value a string, number or boolean; relative paths in it resolve
 * against the file's folder.
 */
function readConfigFile(file: string, source: string): { path: string; values: Map<string, string> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError('INVALID_CONFIG_FILE', `${source}: cannot read ${file} as JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('INVALID_CONFIG_FILE', `${source}: ${file} must hold a JSON object of settings`);
  }
  const values = new Map<string, string>();
  for (const [key, value] of Object.entries(parsed)) {
    const spec = CONFIG_OPTIONS.find((o) => o.flag === key);
    if (!spec || spec.key === 'config') {
      throw new ConfigError('INVALID_CONFIG_FILE', `${file}: unknown setting "${key}" (settings are named like the flags: ${CONFIG_OPTIONS.filter((o) => o.key !== 'config').map((o) => o.flag).join(', ')})`);
    }
    if (!['string', 'number', 'boolean'].includes(typeof value)) {
      throw new ConfigError('INVALID_CONFIG_FILE', `${file}: "${key}" must be a string or a number`);
    }
    values.set(key, String(value));
  }
  return { path: file, values };
}

function parsePort(raw: RawValue | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const port = /^\d{1,5}$/.test(raw.value) ? Number(raw.value) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new ConfigError(
      'INVALID_PORT',
      `${raw.source} must be an integer from 0 to 65535 (got '${raw.value}')`,
    );
  }
  return port;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function parseHost(raw: RawValue | undefined, fallback: string): string {
  if (raw === undefined) return fallback;
  if (isIP(raw.value) === 0 && !HOSTNAME.test(raw.value)) {
    throw new ConfigError(
      'INVALID_HOST',
      `${raw.source} must be an IP address or host name (got '${raw.value}')`,
    );
  }
  return raw.value;
}

function parseFsync(raw: RawValue | undefined): FsyncPolicy {
  if (raw === undefined) return CONFIG_DEFAULTS.fsync;
  const policy = FSYNC_POLICIES.find((p) => p === raw.value);
  if (policy === undefined) {
    throw new ConfigError(
      'INVALID_FSYNC_POLICY',
      `${raw.source} must be one of ${FSYNC_POLICIES.join(', ')} (got '${raw.value}')`,
    );
  }
  return policy;
}

function parseLimit(raw: RawValue | undefined, key: keyof typeof LIMIT_RANGES): number {
  if (raw === undefined) return CONFIG_DEFAULTS[key];
  const [low, high] = LIMIT_RANGES[key];
  const n = /^\d{1,10}$/.test(raw.value) ? Number(raw.value) : Number.NaN;
  if (!(n >= low && n <= high)) throw new ConfigError('INVALID_LIMIT', `${raw.source} must be an integer from ${low} to ${high} (got '${raw.value}')`);
  return n;
}

function parseFsyncInterval(raw: RawValue | undefined): number {
  if (raw === undefined) return CONFIG_DEFAULTS.fsyncIntervalMs;
  const ms = /^\d{1,6}$/.test(raw.value) ? Number(raw.value) : Number.NaN;
  if (!(ms >= 1 && ms <= MAX_FSYNC_INTERVAL_MS)) {
    throw new ConfigError(
      'INVALID_FSYNC_INTERVAL',
      `${raw.source} must be an integer from 1 to ${MAX_FSYNC_INTERVAL_MS} (got '${raw.value}')`,
    );
  }
  return ms;
}
