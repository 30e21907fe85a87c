/** The typed configuration of one engine process, after flags, env and defaults have been merged. */

export const FSYNC_POLICIES = ['always', 'interval', 'never'] as const;
export type FsyncPolicy = (typeof FSYNC_POLICIES)[number];

export interface ListenAddress {
  host: string;
  /** 0 asks the OS for a free port; the process logs the port it actually bound. */
  port: number;
}

export interface EngineConfig {
  /** Absolute path of the data directory. */
  dataDir: string;
  /** Where WebSocket clients connect (path /ws). */
  client: ListenAddress;
  /** Explicit bounds, each answered with a clear error when passed. */
  limits: { maxPayloadBytes: number; maxFrameBytes: number; maxSubscriptionsPerConnection: number; maxConnectionsPerClient: number };
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Bearer token of the management interface; absent: the one kept in the data directory. */
  adminToken?: string;
  /** Serve wss:// with this certificate and key (PEM files); absent: plain ws://. */
  tls?: { certFile: string; keyFile: string };
  /** Management interface (health, metrics, admin actions). Loopback by default: never exposed with the client port by accident. */
  admin: ListenAddress;
  storage: {
    fsync: FsyncPolicy;
    fsyncIntervalMs: number;
  };
}

export const CONFIG_DEFAULTS = {
  dataDir: './data',
  clientHost: '0.0.0.0',
  clientPort: 8080,
  adminHost: '127.0.0.1',
  adminPort: 9090,
  fsync: 'interval' as FsyncPolicy,
  fsyncIntervalMs: 5,
  maxPayloadBytes: 1048576,
  maxFrameBytes: 2097152,
  maxSubscriptionsPerConnection: 64,
  maxConnectionsPerClient: 100,
} as const;

/** Bounds of the numeric limits (inclusive). */
export const LIMIT_RANGES = {
  maxPayloadBytes: [1, 67108864],
  maxFrameBytes: [1024, 268435456],
  maxSubscriptionsPerConnection: [1, 100000],
  maxConnectionsPerClient: [1, 1000000],
} as const;

/** Upper bound for the group-commit window: longer windows would hold appends for seconds. */
export const MAX_FSYNC_INTERVAL_MS = 60_000;
