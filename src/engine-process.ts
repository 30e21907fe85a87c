/**
 * Composition root of one engine process: opens storage, starts the admin endpoint, and tears
 * both down in reverse order. Only the CLI imports this module.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Log } from '../native-free-storage/index.js';
import type { EngineConfig } from './config/engine-config.js';
import type { Logger } from './observability/logger.js';
import { startAdminServer, type AdminServer } from './server/admin-server.js';
import { healthRoute } from './server/health.js';

export interface EngineProcessOptions {
  config: EngineConfig;
  version: string;
  logger: Logger;
}

export class EngineProcess {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly log: Log,
    readonly admin: AdminServer,
    private readonly logger: Logger,
  ) {}

  static async start(options: EngineProcessOptions): Promise<EngineProcess> {
    const { config, logger } = options;
    const startedAtMs = Date.now();

    await mkdir(config.dataDir, { recursive: true });
    logger.info('data dir', { dataDir: config.dataDir });

    const logDir = path.join(config.dataDir, 'log');
    const log = await Log.open(logDir, {
      fsync: config.storage.fsync,
      fsyncIntervalMs: config.storage.fsyncIntervalMs,
    });
    logger.info('storage log opened', {
      dir: logDir,
      fsync: config.storage.fsync,
      fsyncIntervalMs: config.storage.fsyncIntervalMs,
      startOffset: log.startOffset,
      nextOffset: log.nextOffset,
      segments: log.segmentCount,
      bytes: log.sizeBytes,
    });
    logger.info('storage recovery', { ...log.recovery });

    let admin: AdminServer;
    try {
      admin = await startAdminServer({
        host: config.admin.host,
        port: config.admin.port,
        routes: [
          healthRoute({ version: options.version, dataDir: config.dataDir, startedAtMs, storage: log }),
        ],
        logger: logger.child({ component: 'admin' }),
      });
    } catch (err) {
      // Close the log cleanly so a failed start leaves a clean checkpoint, not a crash to recover from.
      await log.close();
      throw err;
    }
    const { host, port } = admin.address;
    logger.info('admin listening', { host, port, health: `http://${urlHost(host)}:${port}/health` });
    logger.info('client port configured', {
      host: config.client.host,
      port: config.client.port,
      listening: false,
      reason: 'the WebSocket front end is not part of this build yet',
    });

    return new EngineProcess(log, admin, logger);
  }

  /** Idempotent: admin server first (stop answering), then the log (flush + clean checkpoint). */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.logger.info('stopping');
    let firstError: unknown;
    try {
      await this.admin.close();
      this.logger.info('admin server closed');
    } catch (err) {
      firstError = err;
      this.logger.error('admin server close failed', { error: err instanceof Error ? err : String(err) });
    }
    try {
      await this.log.close();
      this.logger.info('storage log closed', { nextOffset: this.log.nextOffset });
    } catch (err) {
      firstError ??= err;
      this.logger.error('storage log close failed', { error: err instanceof Error ? err : String(err) });
    }
    if (firstError !== undefined) throw firstError;
  }
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
