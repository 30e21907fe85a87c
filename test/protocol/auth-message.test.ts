import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AUTH_MESSAGE_PREFIX, authMessage, encodeBase64 } from '../../src/protocol/index.js';
import { Prng } from '../helpers/prng.js';

describe('encodeBase64', () => {
  it('matches RFC 4648 test vectors', () => {
    const vectors: Array<[string, string]> = [
      ['', ''],
      ['f', 'Zg=='],
      ['fo', 'Zm8='],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg=='],
      ['fooba', 'Zm9vYmE='],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [text, expected] of vectors) expect(encodeBase64(new TextEncoder().encode(text))).toBe(expected);
  });

  it('matches Buffer for random bytes of every length up to 100, including high bytes', () => {
    const prng = new Prng(0xba5e64);
    for (let length = 0; length <= 100; length++) {
      const input = Uint8Array.from(prng.bytes(length));
      expect(encodeBase64(input)).toBe(Buffer.from(input).toString('base64'));
    }
    expect(encodeBase64(new Uint8Array([0xff, 0xfe, 0xfd]))).toBe('//79');
  });

  it('reads a subarray from its own offset', () => {
    const whole = Uint8Array.from([9, 9, 1, 2, 3, 9]);
    expect(encodeBase64(whole.subarray(2, 5))).toBe(Buffer.from([1, 2, 3]).toString('base64'));
  });
});

describe('authMessage', () => {
  it('is the UTF-8 of the four lines the spec gives', () => {
    const nonce = crypto.randomBytes(32);
    const message = authMessage('engine-ä1', 'c-42', new Uint8Array(nonce));
    const expected = Buffer.from(`ensync-auth-v1\nengine-ä1\nc-42\n${nonce.toString('base64')}`, 'utf8');
    expect(Buffer.from(message).equals(expected)).toBe(true);
    expect(message.constructor).toBe(Uint8Array);
    expect(AUTH_MESSAGE_PREFIX).toBe('ensync-auth-v1');
  });

  it('signs and verifies with Ed25519, and differs per connection', () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
    const nonce = new Uint8Array(crypto.randomBytes(32));
    const signature = crypto.sign(null, authMessage('s', 'c-1', nonce), privateKey);
    expect(signature.byteLength).toBe(64);
    expect(crypto.verify(null, authMessage('s', 'c-1', nonce), publicKey, signature)).toBe(true);
    expect(crypto.verify(null, authMessage('s', 'c-2', nonce), publicKey, signature)).toBe(false);
  });
});
