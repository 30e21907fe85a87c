import * as ed from '@noble/ed25519';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalSigningBytes, generateSigningKeyPair, signEvent } from '../../src/engine/signing.js';
import { DeliveryRecorder, positionOf } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, expectEngineError, sleep, text } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const TYPE = 'payments/captured';

describe('signed events', () => {
  it('requires a valid signature from a client that must sign, and delivers the signature', async () => {
    const engine = await harness.open({ workers: 1 });
    const keys = generateSigningKeyPair();
    const otherKeys = generateSigningKeyPair();
    engine.registerClient({ id: 'signer', publicKey: keys.publicKey, requireSignatures: true });
    engine.registerClient({ id: 'reader' });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'everything', pattern: '**', start: { from: 'all' } }, reader.handler);

    const content = { type: TYPE, id: 'pay-1', key: 'acct-9', headers: { currency: 'EUR' }, payload: bytes('{"amount":10}') };
    const signature = signEvent(keys.secretKey, content);
    const unsigned = { type: content.type, id: content.id, key: content.key, headers: content.headers, payload: content.payload };

    await expectEngineError(engine.publish('signer', unsigned), 'SIGNATURE_REQUIRED', 'signature');
    const garbage = new Uint8Array(64).fill(7);
    await expectEngineError(engine.publish('signer', { ...unsigned, signature: garbage }), 'SIGNATURE_INVALID', 'signature');
    const byOtherKey = signEvent(otherKeys.secretKey, content);
    await expectEngineError(engine.publish('signer', { ...unsigned, signature: byOtherKey }), 'SIGNATURE_INVALID', 'signature');
    await expectEngineError(engine.publish('signer', { ...unsigned, payload: bytes('{"amount":1000}'), signature }), 'SIGNATURE_INVALID', 'signature');
    await expectEngineError(engine.publish('signer', { ...unsigned, headers: { currency: 'USD' }, signature }), 'SIGNATURE_INVALID', 'signature');
    await expectEngineError(engine.publish('signer', { ...unsigned, key: 'acct-10', signature }), 'SIGNATURE_INVALID', 'signature');
    await expectEngineError(engine.publish('signer', { ...unsigned, type: 'payments/refunded', signature }), 'SIGNATURE_INVALID', 'signature');
    // The signature covers the id, so a signed event without one cannot be checked.
    const { id: _omitted, ...withoutId } = unsigned;
    await expectEngineError(engine.publish('signer', { ...withoutId, signature }), 'INVALID_EVENT', 'id');

    // Refusals did not claim the id: the genuine event with it is stored, once.
    const good = await engine.publish('signer', { ...unsigned, signature });
    expect(good.duplicate).toBe(false);
    expect(good.offset, 'nothing refused was stored').toBe(0);

    await reader.waitForAcked([positionOf(good)], 5_000);
    await sleep(100);
    expect(reader.deliveries).toHaveLength(1);
    const event = reader.deliveries[0]!.event;
    expect(event).toMatchObject({ id: 'pay-1', type: TYPE, key: 'acct-9', headers: { currency: 'EUR' }, sender: 'signer' });
    expect(text(event.payload)).toBe('{"amount":10}');
    expect(event.signature).toEqual(signature);
    // A consumer checks it independently with the producer's public key.
    const message = canonicalSigningBytes({ type: event.type, id: event.id, key: event.key, headers: event.headers, payload: event.payload });
    expect(await ed.verifyAsync(event.signature!, message, keys.publicKey)).toBe(true);
    expect(await ed.verifyAsync(event.signature!, message, otherKeys.publicKey)).toBe(false);
  });

  it('verifies signatures of a client that may sign, and refuses a signature from a client without a key', async () => {
    const engine = await harness.open({ workers: 1 });
    const keys = generateSigningKeyPair();
    engine.registerClient({ id: 'optional', publicKey: keys.publicKey });
    engine.registerClient({ id: 'keyless' });
    const content = { type: TYPE, id: 'pay-2', key: null, headers: {}, payload: bytes('x') };
    const signature = signEvent(keys.secretKey, content);

    const plain = await engine.publish('optional', { type: TYPE, payload: bytes('unsigned is fine') });
    expect(plain.duplicate).toBe(false);
    await expectEngineError(engine.publish('optional', { type: TYPE, id: 'pay-2', payload: bytes('y'), signature }), 'SIGNATURE_INVALID', 'signature');
    await expectEngineError(engine.publish('keyless', { type: TYPE, id: 'pay-2', payload: bytes('x'), signature }), 'SIGNATURE_INVALID', 'signature');
    const signed = await engine.publish('optional', { type: TYPE, id: 'pay-2', payload: bytes('x'), signature });
    expect(signed.offset).toBe(plain.offset + 1);
  });

  it('keeps publish order of one type while signed batches are verified off the thread, good and bad signatures mixed', async () => {
    const engine = await harness.open({ workers: 1, shards: 1 });
    const keys = generateSigningKeyPair();
    engine.registerClient({ id: 'optional', publicKey: keys.publicKey });
    engine.registerClient({ id: 'reader' });
    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'ordered', pattern: '**', start: { from: 'all' } }, reader.handler);
    // Signed, unsigned and badly signed events of one type, published without waiting: the signed
    // batches take longer in the worker, yet nothing may overtake them.
    const publishes: Array<Promise<unknown>> = [];
    const track = (publish: Promise<unknown>): void => {
      publish.catch(() => {}); // refusals are looked at below, once all have settled
      publishes.push(publish);
    };
    for (let i = 0; i < 300; i++) {
      const content = { type: TYPE, id: `mixed-${i}`, key: null, headers: {}, payload: bytes(`event ${i}`) };
      // Groups of 10 in successive turns: batches of their own, some all unsigned, some signed.
      if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      if (i % 3 === 0 || Math.floor(i / 10) % 4 === 1) {
        track(engine.publish('optional', { type: TYPE, id: content.id, payload: content.payload }));
        continue;
      }
      const signature = signEvent(keys.secretKey, content);
      if (i % 7 === 0) signature[5] ^= 1;
      track(engine.publish('optional', { type: TYPE, id: content.id, payload: content.payload, signature }));
    }
    const outcomes = await Promise.allSettled(publishes);
    const stored = outcomes.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [i] : []));
    outcomes.forEach((outcome, i) => {
      const refused = i % 3 !== 0 && Math.floor(i / 10) % 4 !== 1 && i % 7 === 0;
      expect(outcome.status, `event ${i}`).toBe(refused ? 'rejected' : 'fulfilled');
      if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ code: 'SIGNATURE_INVALID' });
    });
    await reader.waitForAcked(stored.map((i) => positionOf((outcomes[i] as PromiseFulfilledResult<{ shard: number; offset: number }>).value)), 10_000);
    expect(reader.deliveries.map((d) => text(d.event.payload))).toEqual(stored.map((i) => `event ${i}`));
    const offsets = stored.map((i) => (outcomes[i] as PromiseFulfilledResult<{ offset: number }>).value.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });
});
