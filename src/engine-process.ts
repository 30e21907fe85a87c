/**
 * Composition root of one engine process: opens the engine on the data directory, loads the client
 * registry (creating the development client on a fresh directory), serves WebSocket clients and
 * the admin endpoint, and tears everything down in reverse order. Only the CLI imports this module.
 */
import { mkdir } from 'node:fs/promises';
import type { EngineConfig } from './config/engine-config.js';
import { Engine } from './engine/engine.js';
import type { Logger } from './observability/logger.js';
import { WorkBoard } from './observability/work-progress.js';
import { ClientStore } from './registry/client-store.js';
import { ensureDevClient } from './registry/dev-credentials.js';
import { resolveAdminToken } from './registry/admin-token.js';
import { startAdminServer, type AdminServer } from './server/admin-server.js';
import { ClientDirectory } from './server/client-directory.js';
import { healthRoute, type HealthSource } from './server/health.js';
import { adminRoutes } from './server/admin-routes.js';
import { monitoringRoutes } from './server/monitoring-routes.js';
import { DEFAULT_WS_LIMITS, WsServer } from './server/ws/ws-server.js';

export interface EngineProcessOptions {
  config: EngineConfig;
  version: string;
  logger: Logger;
}

export class EngineProcess {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly engine: Engine,
    readonly clients: ClientDirectory,
    readonly ws: WsServer,
    readonly admin: AdminServer,
    private readonly logger: Logger,
  ) {}

  static async start(options: EngineProcessOptions): Promise<EngineProcess> {
    const { config, logger } = options;
    const startedAtMs = Date.now();
    await mkdir(config.dataDir, { recursive: true });
    logger.info('data dir', { dataDir: config.dataDir });

    // The admin port opens first, with /health only: opening the engine may mean recovering large
    // logs, and operators follow that in /health (and in the log) while the rest answers 503.
    const work = new WorkBoard(logger.child({ component: 'engine' }));
    const health: HealthSource = {
      version: options.version,
      dataDir: config.dataDir,
      startedAtMs,
      shardStats: null,
      websocket: () => null,
      work: () => work.view(),
    };
    // The development client first: its credentials file is where a created admin token is kept too.
    const store = ClientStore.open(config.dataDir);
    const dev = ensureDevClient(config.dataDir, store);
    if (dev.created) logger.info('created the development client (allowed every type); its credentials are here', { file: dev.file });
    const token = resolveAdminToken(config.dataDir, config.adminToken);
    if (token.created) logger.info('created the admin token', { file: token.file });
    else logger.info('admin token', { from: token.from, ...(token.file ? { file: token.file } : {}) });
    const admin = await startAdminServer({
      adminToken: token.token,
      host: config.admin.host,
      port: config.admin.port,
      routes: [healthRoute(health)],
      moreRoutesComing: true,
      logger: logger.child({ component: 'admin' }),
    });
    const opened: Array<() => Promise<void> | void> = [() => admin.close()];
    const undo = async () => {
      for (const step of opened.reverse()) await step();
    };
    try {
      const { host: adminHost, port: adminPort } = admin.address;
      logger.info('admin listening', { host: adminHost, port: adminPort, health: `http://${urlHost(adminHost)}:${adminPort}/health` });

      const engine = await Engine.open({
        dataDir: config.dataDir,
        fsync: config.storage.fsync,
        fsyncIntervalMs: config.storage.fsyncIntervalMs,
        maxPayloadBytes: config.limits.maxPayloadBytes,
        logger: logger.child({ component: 'engine' }),
        workBoard: work,
      });
      opened.push(() => engine.close());
      logger.info('engine opened', { shards: engine.options.shards, workers: engine.options.workers, fsync: config.storage.fsync });
      const clients = new ClientDirectory(store, engine, logger.child({ component: 'registry' }));
      clients.watch();
      opened.push(() => clients.close());
      logger.info('clients loaded', { clients: clients.size, file: store.file });

      const ws = await WsServer.start({
        host: config.client.host,
        port: config.client.port,
        ...(config.tls ? { tls: config.tls } : {}),
        limits: {
          ...DEFAULT_WS_LIMITS,
          maxPayloadBytes: engine.options.maxPayloadBytes,
          publishWindow: engine.options.publishWindow,
          maxFrameBytes: Math.max(config.limits.maxFrameBytes, engine.options.maxPayloadBytes + 64 * 1024),
          maxSubscriptionsPerConnection: config.limits.maxSubscriptionsPerConnection,
          maxConnectionsPerClient: config.limits.maxConnectionsPerClient,
        },
        engine,
        clients,
        logger: logger.child({ component: 'ws' }),
      });
      opened.push(() => ws.close());
      const backend = { backend: ws.backend.kind, detail: ws.backend.detail };
      if (ws.backend.kind === 'native') logger.info('uWebSockets.js loaded', backend);
      else logger.warn('uWebSockets.js native binary did not load: serving with its slow JavaScript fallback', backend);
      logger.info('client port listening', { host: config.client.host, port: ws.port, url: `${ws.tls ? 'wss' : 'ws'}://${urlHost(config.client.host)}:${ws.port}/ws` });

      health.websocket = () => ({ backend: ws.backend.kind, detail: ws.backend.detail, port: ws.port, tls: ws.tls, connections: ws.connectionCount });
      health.shardStats = () => engine.shardStats();
      admin.serve([
        ...adminRoutes({ engine, store, clients, sessions: ws.sessions, logger: logger.child({ component: 'admin' }) }),
        ...monitoringRoutes({ engine, store, sessions: ws.sessions }),
      ]);
      return new EngineProcess(engine, clients, ws, admin, logger);
    } catch (error) {
      await undo();
      throw error;
    }
  }

  /** Idempotent: stop accepting clients, then the admin endpoint, then the engine (flush, checkpoints). */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.logger.info('stopping');
    let firstError: unknown;
    const step = async (name: string, run: () => Promise<void> | void) => {
      try {
        await run();
        this.logger.info(`${name} closed`);
      } catch (error) {
        firstError ??= error;
        this.logger.error(`${name} close failed`, { error: error instanceof Error ? error : String(error) });
      }
    };
    await step('client port', () => this.ws.close());
    await step('admin server', () => this.admin.close());
    await step('client registry watch', () => this.clients.close());
    await step('engine', () => this.engine.close());
    if (firstError !== undefined) throw firstError;
  }
}

function urlHost(host: string): string {
  return host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
}
