/**
 * Ed25519 keys and signatures through @noble/ed25519, so the same code runs in browsers and Node.
 * Signing uses `signAsync` (SHA-512 from WebCrypto, native and fast for large payloads); key
 * generation is synchronous and needs a synchronous SHA-512, provided by ./sha512.js.
 */
import * as ed from '@noble/ed25519';
import { encodeBase64 } from '../protocol/index.js';
import { decodeBase64 } from './base64.js';
import { invalidArgument } from './errors.js';
import { sha512 } from './sha512.js';

export const ED25519_KEY_BYTES = 32;

// Only when nobody else configured it: the setting is shared by every user of @noble/ed25519.
if (ed.hashes.sha512 === undefined) ed.hashes.sha512 = sha512;

export interface KeyPair {
  /** Raw 32-byte Ed25519 public key, base64: register it with the engine. */
  publicKey: string;
  /** The 32-byte seed, base64: keep it with the client only. */
  secretKey: string;
}

/** A fresh key pair, in the format `ensync-engine keygen` prints and `client add` accepts. */
export function generateKeyPair(): KeyPair {
  const seed = ed.utils.randomSecretKey();
  return { publicKey: encodeBase64(ed.getPublicKey(seed)), secretKey: encodeBase64(seed) };
}

/** The raw public key of a 32-byte seed. */
export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return ed.getPublicKey(secretKey);
}

/** A 32-byte seed from base64 text or bytes; anything else is refused naming `secretKey`. */
export function secretKeyBytes(secretKey: string | Uint8Array): Uint8Array {
  const bytes = typeof secretKey === 'string' ? decodeBase64(secretKey) : secretKey instanceof Uint8Array ? secretKey : null;
  if (bytes === null) throw invalidArgument('secretKey', 'must be base64 text or a Uint8Array');
  if (bytes.byteLength !== ED25519_KEY_BYTES) {
    throw invalidArgument('secretKey', `must be the ${ED25519_KEY_BYTES}-byte Ed25519 seed, got ${bytes.byteLength} bytes`);
  }
  // A private copy: the caller may reuse or wipe its buffer.
  return new Uint8Array(bytes);
}

/** Pure Ed25519 (RFC 8032) signature of `message`: 64 bytes. */
export function sign(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array> {
  return ed.signAsync(message, secretKey);
}
