/**
 * First-run convenience: an engine whose registry is empty gets a development client `dev` that may
 * publish and subscribe to everything, and its secret is written to `<dataDir>/dev-credentials.json`
 * (mode 0600) so a developer can connect without running `client add` first. The admin token in that
 * file survives a re-creation of the dev client, so scripts holding it keep working.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from '../engine/errors.js';
import { ED25519_KEY_BYTES, generateSigningKeyPair, privateKeyFromSeed, rawPublicKey } from '../engine/signing.js';
import { decodePublicKey, validateClientId } from './client-record.js';
import type { ClientStore } from './client-store.js';
import { describeError, writePrivateFileAtomic } from './private-file.js';

export const DEV_CLIENT_ID = 'dev';
export const DEV_CREDENTIALS_FILE = 'dev-credentials.json';
export const ADMIN_TOKEN_BYTES = 32;
/** The largest file readDevCredentials accepts; the real one is a few hundred bytes. */
const MAX_CREDENTIALS_FILE_BYTES = 64 * 1024;
const BASE64URL_TOKEN = /^[A-Za-z0-9_-]{16,}$/;

export interface DevCredentials {
  clientId: string;
  /** Base64 of the raw 32-byte Ed25519 public key. */
  publicKey: string;
  /** Base64 of the 32-byte Ed25519 seed, as generateSigningKeyPair returns it. */
  secretKey: string;
  /** Base64url of 32 random bytes. */
  adminToken: string;
}

export interface EnsureDevClientResult {
  /** Whether a dev client was added (the registry was empty). */
  created: boolean;
  /** Path of dev-credentials.json (it exists whenever `created` is true). */
  file: string;
}

export function devCredentialsFile(dataDir: string): string {
  return path.join(dataDir, DEV_CREDENTIALS_FILE);
}

/**
 * Adds the dev client if `store` has no clients. The credentials file is written before the client
 * is stored: a crash in between leaves an empty registry, and the next start simply tries again.
 */
export function ensureDevClient(dataDir: string, store: ClientStore, now: number = Date.now()): EnsureDevClientResult {
  const file = devCredentialsFile(dataDir);
  store.reload();
  if (store.list().length > 0) return { created: false, file };

  const adminToken = readDevCredentials(dataDir)?.adminToken ?? randomBytes(ADMIN_TOKEN_BYTES).toString('base64url');
  const keys = generateSigningKeyPair();
  const credentials: DevCredentials = {
    clientId: DEV_CLIENT_ID,
    publicKey: Buffer.from(keys.publicKey).toString('base64'),
    secretKey: Buffer.from(keys.secretKey).toString('base64'),
    adminToken,
  };
  writePrivateFileAtomic(file, `${JSON.stringify(credentials, null, 2)}\n`);
  store.add({
    id: DEV_CLIENT_ID,
    publicKey: credentials.publicKey,
    publish: ['**'],
    subscribe: ['**'],
    requireSignatures: false,
    addedAt: now,
  });
  return { created: true, file };
}

/** The dev credentials, or null if the file does not exist; a malformed file is STORAGE_FAILED. */
export function readDevCredentials(dataDir: string): DevCredentials | null {
  const file = devCredentialsFile(dataDir);
  let text: string;
  try {
    const stats = fs.statSync(file);
    if (stats.size > MAX_CREDENTIALS_FILE_BYTES) {
      throw new EngineError('STORAGE_FAILED', `${file} is ${stats.size} bytes, over the ${MAX_CREDENTIALS_FILE_BYTES}-byte limit`);
    }
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof EngineError) throw error;
    if ((error as { code?: unknown }).code === 'ENOENT') return null;
    throw new EngineError('STORAGE_FAILED', `could not read ${file}: ${describeError(error)}`, { cause: error });
  }
  try {
    return parseDevCredentials(JSON.parse(text));
  } catch (error) {
    throw new EngineError('STORAGE_FAILED', `dev credentials ${file} are corrupt: ${describeError(error)}`, { cause: error });
  }
}

function parseDevCredentials(parsed: unknown): DevCredentials {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object');
  const { clientId, publicKey, secretKey, adminToken } = parsed as Record<string, unknown>;
  validateClientId(clientId);
  const publicBytes = decodePublicKey(publicKey);
  const seed = typeof secretKey === 'string' ? Buffer.from(secretKey, 'base64') : Buffer.alloc(0);
  if (seed.length !== ED25519_KEY_BYTES || seed.toString('base64') !== secretKey) {
    throw new Error(`secretKey must be the base64 of a ${ED25519_KEY_BYTES}-byte Ed25519 seed`);
  }
  // A secret key that does not belong to the public key would fail every signature much later.
  if (!Buffer.from(rawPublicKey(privateKeyFromSeed(seed))).equals(publicBytes)) {
    throw new Error('secretKey does not belong to publicKey');
  }
  if (typeof adminToken !== 'string' || !BASE64URL_TOKEN.test(adminToken)) {
    throw new Error('adminToken must be a base64url string of at least 16 characters');
  }
  return { clientId: clientId as string, publicKey: publicKey as string, secretKey: secretKey as string, adminToken };
}
