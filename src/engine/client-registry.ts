import { EngineError } from './errors.js';
import type { ProducerIdentity } from './shard-messages.js';

/** A client (a service) as the engine knows it once authenticated. */
export interface ClientIdentity {
  id: string;
  /** Raw 32-byte Ed25519 public key. */
  publicKey?: Uint8Array | null;
  /** Every event this client publishes must carry a valid signature. */
  requireSignatures?: boolean;
}

const CLIENT_ID = /^[A-Za-z0-9._@-]{1,128}$/;

/**
 * The clients the engine serves, by id. The network front end authenticates a connection and then
 * acts as its client; the engine itself trusts the id it is given and sets each event's sender from it.
 */
export class ClientRegistry {
  private readonly clients = new Map<string, ProducerIdentity>();

  register(client: ClientIdentity): void {
    if (typeof client?.id !== 'string' || !CLIENT_ID.test(client.id)) {
      throw new EngineError('INVALID_ARGUMENT', 'client id must be 1-128 characters of letters, digits, ., _, @ or -', { field: 'id' });
    }
    const publicKey = client.publicKey ? new Uint8Array(client.publicKey) : null;
    if (publicKey && publicKey.length !== 32) {
      throw new EngineError('INVALID_ARGUMENT', 'publicKey must be a raw 32-byte Ed25519 key', { field: 'publicKey' });
    }
    if (client.requireSignatures && !publicKey) {
      throw new EngineError('INVALID_ARGUMENT', 'a client that must sign its events needs a public key', { field: 'publicKey' });
    }
    this.clients.set(client.id, { id: client.id, publicKey, requireSignatures: client.requireSignatures ?? false });
  }

  remove(id: string): boolean {
    return this.clients.delete(id);
  }

  /** The producer identity of a known client; FORBIDDEN for an unknown one. */
  get(id: string): ProducerIdentity {
    const client = this.clients.get(id);
    if (!client) throw new EngineError('FORBIDDEN', `client ${id} is not registered`, { field: 'client' });
    return client;
  }

  has(id: string): boolean {
    return this.clients.has(id);
  }
}
