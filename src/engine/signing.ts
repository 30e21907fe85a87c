import crypto from 'node:crypto';
import { EngineError } from './errors.js';
import { SIGNATURE_BYTES } from './event.js';

/**
 * Ed25519 event signatures. A publisher signs the canonical encoding of its event's content
 * (type, id, key, headers, payload); the server verifies it with the sender's registered public
 * key. The encoding is specified byte by byte in docs/events.md so other clients can produce it.
 */
export interface SignedEventContent {
  type: string;
  id: string;
  key: string | null | undefined;
  headers: Record<string, string> | undefined;
  payload: Uint8Array;
}

/** "ensync-event-v1" and a NUL: a signature over an event can never verify as any other message. */
export const SIGNING_DOMAIN = Buffer.from('ensync-event-v1\0', 'latin1');
export const ED25519_KEY_BYTES = 32;
const KEY_ABSENT = 0;
const KEY_PRESENT = 1;

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * domain (16 bytes) | u32 len + type | u32 len + id | u8 key presence (0 absent, 1 present)
 * [+ u32 len + key] | u32 header count | per header sorted by UTF-8 name bytes: u32 len + name,
 * u32 len + value | u32 len + payload. All lengths are little-endian byte counts, strings UTF-8.
 * Every variable part is length-prefixed, so no two different events share an encoding.
 */
export function canonicalSigningBytes(event: SignedEventContent): Buffer {
  const type = Buffer.from(event.type, 'utf8');
  const id = Buffer.from(event.id, 'utf8');
  const key = event.key === null || event.key === undefined ? null : Buffer.from(event.key, 'utf8');
  const headers = sortedHeaders(event.headers);
  const payload = event.payload;

  let size = SIGNING_DOMAIN.length + 4 + type.length + 4 + id.length + 1 + 4 + 4 + payload.byteLength;
  if (key !== null) size += 4 + key.length;
  for (const [name, value] of headers) size += 8 + name.length + value.length;

  const out = Buffer.allocUnsafe(size);
  let p = SIGNING_DOMAIN.copy(out, 0);
  p = writeBytes(out, p, type);
  p = writeBytes(out, p, id);
  if (key === null) {
    out[p++] = KEY_ABSENT;
  } else {
    out[p++] = KEY_PRESENT;
    p = writeBytes(out, p, key);
  }
  p = out.writeUInt32LE(headers.length, p);
  for (const [name, value] of headers) {
    p = writeBytes(out, p, name);
    p = writeBytes(out, p, value);
  }
  writeBytes(out, p, payload);
  return out;
}

/** A raw 32-byte Ed25519 public key as a KeyObject (wrapped in its fixed SPKI DER prefix). */
export function publicKeyFromRaw(raw: Uint8Array): crypto.KeyObject {
  checkKeyBytes(raw, 'publicKey');
  try {
    return crypto.createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch (error) {
    throw new EngineError('INVALID_ARGUMENT', 'publicKey is not a valid Ed25519 public key', { field: 'publicKey', cause: error });
  }
}

/** A 32-byte Ed25519 seed (the secret key) as a KeyObject (wrapped in its fixed PKCS#8 DER prefix). */
export function privateKeyFromSeed(seed: Uint8Array): crypto.KeyObject {
  checkKeyBytes(seed, 'secretKey');
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** The raw 32-byte public key of an Ed25519 KeyObject (public or private). */
export function rawPublicKey(key: crypto.KeyObject): Uint8Array {
  const publicKey = key.type === 'private' ? crypto.createPublicKey(key) : key;
  checkEd25519(publicKey, 'publicKey');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(SPKI_ED25519_PREFIX.length));
}

export function generateSigningKeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  return {
    publicKey: rawPublicKey(publicKey),
    secretKey: new Uint8Array(pkcs8.subarray(PKCS8_ED25519_PREFIX.length)),
  };
}

/** Sign an event's canonical encoding; returns the 64-byte Ed25519 signature. */
export function signEvent(secretKey: Uint8Array | crypto.KeyObject, event: SignedEventContent): Uint8Array {
  const key = secretKey instanceof crypto.KeyObject ? secretKey : privateKeyFromSeed(secretKey);
  if (key.type !== 'private') {
    throw new EngineError('INVALID_ARGUMENT', 'secretKey must be a private key', { field: 'secretKey' });
  }
  checkEd25519(key, 'secretKey');
  return new Uint8Array(crypto.sign(null, canonicalSigningBytes(event), key));
}

/**
 * Whether `signature` is a valid signature of the event by `publicKey`. A malformed signature is
 * simply not valid (false); a key that is not an Ed25519 public key is the caller's bug (throws).
 */
export function verifyEventSignature(publicKey: crypto.KeyObject, event: SignedEventContent, signature: Uint8Array): boolean {
  if (publicKey.type !== 'public') {
    throw new EngineError('INVALID_ARGUMENT', 'publicKey must be a public key', { field: 'publicKey' });
  }
  checkEd25519(publicKey, 'publicKey');
  if (!(signature instanceof Uint8Array) || signature.byteLength !== SIGNATURE_BYTES) return false;
  try {
    return crypto.verify(null, canonicalSigningBytes(event), publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * verifyEventSignature on libuv's thread pool (node:crypto with a callback), so that several
 * verifications run at once on other cores while the calling thread goes on.
 */
export function verifyEventSignatureAsync(publicKey: crypto.KeyObject, event: SignedEventContent, signature: Uint8Array): Promise<boolean> {
  if (publicKey.type !== 'public') {
    return Promise.reject(new EngineError('INVALID_ARGUMENT', 'publicKey must be a public key', { field: 'publicKey' }));
  }
  checkEd25519(publicKey, 'publicKey');
  if (!(signature instanceof Uint8Array) || signature.byteLength !== SIGNATURE_BYTES) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      crypto.verify(null, canonicalSigningBytes(event), publicKey, signature, (error, valid) => resolve(!error && valid));
    } catch {
      resolve(false);
    }
  });
}

function sortedHeaders(headers: Record<string, string> | undefined): Array<[Buffer, Buffer]> {
  if (headers === undefined) return [];
  const entries: Array<[Buffer, Buffer]> = [];
  for (const name of Object.keys(headers)) {
    entries.push([Buffer.from(name, 'utf8'), Buffer.from(headers[name]!, 'utf8')]);
  }
  // UTF-8 byte order, not JS string (UTF-16) order: they disagree between characters above U+FFFF
  // and those in U+E000-U+FFFF, and clients in other languages sort bytes.
  if (entries.length > 1) entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  return entries;
}

function writeBytes(out: Buffer, p: number, bytes: Uint8Array): number {
  p = out.writeUInt32LE(bytes.byteLength, p);
  out.set(bytes, p);
  return p + bytes.byteLength;
}

function checkKeyBytes(bytes: Uint8Array, field: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== ED25519_KEY_BYTES) {
    const got = bytes instanceof Uint8Array ? `${bytes.byteLength} bytes` : typeof bytes;
    throw new EngineError('INVALID_ARGUMENT', `${field} must be ${ED25519_KEY_BYTES} raw Ed25519 bytes, got ${got}`, { field });
  }
}

function checkEd25519(key: crypto.KeyObject, field: string): void {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new EngineError('INVALID_ARGUMENT', `${field} must be an Ed25519 key, got ${key.asymmetricKeyType ?? key.type}`, {
      field,
    });
  }
}
