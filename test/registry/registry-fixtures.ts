/** Shared builders for the registry tests: real key pairs, valid records. */
import { generateSigningKeyPair } from '../../src/engine/signing.js';
import type { ClientRecord } from '../../src/registry/client-record.js';

export function newPublicKey(): string {
  return Buffer.from(generateSigningKeyPair().publicKey).toString('base64');
}

export function recordFor(id: string, overrides: Partial<ClientRecord> = {}): ClientRecord {
  return {
    id,
    publicKey: newPublicKey(),
    publish: ['orders/*'],
    subscribe: ['orders/**'],
    requireSignatures: false,
    addedAt: 1_700_000_000_000,
    ...overrides,
  };
}

/** Resolves with the time it took until `check` returns true; rejects after `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - started;
}
