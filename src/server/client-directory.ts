import type { Engine } from '../engine/engine.js';
import type { EngineError } from '../engine/errors.js';
import type { Logger } from '../observability/logger.js';
import { ClientPermissions } from '../registry/client-permissions.js';
import { clientIdentityOf, type ClientRecord } from '../registry/client-record.js';
import type { ClientStore } from '../registry/client-store.js';
import { decodePublicKey } from '../registry/client-record.js';

/** A registered client as the front end needs it: its key and what it may do. */
export interface KnownClient {
  record: ClientRecord;
  publicKey: Uint8Array;
  permissions: ClientPermissions;
}

/**
 * The registered clients, kept in step with the durable registry: loaded at start, then reloaded
 * when the CLI changes the file (polled), and mirrored into the engine's client registry.
 */
export class ClientDirectory {
  private clients = new Map<string, KnownClient>();
  private stopWatching: (() => void) | null = null;

  constructor(
    private readonly store: ClientStore,
    private readonly engine: Engine,
    private readonly logger: Logger | null,
  ) {
    this.load();
  }

  get(id: string): KnownClient | undefined {
    return this.clients.get(id);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Pick up registry changes made while running (by the CLI) within `intervalMs`. */
  watch(intervalMs = 500): void {
    this.stopWatching ??= this.store.watch(
      () => {
        this.load();
        this.logger?.info('client registry reloaded', { clients: this.clients.size });
      },
      intervalMs,
      (error: EngineError) => this.logger?.error('client registry unreadable; keeping the clients loaded before', { error: error.message }),
    );
  }

  /** Re-read the registry now (the watch does this by itself within its interval). */
  reload(): void {
    this.store.reload();
    this.load();
  }

  private load(): void {
    const next = new Map<string, KnownClient>();
    for (const record of this.store.list()) {
      next.set(record.id, { record, publicKey: decodePublicKey(record.publicKey), permissions: new ClientPermissions(record) });
      this.engine.registerClient(clientIdentityOf(record));
    }
    for (const id of this.clients.keys()) if (!next.has(id)) this.engine.clients.remove(id);
    this.clients = next;
  }

  close(): void {
    this.stopWatching?.();
    this.stopWatching = null;
  }
}
