import { Engine } from '../../src/engine/engine.js';
import type { EngineOptions } from '../../src/engine/engine-options.js';
import { generateSigningKeyPair } from '../../src/engine/signing.js';
import { ClientStore } from '../../src/registry/client-store.js';
import { ClientDirectory } from '../../src/server/client-directory.js';
import { DEFAULT_WS_LIMITS, WsServer } from '../../src/server/ws/ws-server.js';
import type { WsLimits } from '../../src/server/ws/ws-limits.js';
import { TempDirs } from './temp-dirs.js';

/** A registered client and the secret key it authenticates with (raw 32-byte Ed25519 seed). */
export interface TestClient {
  id: string;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** A real engine serving WebSocket clients on a free loopback port, on a temp data directory. */
export interface WsEngine {
  engine: Engine;
  server: WsServer;
  store: ClientStore;
  clients: ClientDirectory;
  dataDir: string;
  url: string;
  addClient(id: string, options?: { publish?: string[]; subscribe?: string[]; requireSignatures?: boolean }): TestClient;
}

/** Engines and servers for one test file; `cleanup()` (afterEach) stops them all and removes their directories. */
export class WsEngineHarness {
  private readonly dirs = new TempDirs();
  private readonly running: WsEngine[] = [];

  async start(options: { limits?: Partial<WsLimits>; engine?: Partial<EngineOptions>; dataDir?: string; tls?: { certFile: string; keyFile: string } } = {}): Promise<WsEngine> {
    const dataDir = options.dataDir ?? (await this.dirs.make('ws-engine-'));
    const engine = await Engine.open({ workers: 1, shards: 2, ...options.engine, dataDir });
    const store = ClientStore.open(dataDir);
    const clients = new ClientDirectory(store, engine, null);
    clients.watch(100);
    const server = await WsServer.start({ host: '127.0.0.1', port: 0, ...(options.tls ? { tls: options.tls } : {}), limits: { ...DEFAULT_WS_LIMITS, ...options.limits }, engine, clients, logger: null });
    const running: WsEngine = {
      engine,
      server,
      store,
      clients,
      dataDir,
      url: `ws://127.0.0.1:${server.port}/ws`,
      addClient(id, permissions = {}) {
        const { publicKey, secretKey } = generateSigningKeyPair();
        store.add({
          id,
          publicKey: Buffer.from(publicKey).toString('base64'),
          publish: permissions.publish ?? ['**'],
          subscribe: permissions.subscribe ?? ['**'],
          requireSignatures: permissions.requireSignatures ?? false,
          addedAt: Date.now(),
        });
        clients.reload();
        return { id, publicKey, secretKey };
      },
    };
    this.running.push(running);
    return running;
  }

  /** Stop one (to restart on its data directory). */
  async stop(running: WsEngine): Promise<void> {
    const i = this.running.indexOf(running);
    if (i >= 0) this.running.splice(i, 1);
    running.server.close();
    running.clients.close();
    await running.engine.close();
  }

  async cleanup(): Promise<void> {
    for (const running of this.running.splice(0).reverse()) {
      running.server.close();
      running.clients.close();
      await running.engine.close().catch(() => undefined);
    }
    await this.dirs.cleanup();
  }
}
