/**
 * The single table of engine settings: flag, mirroring env var, default and meaning.
 * Parsing, `--help` output and the README table are all derived from (or checked against) this list.
 */
import { CONFIG_DEFAULTS, FSYNC_POLICIES } from './engine-config.js';

export type ConfigKey =
  | 'dataDir'
  | 'clientPort'
  | 'adminPort'
  | 'clientHost'
  | 'adminHost'
  | 'fsync'
  | 'fsyncIntervalMs'
  | 'tlsCert'
  | 'tlsKey'
  | 'adminToken'
  | 'config'
  | 'logLevel'
  | 'maxPayloadBytes'
  | 'maxFrameBytes'
  | 'maxSubscriptionsPerConnection'
  | 'maxConnectionsPerClient';

export interface ConfigOptionSpec {
  key: ConfigKey;
  /** Long flag name without the leading dashes. */
  flag: string;
  env: string;
  valueName: string;
  defaultValue: string;
  description: string;
}

export const CONFIG_OPTIONS: readonly ConfigOptionSpec[] = [
  {
    key: 'config',
    flag: 'config',
    env: 'ENSYNC_CONFIG',
    valueName: 'file',
    defaultValue: '',
    description: 'JSON file of settings keyed by flag name (flags and env vars win over it)',
  },
  {
    key: 'dataDir',
    flag: 'data-dir',
    env: 'ENSYNC_DATA_DIR',
    valueName: 'path',
    defaultValue: CONFIG_DEFAULTS.dataDir,
    description: 'data directory (created if missing)',
  },
  {
    key: 'clientPort',
    flag: 'port',
    env: 'ENSYNC_PORT',
    valueName: 'port',
    defaultValue: String(CONFIG_DEFAULTS.clientPort),
    description: 'client (WebSocket) port, 0-65535',
  },
  {
    key: 'clientHost',
    flag: 'host',
    env: 'ENSYNC_HOST',
    valueName: 'host',
    defaultValue: CONFIG_DEFAULTS.clientHost,
    description: 'client (WebSocket) bind address',
  },
  {
    key: 'adminPort',
    flag: 'admin-port',
    env: 'ENSYNC_ADMIN_PORT',
    valueName: 'port',
    defaultValue: String(CONFIG_DEFAULTS.adminPort),
    description: 'admin HTTP port (GET /health), 0 picks a free port',
  },
  {
    key: 'adminHost',
    flag: 'admin-host',
    env: 'ENSYNC_ADMIN_HOST',
    valueName: 'host',
    defaultValue: CONFIG_DEFAULTS.adminHost,
    description: 'admin HTTP bind address',
  },
  {
    key: 'fsync',
    flag: 'fsync',
    env: 'ENSYNC_FSYNC',
    valueName: FSYNC_POLICIES.join('|'),
    defaultValue: CONFIG_DEFAULTS.fsync,
    description: 'when the storage log fsyncs appended records',
  },
  {
    key: 'fsyncIntervalMs',
    flag: 'fsync-interval-ms',
    env: 'ENSYNC_FSYNC_INTERVAL_MS',
    valueName: 'ms',
    defaultValue: String(CONFIG_DEFAULTS.fsyncIntervalMs),
    description: "group-commit window for --fsync interval, 1-60000",
  },
  {
    key: 'tlsCert',
    flag: 'tls-cert',
    env: 'ENSYNC_TLS_CERT',
    valueName: 'file',
    defaultValue: '',
    description: 'PEM certificate: serve wss:// (with --tls-key)',
  },
  {
    key: 'tlsKey',
    flag: 'tls-key',
    env: 'ENSYNC_TLS_KEY',
    valueName: 'file',
    defaultValue: '',
    description: 'PEM private key of --tls-cert',
  },
  {
    key: 'adminToken',
    flag: 'admin-token',
    env: 'ENSYNC_ADMIN_TOKEN',
    valueName: 'token',
    defaultValue: '',
    description: 'bearer token of the admin endpoints (default: kept in the data dir)',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'ENSYNC_LOG_LEVEL',
    valueName: 'debug|info|warn|error',
    defaultValue: 'info',
    description: 'least severe log lines written',
  },
  {
    key: 'maxPayloadBytes',
    flag: 'max-payload-bytes',
    env: 'ENSYNC_MAX_PAYLOAD_BYTES',
    valueName: 'n',
    defaultValue: String(CONFIG_DEFAULTS.maxPayloadBytes),
    description: 'largest event payload, bytes, 1-67108864',
  },
  {
    key: 'maxFrameBytes',
    flag: 'max-frame-bytes',
    env: 'ENSYNC_MAX_FRAME_BYTES',
    valueName: 'n',
    defaultValue: String(CONFIG_DEFAULTS.maxFrameBytes),
    description: 'largest WebSocket frame a client may send, bytes, 1024-268435456',
  },
  {
    key: 'maxSubscriptionsPerConnection',
    flag: 'max-subscriptions-per-connection',
    env: 'ENSYNC_MAX_SUBSCRIPTIONS_PER_CONNECTION',
    valueName: 'n',
    defaultValue: String(CONFIG_DEFAULTS.maxSubscriptionsPerConnection),
    description: 'subscriptions one connection may hold, 1-100000',
  },
  {
    key: 'maxConnectionsPerClient',
    flag: 'max-connections-per-client',
    env: 'ENSYNC_MAX_CONNECTIONS_PER_CLIENT',
    valueName: 'n',
    defaultValue: String(CONFIG_DEFAULTS.maxConnectionsPerClient),
    description: 'connections one client may hold, 1-1000000',
  },
];
