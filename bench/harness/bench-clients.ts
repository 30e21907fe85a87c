import fs from 'node:fs';
import { generateSigningKeyPair } from '../../src/engine/signing.js';
import { ClientStore } from '../../src/registry/client-store.js';

/**
 * Register one client per id (allowed every type) in the data dir before the engine starts, as
 * `ensync-engine client add` does, and return their credentials. The engine bounds each client's
 * unconfirmed publishes (publishWindow), so each load process publishes as its own client.
 */
export function registerBenchClients(dataDir: string, ids: string[]): Array<{ clientId: string; secretKey: string }> {
  fs.mkdirSync(dataDir, { recursive: true });
  const store = ClientStore.open(dataDir);
  return ids.map((clientId) => {
    const { publicKey, secretKey } = generateSigningKeyPair();
    store.add({ id: clientId, publicKey: Buffer.from(publicKey).toString('base64'), publish: ['**'], subscribe: ['**'], requireSignatures: false, addedAt: Date.now() });
    return { clientId, secretKey: Buffer.from(secretKey).toString('base64') };
  });
}
