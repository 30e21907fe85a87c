import crypto from 'node:crypto';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import {
  canonicalSigningBytes,
  generateSigningKeyPair,
  privateKeyFromSeed,
  publicKeyFromRaw,
  rawPublicKey,
  signEvent,
  verifyEventSignature,
  type SignedEventContent,
} from '../../src/engine/signing.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function event(overrides: Partial<SignedEventContent> = {}): SignedEventContent {
  return {
    type: 'orders/created',
    id: '01HZX3J5Q6W8E9R0T1Y2U30405',
    key: 'customer-7',
    headers: { 'content-type': 'application/json', trace: 'abc' },
    payload: Buffer.from('{"total":42}'),
    ...overrides,
  };
}

function thrown(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (error) {
    if (error instanceof EngineError) return error;
    throw error;
  }
  throw new Error('expected a throw');
}

// RFC 8032, section 7.1, TEST 1.
const RFC_SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
const RFC_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const RFC_EMPTY_MESSAGE_SIGNATURE =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

describe('canonicalSigningBytes', () => {
  it('encodes the documented layout byte by byte', () => {
    const bytes = canonicalSigningBytes({ type: 'a/b', id: 'E1', key: 'k', headers: { z: '1', y: 'é' }, payload: Uint8Array.of(0xaa) });
    const u32 = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n);
      return b;
    };
    const expected = Buffer.concat([
      Buffer.from('ensync-event-v1\0', 'latin1'),
      u32(3), Buffer.from('a/b'),
      u32(2), Buffer.from('E1'),
      Buffer.from([1]), u32(1), Buffer.from('k'), // key present
      u32(2), // header count
      u32(1), Buffer.from('y'), u32(2), Buffer.from('é'), // sorted by name
      u32(1), Buffer.from('z'), u32(1), Buffer.from('1'),
      u32(1), Buffer.from([0xaa]),
    ]);
    expect(hex(bytes)).toBe(hex(expected));
  });

  it('tells an absent key from an empty key; null and undefined are both absent', () => {
    const absent = canonicalSigningBytes(event({ key: null }));
    expect(hex(canonicalSigningBytes(event({ key: undefined })))).toBe(hex(absent));
    const empty = canonicalSigningBytes(event({ key: '' }));
    expect(hex(empty)).not.toBe(hex(absent));
    expect(empty.length).toBe(absent.length + 4);
  });

  it('treats missing headers as no headers, and ignores header order', () => {
    expect(hex(canonicalSigningBytes(event({ headers: undefined })))).toBe(hex(canonicalSigningBytes(event({ headers: {} }))));
    const forward = canonicalSigningBytes(event({ headers: { a: '1', b: '2', c: '3' } }));
    const backward = canonicalSigningBytes(event({ headers: { c: '3', b: '2', a: '1' } }));
    expect(hex(backward)).toBe(hex(forward));
  });

  it('sorts header names by UTF-8 bytes, not UTF-16 code units', () => {
    // U+E000 is EE 80 80 in UTF-8; U+1F600 is F0 9F 98 80 but D83D DE00 in UTF-16, so the orders disagree.
    const bytes = canonicalSigningBytes(event({ headers: { '😀': 'emoji', '\ue000': 'private' } }));
    expect(bytes.indexOf(Buffer.from('private'))).toBeLessThan(bytes.indexOf(Buffer.from('emoji')));
  });

  it('is unambiguous where plain concatenation would not be', () => {
    const a = canonicalSigningBytes(event({ type: 'ab', id: 'c' }));
    const b = canonicalSigningBytes(event({ type: 'a', id: 'bc' }));
    expect(hex(a)).not.toBe(hex(b));
    const headerA = canonicalSigningBytes(event({ headers: { ab: 'c' } }));
    const headerB = canonicalSigningBytes(event({ headers: { a: 'bc' } }));
    expect(hex(headerA)).not.toBe(hex(headerB));
  });
});

describe('keys', () => {
  it('imports raw RFC 8032 keys through the fixed DER prefixes', () => {
    const privateKey = privateKeyFromSeed(RFC_SEED);
    expect(hex(rawPublicKey(privateKey))).toBe(RFC_PUBLIC);
    expect(hex(crypto.sign(null, Buffer.alloc(0), privateKey))).toBe(RFC_EMPTY_MESSAGE_SIGNATURE);
    const publicKey = publicKeyFromRaw(Buffer.from(RFC_PUBLIC, 'hex'));
    expect(publicKey.asymmetricKeyType).toBe('ed25519');
    expect(crypto.verify(null, Buffer.alloc(0), publicKey, Buffer.from(RFC_EMPTY_MESSAGE_SIGNATURE, 'hex'))).toBe(true);
  });

  it('generates distinct 32-byte pairs whose public key belongs to the seed', async () => {
    const one = generateSigningKeyPair();
    const two = generateSigningKeyPair();
    expect(one.publicKey).toHaveLength(32);
    expect(one.secretKey).toHaveLength(32);
    expect(hex(one.secretKey)).not.toBe(hex(two.secretKey));
    expect(hex(rawPublicKey(privateKeyFromSeed(one.secretKey)))).toBe(hex(one.publicKey));
    expect(hex(await ed.getPublicKeyAsync(one.secretKey))).toBe(hex(one.publicKey));
  });

  it('refuses keys that are not 32 bytes', () => {
    for (const bad of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0)]) {
      const fromRaw = thrown(() => publicKeyFromRaw(bad));
      expect(fromRaw.code).toBe('INVALID_ARGUMENT');
      expect(fromRaw.field).toBe('publicKey');
      const fromSeed = thrown(() => privateKeyFromSeed(bad));
      expect(fromSeed.code).toBe('INVALID_ARGUMENT');
      expect(fromSeed.field).toBe('secretKey');
    }
    expect(thrown(() => publicKeyFromRaw('abc' as unknown as Uint8Array)).message).toMatch(/got string/);
  });
});

describe('signEvent / verifyEventSignature', () => {
  const { publicKey: rawPublic, secretKey } = generateSigningKeyPair();
  const publicKey = publicKeyFromRaw(rawPublic);

  it('signs with node:crypto and verifies with node:crypto, from a seed or a KeyObject', () => {
    const signature = signEvent(secretKey, event());
    expect(signature).toBeInstanceOf(Uint8Array);
    expect(signature).toHaveLength(64);
    expect(verifyEventSignature(publicKey, event(), signature)).toBe(true);
    // Ed25519 is deterministic: the KeyObject path gives the same signature.
    expect(hex(signEvent(privateKeyFromSeed(secretKey), event()))).toBe(hex(signature));
  });

  it('verifies @noble/ed25519 signatures, and @noble/ed25519 verifies ours', async () => {
    const message = canonicalSigningBytes(event());
    const nobleSignature = await ed.signAsync(message, secretKey);
    expect(verifyEventSignature(publicKey, event(), nobleSignature)).toBe(true);
    const ours = signEvent(secretKey, event());
    expect(await ed.verifyAsync(ours, message, rawPublic)).toBe(true);
    expect(hex(ours)).toBe(hex(nobleSignature));

    // A key pair made by the other library works the same way.
    const nobleSeed = ed.utils.randomSecretKey();
    const noblePublic = await ed.getPublicKeyAsync(nobleSeed);
    const signedByNoble = await ed.signAsync(canonicalSigningBytes(event({ key: null })), nobleSeed);
    expect(verifyEventSignature(publicKeyFromRaw(noblePublic), event({ key: null }), signedByNoble)).toBe(true);
    expect(await ed.verifyAsync(signEvent(nobleSeed, event({ key: null })), canonicalSigningBytes(event({ key: null })), noblePublic)).toBe(true);
  });

  it.each<[string, Partial<SignedEventContent>]>([
    ['type', { type: 'orders/cancelled' }],
    ['id', { id: '01HZX3J5Q6W8E9R0T1Y2U30406' }],
    ['key', { key: 'customer-8' }],
    ['key removed', { key: null }],
    ['key emptied', { key: '' }],
    ['header value', { headers: { 'content-type': 'application/json', trace: 'abd' } }],
    ['header name', { headers: { 'content-type': 'application/json', tracE: 'abc' } }],
    ['header added', { headers: { 'content-type': 'application/json', trace: 'abc', extra: '' } }],
    ['header removed', { headers: { 'content-type': 'application/json' } }],
    ['payload', { payload: Buffer.from('{"total":43}') }],
    ['payload truncated', { payload: Buffer.from('{"total":42') }],
  ])('fails verification when the %s is tampered with', (_what, change) => {
    const signature = signEvent(secretKey, event());
    expect(verifyEventSignature(publicKey, event(change), signature)).toBe(false);
  });

  it('distinguishes an absent key from an empty key', () => {
    const withoutKey = signEvent(secretKey, event({ key: null }));
    expect(verifyEventSignature(publicKey, event({ key: undefined }), withoutKey)).toBe(true);
    expect(verifyEventSignature(publicKey, event({ key: '' }), withoutKey)).toBe(false);
    const emptyKey = signEvent(secretKey, event({ key: '' }));
    expect(verifyEventSignature(publicKey, event({ key: null }), emptyKey)).toBe(false);
  });

  it('does not care about header order', () => {
    const signature = signEvent(secretKey, event({ headers: { a: '1', b: '2', c: '3' } }));
    expect(verifyEventSignature(publicKey, event({ headers: { c: '3', a: '1', b: '2' } }), signature)).toBe(true);
  });

  it('is domain-separated: a signature over the bare content does not verify', () => {
    const withoutDomain = canonicalSigningBytes(event()).subarray(16);
    const signature = crypto.sign(null, withoutDomain, privateKeyFromSeed(secretKey));
    expect(verifyEventSignature(publicKey, event(), signature)).toBe(false);
  });

  it('returns false for malformed signatures and another key', () => {
    const signature = signEvent(secretKey, event());
    expect(verifyEventSignature(publicKey, event(), signature.subarray(0, 63))).toBe(false);
    expect(verifyEventSignature(publicKey, event(), Buffer.concat([signature, Buffer.from([0])]))).toBe(false);
    expect(verifyEventSignature(publicKey, event(), new Uint8Array(64))).toBe(false);
    expect(verifyEventSignature(publicKey, event(), new Uint8Array(64).fill(0xff))).toBe(false);
    expect(verifyEventSignature(publicKey, event(), 'sig' as unknown as Uint8Array)).toBe(false);
    const flipped = Uint8Array.from(signature);
    flipped[10] ^= 1;
    expect(verifyEventSignature(publicKey, event(), flipped)).toBe(false);
    const other = publicKeyFromRaw(generateSigningKeyPair().publicKey);
    expect(verifyEventSignature(other, event(), signature)).toBe(false);
  });

  it('refuses keys of the wrong kind', () => {
    const signature = signEvent(secretKey, event());
    expect(thrown(() => verifyEventSignature(privateKeyFromSeed(secretKey), event(), signature)).code).toBe('INVALID_ARGUMENT');
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(thrown(() => verifyEventSignature(ec.publicKey, event(), signature)).message).toMatch(/Ed25519 key, got ec/);
    expect(thrown(() => signEvent(ec.privateKey, event())).message).toMatch(/Ed25519 key, got ec/);
    expect(thrown(() => signEvent(publicKey, event())).message).toMatch(/secretKey must be a private key/);
  });
});
