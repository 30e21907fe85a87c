import crypto from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { EnSyncClient, canonicalSigningBytes, generateKeyPair, publicKeyOf } from '../../src/client/index.js';
import { sha512 } from '../../src/client/sha512.js';
import { canonicalSigningBytes as engineCanonicalBytes, privateKeyFromSeed, publicKeyFromRaw, rawPublicKey, verifyEventSignature } from '../../src/engine/signing.js';
import { WsEngineHarness } from '../helpers/ws-engine.js';
import { EventReader, connectAs } from './client-fixtures.js';
import { Prng } from '../helpers/prng.js';

const harness = new WsEngineHarness();
const clients: EnSyncClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await harness.cleanup();
});

describe('canonical signing bytes', () => {
  it('match the engine byte for byte (docs/events.md example)', () => {
    const event = { type: 'a/b', id: 'E1', key: 'k', headers: { z: '1', y: 'é' }, payload: new Uint8Array([0xaa]) };
    const expected =
      '656e73796e632d6576656e742d763100' + '03000000612f62' + '020000004531' + '01010000006b' + '02000000' + '0100000079' + '02000000c3a9' + '010000007a' + '0100000031' + '01000000aa';
    expect(Buffer.from(canonicalSigningBytes(event)).toString('hex')).toBe(expected);
    expect(Buffer.from(engineCanonicalBytes(event)).toString('hex')).toBe(expected);
  });

  it('match the engine on generated events: no key, empty key, no headers, astral and private-use names, empty payload', () => {
    const prng = new Prng(7);
    const names = ['a', 'B', 'é', '\u{1F600}', '\uE000', 'zz', 'a\u0000b', ''];
    for (let i = 0; i < 300; i++) {
      const headers: Record<string, string> | undefined = prng.next() < 0.2 ? undefined : {};
      if (headers) for (const name of names) if (prng.next() < 0.5) headers[name + prng.int(0, 2)] = '\u{1F680}'.repeat(prng.int(0, 2)) + String(prng.int(0, 999));
      const key = prng.next() < 0.3 ? undefined : prng.next() < 0.2 ? '' : `key-${prng.int(0, 1e6)}-ü`;
      const payload = new Uint8Array(prng.bytes(prng.int(0, 64)));
      const event = { type: `t/${prng.int(0, 99)}`, id: `id-${i}`, key, headers, payload };
      expect(Buffer.from(canonicalSigningBytes(event)).equals(engineCanonicalBytes(event))).toBe(true);
    }
  });
});

describe('keys', () => {
  it('sha512 matches node:crypto across block boundaries', () => {
    for (const length of [0, 1, 111, 112, 127, 128, 129, 239, 240, 256, 1000, 70_000]) {
      const message = crypto.randomBytes(length);
      expect(Buffer.from(sha512(new Uint8Array(message))).toString('hex')).toBe(crypto.createHash('sha512').update(message).digest('hex'));
    }
  });

  it('generateKeyPair gives base64 keys whose public key is the seed’s Ed25519 public key', () => {
    const keys = generateKeyPair();
    expect(keys.publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(keys.secretKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const seed = new Uint8Array(Buffer.from(keys.secretKey, 'base64'));
    expect(Buffer.from(rawPublicKey(privateKeyFromSeed(seed))).toString('base64')).toBe(keys.publicKey);
    expect(Buffer.from(publicKeyOf(seed)).toString('base64')).toBe(keys.publicKey);
    expect(generateKeyPair().secretKey).not.toBe(keys.secretKey);
  });

  it('authenticates with a generated key pair given as base64 text', async () => {
    const running = await harness.start();
    const keys = generateKeyPair();
    running.store.add({ id: 'generated', publicKey: keys.publicKey, publish: ['**'], subscribe: ['**'], requireSignatures: false, addedAt: Date.now() });
    running.clients.reload();
    const client = await EnSyncClient.connect(running.url, { clientId: 'generated', secretKey: keys.secretKey });
    clients.push(client);
    await expect(client.publish('keys/ok', 1)).resolves.toMatchObject({ type: 'keys/ok' });
  });
});

describe('signed publishing', () => {
  it('signs every event of a client that must sign; the engine verifies and stores the signature', async () => {
    const running = await harness.start();
    const signer = running.addClient('signer', { requireSignatures: true });
    const reader = running.addClient('reader');
    const publisher = await connectAs(running.url, signer);
    const consumer = await connectAs(running.url, reader);
    clients.push(publisher, consumer);
    const sub = await consumer.subscribe('signed/**', { name: 'signed' });
    const events = new EventReader(sub);

    const headers = { 'x-\u{1F600}': 'smile', a: 'b', '\uE000': 'pua' };
    const receipts = await Promise.all([
      publisher.publish('signed/a', new Uint8Array([1, 2, 3]), { key: 'k1', headers }),
      publisher.publish('signed/b', { value: 'packed' }, { id: 'my-own-id' }),
      publisher.publish('signed/c', new Uint8Array(0)),
    ]);
    expect(receipts[0]!.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(receipts[1]!.id).toBe('my-own-id');

    const publicKey = publicKeyFromRaw(signer.publicKey);
    const seen = new Map<string, boolean>();
    for (let i = 0; i < 3; i++) {
      const event = await events.next();
      expect(event.signature).toHaveLength(64);
      seen.set(event.id, verifyEventSignature(publicKey, { type: event.type, id: event.id, key: event.key, headers: event.headers, payload: event.payload }, event.signature!));
      await event.ack();
    }
    expect([...seen.keys()].sort()).toEqual(receipts.map((r) => r.id).sort());
    expect([...seen.values()]).toEqual([true, true, true]);
  });
});
