/**
 * A client (a service) as the durable registry stores it: its id, its Ed25519 public key and the
 * event types it may publish and subscribe to. Validation here is the single gate for records
 * coming from the CLI and from `clients.json`, so both reject the same things with the same words.
 */
import type { ClientIdentity } from '../engine/client-registry.js';
import { EngineError } from '../engine/errors.js';
import { ED25519_KEY_BYTES } from '../engine/signing.js';
import { TypePattern } from '../engine/type-pattern.js';

export interface ClientRecord {
  id: string;
  /** Base64 (standard alphabet, padded) of the raw 32-byte Ed25519 public key. */
  publicKey: string;
  /** Type patterns this client may publish to. */
  publish: string[];
  /** Type patterns this client may subscribe with (a subscription must lie inside one of them). */
  subscribe: string[];
  /** Every event this client publishes must carry a valid signature. */
  requireSignatures: boolean;
  /** Milliseconds since the epoch when the record was added. */
  addedAt: number;
}

/** The same rule ClientRegistry applies, so every stored client can be registered with the engine. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._@-]{1,128}$/;
const CLIENT_ID_RULE = 'client id must be 1-128 characters of letters, digits, ., _, @ or -';
/** Bounds the size of one record; a real service needs a handful of patterns. */
export const MAX_PATTERNS_PER_LIST = 256;

const RECORD_FIELDS: ReadonlySet<string> = new Set(['id', 'publicKey', 'publish', 'subscribe', 'requireSignatures', 'addedAt']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function invalid(field: string, message: string): EngineError {
  return new EngineError('INVALID_ARGUMENT', message, { field });
}

export function validateClientId(id: unknown): string {
  if (typeof id !== 'string' || !CLIENT_ID_PATTERN.test(id)) {
    const got = typeof id === 'string' ? ` (got ${JSON.stringify(id)})` : '';
    throw invalid('id', `${CLIENT_ID_RULE}${got}`);
  }
  return id;
}

/**
 * Decodes a base64 public key to its 32 raw bytes. Strict: Buffer.from(_, 'base64') silently skips
 * junk characters, which would turn a mistyped key into a different valid-looking one.
 */
export function decodePublicKey(publicKey: unknown): Uint8Array {
  if (typeof publicKey !== 'string' || !BASE64.test(publicKey)) {
    throw invalid('publicKey', 'publicKey must be the base64 of a raw 32-byte Ed25519 public key');
  }
  const bytes = new Uint8Array(Buffer.from(publicKey, 'base64'));
  if (bytes.length !== ED25519_KEY_BYTES) {
    throw invalid('publicKey', `publicKey must decode to ${ED25519_KEY_BYTES} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** Checks each entry is a valid TypePattern; returns a copy without duplicates, in the given order. */
export function validatePatternList(list: unknown, field: 'publish' | 'subscribe'): string[] {
  if (!Array.isArray(list)) throw invalid(field, `${field} must be an array of type patterns`);
  if (list.length > MAX_PATTERNS_PER_LIST) {
    throw invalid(field, `${field} has ${list.length} patterns; at most ${MAX_PATTERNS_PER_LIST} are allowed`);
  }
  const seen = new Set<string>();
  for (const pattern of list) {
    try {
      new TypePattern(pattern as string);
    } catch (error) {
      const reason = error instanceof EngineError ? error.message : String(error);
      throw new EngineError('INVALID_ARGUMENT', `${field}: ${reason}`, { field, cause: error });
    }
    seen.add(pattern as string);
  }
  return [...seen];
}

/**
 * A validated copy of `input` holding only the known fields, or an INVALID_ARGUMENT error whose
 * `field` names the first offending field.
 */
export function validateClientRecord(input: unknown): ClientRecord {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid('record', 'a client record must be an object');
  }
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!RECORD_FIELDS.has(key)) throw invalid(key, `unknown client record field ${JSON.stringify(key)}`);
  }
  const id = validateClientId(raw.id);
  decodePublicKey(raw.publicKey);
  const publish = validatePatternList(raw.publish, 'publish');
  const subscribe = validatePatternList(raw.subscribe, 'subscribe');
  if (typeof raw.requireSignatures !== 'boolean') throw invalid('requireSignatures', 'requireSignatures must be true or false');
  const addedAt = raw.addedAt;
  if (typeof addedAt !== 'number' || !Number.isSafeInteger(addedAt) || addedAt < 0) {
    throw invalid('addedAt', 'addedAt must be a non-negative integer (milliseconds since the epoch)');
  }
  return { id, publicKey: raw.publicKey as string, publish, subscribe, requireSignatures: raw.requireSignatures, addedAt };
}

/** What ClientRegistry.register takes for this record. */
export function clientIdentityOf(record: ClientRecord): ClientIdentity {
  return { id: record.id, publicKey: decodePublicKey(record.publicKey), requireSignatures: record.requireSignatures };
}
