import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../../../src/engine/signing.js';
import type { ChallengeFrame, DeliverFrame, ErrorFrame, PublishedFrame } from '../../../src/protocol/index.js';
import { WsEngineHarness } from '../../helpers/ws-engine.js';
import { RawClient, signChallenge } from './raw-client.js';

const harness = new WsEngineHarness();
afterEach(() => harness.cleanup());

const bytes = (text: string) => new TextEncoder().encode(text);

describe('WebSocket server', () => {
  it('runs the native uWebSockets.js binary, not the fallback', async () => {
    const running = await harness.start();
    expect(running.server.backend.kind, running.server.backend.detail).toBe('native');
  });

  it('serves wss:// with a certificate and key (self-signed, made now with openssl)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-tls-'));
    try {
      const certFile = path.join(dir, 'cert.pem');
      const keyFile = path.join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
      const running = await harness.start({ tls: { certFile, keyFile } });
      expect(running.server.tls).toBe(true);
      const me = running.addClient('me');
      const url = running.url.replace('ws://', 'wss://');
      const client = await RawClient.authenticated(url, me.id, me.secretKey, { ca: fs.readFileSync(certFile), servername: 'localhost' });
      expect(await client.request({ t: 'ping', id: client.id() })).toMatchObject({ t: 'pong' });
      client.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('authenticates, publishes, delivers and takes acks', async () => {
    const running = await harness.start();
    const producer = running.addClient('producer', { publish: ['orders/**'], subscribe: [] });
    const reader = running.addClient('reader', { publish: [], subscribe: ['orders/*'] });
    const sub = await RawClient.authenticated(running.url, reader.id, reader.secretKey);
    const subscribed = await sub.request({ t: 'subscribe', id: sub.id(), name: 'audit', pattern: 'orders/*' });
    expect(subscribed).toMatchObject({ t: 'subscribed', subscription: 'reader/audit' });

    const pub = await RawClient.authenticated(running.url, producer.id, producer.secretKey);
    const published = (await pub.request({
      t: 'publish',
      id: pub.id(),
      events: [
        { type: 'orders/created', payload: bytes('one'), id: 'o-1', headers: { trace: 't' } },
        { type: 'orders/paid', payload: bytes('two'), priority: 7 },
      ],
    })) as PublishedFrame;
    expect(published.results).toHaveLength(2);
    expect(published.results[0]).toMatchObject({ id: 'o-1', type: 'orders/created', duplicate: false });

    const deliveries: DeliverFrame['deliveries'] = [];
    while (deliveries.length < 2) deliveries.push(...((await sub.next((f) => f.t === 'deliver')) as DeliverFrame).deliveries);
    expect(deliveries.map((d) => new TextDecoder().decode(d.event.payload)).sort()).toEqual(['one', 'two']);
    const first = deliveries.find((d) => d.event.id === 'o-1')!;
    expect(first.event).toMatchObject({ type: 'orders/created', sender: 'producer', headers: { trace: 't' }, key: null });
    const ok = await sub.request({ t: 'ack', id: sub.id(), subscription: 'reader/audit', deliveries: deliveries.map((d) => [d.shard, d.offset]) });
    expect(ok.t).toBe('ok');
    expect(running.server.sessions.get('reader', Date.now())).toMatchObject({ status: 'active', connections: 1 });

    // The same id again: a duplicate, nothing stored.
    const again = (await pub.request({ t: 'publish', id: pub.id(), events: [{ type: 'orders/created', payload: bytes('one'), id: 'o-1' }] })) as PublishedFrame;
    expect(again.results[0]).toMatchObject({ id: 'o-1', duplicate: true });
    pub.close();
    sub.close();
    await sub.waitClosed();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(running.server.sessions.get('reader', Date.now())).toMatchObject({ status: 'disconnected', connections: 0 });
  });

  it('refuses a wrong signature, an unknown client and a late answer, closing the socket', async () => {
    const running = await harness.start({ limits: { authTimeoutMs: 300 } });
    const known = running.addClient('known');

    const wrongKey = await RawClient.open(running.url);
    const challenge = (await wrongKey.next((f) => f.t === 'challenge')) as ChallengeFrame;
    wrongKey.send({ t: 'hello', id: 1, version: 1, clientId: known.id, signature: signChallenge(challenge, generateSigningKeyPair().secretKey) });
    expect(await wrongKey.next((f) => f.t === 'error')).toMatchObject({ code: 'AUTH_FAILED', id: 1 });
    expect((await wrongKey.waitClosed()).code).toBe(4001);

    const unknown = await RawClient.open(running.url);
    const c2 = (await unknown.next((f) => f.t === 'challenge')) as ChallengeFrame;
    unknown.send({ t: 'hello', id: 1, version: 1, clientId: 'nobody', signature: signChallenge(c2, known.secretKey) });
    expect(await unknown.next((f) => f.t === 'error')).toMatchObject({ code: 'AUTH_FAILED' });
    expect((await unknown.waitClosed()).code).toBe(4001);

    // A signature over another connection's challenge does not open this one.
    const replayed = await RawClient.open(running.url);
    await replayed.next((f) => f.t === 'challenge');
    replayed.send({ t: 'hello', id: 1, version: 1, clientId: known.id, signature: signChallenge(c2, known.secretKey) });
    expect(await replayed.next((f) => f.t === 'error')).toMatchObject({ code: 'AUTH_FAILED' });

    const late = await RawClient.open(running.url);
    expect(await late.next((f) => f.t === 'error', 3000)).toMatchObject({ code: 'AUTH_TIMEOUT' });
    expect((await late.waitClosed()).code).toBe(4002);

    const wrongVersion = await RawClient.open(running.url);
    const c3 = (await wrongVersion.next((f) => f.t === 'challenge')) as ChallengeFrame;
    wrongVersion.send({ t: 'hello', id: 1, version: 99, clientId: known.id, signature: signChallenge(c3, known.secretKey) });
    expect(await wrongVersion.next((f) => f.t === 'error')).toMatchObject({ code: 'UNSUPPORTED_VERSION' });
  });

  it('accepts nothing but hello before authentication', async () => {
    const running = await harness.start();
    const client = await RawClient.open(running.url);
    await client.next((f) => f.t === 'challenge');
    client.send({ t: 'publish', id: 5, events: [{ type: 'orders/created', payload: bytes('x') }] });
    expect(await client.next((f) => f.t === 'error')).toMatchObject({ code: 'PROTOCOL_ERROR', id: 5 });
    expect((await client.waitClosed()).code).toBe(1002);
    expect((await running.engine.shardStats()).every((s) => s.nextOffset === 0)).toBe(true);
  });

  it('answers every class of bad frame with an error frame and keeps serving', async () => {
    const running = await harness.start({ limits: { maxFrameBytes: 64 * 1024 } });
    const me = running.addClient('me');
    const client = await RawClient.authenticated(running.url, me.id, me.secretKey);
    const expectError = async (send: () => void, code: string, id?: number) => {
      send();
      const error = (await client.next((f) => f.t === 'error')) as ErrorFrame;
      expect(error.code).toBe(code);
      if (id !== undefined) expect(error.id).toBe(id);
      return error;
    };
    await expectError(() => client.sendRaw(new Uint8Array([0xc1, 0xff, 0x00])), 'PROTOCOL_ERROR');
    await expectError(() => client.sendRaw('{"t":"ping"}'), 'PROTOCOL_ERROR');
    await expectError(() => client.sendRaw(new Uint8Array(pack([1, 2, 3]))), 'PROTOCOL_ERROR');
    await expectError(() => client.sendRaw(new Uint8Array(pack({ t: 'launch', id: 7 }))), 'PROTOCOL_ERROR', 7);
    const wrongType = await expectError(() => client.sendRaw(new Uint8Array(pack({ t: 'subscribe', id: 8, name: 'x', pattern: 42 }))), 'PROTOCOL_ERROR', 8);
    expect(wrongType.field).toBe('pattern');
    await expectError(() => client.sendRaw(new Uint8Array(70 * 1024)), 'FRAME_TOO_LARGE');
    // Content the engine refuses: a per-event error, nothing stored.
    const published = (await client.request({ t: 'publish', id: 9, events: [{ type: 'bad//type', payload: bytes('x') }] })) as PublishedFrame;
    expect(published.results[0]).toMatchObject({ error: { code: 'INVALID_EVENT', field: 'type' } });
    await expectError(() => client.send({ t: 'subscribe', id: 10, name: 'bad name!', pattern: '**' }), 'INVALID_ARGUMENT', 10);
    await expectError(() => client.send({ t: 'ack', id: 11, subscription: 'me/none', deliveries: [[0, 1]] }), 'NOT_FOUND', 11);
    await expectError(() => client.send({ t: 'pause', id: 12, subscription: 'other/s' }), 'FORBIDDEN', 12);
    expect((await running.engine.shardStats()).every((s) => s.nextOffset === 0)).toBe(true);
    expect(await client.request({ t: 'ping', id: 13 })).toMatchObject({ t: 'pong', id: 13 });
    expect(client.closed).toBeNull();
  });

  it("refuses publishing and subscribing outside the client's patterns", async () => {
    const running = await harness.start();
    const limited = running.addClient('limited', { publish: ['orders/*'], subscribe: ['orders/created'] });
    const client = await RawClient.authenticated(running.url, limited.id, limited.secretKey);
    const published = (await client.request({
      t: 'publish',
      id: client.id(),
      events: [
        { type: 'orders/created', payload: bytes('ok') },
        { type: 'payments/sent', payload: bytes('no') },
      ],
    })) as PublishedFrame;
    expect(published.results[0]).toMatchObject({ type: 'orders/created' });
    expect(published.results[1]).toMatchObject({ error: { code: 'FORBIDDEN', field: 'type' } });
    const refused = await client.request({ t: 'subscribe', id: client.id(), name: 's', pattern: 'orders/*' });
    expect(refused).toMatchObject({ t: 'error', code: 'FORBIDDEN', field: 'pattern' });
    expect(await client.request({ t: 'subscribe', id: client.id(), name: 's', pattern: 'orders/created' })).toMatchObject({ t: 'subscribed' });
  });

  it('pings authenticated connections and closes one that stops answering', async () => {
    const running = await harness.start({ limits: { heartbeatMs: 150 } });
    const me = running.addClient('me');
    const silent = await RawClient.authenticated(running.url, me.id, me.secretKey);
    const answering = await RawClient.authenticated(running.url, me.id, me.secretKey);
    const ping = await answering.next((f) => f.t === 'ping');
    answering.send({ t: 'pong', id: (ping as { id: number }).id });
    expect((await silent.waitClosed(3000)).code).toBe(1001);
    for (let i = 0; i < 3; i++) {
      const next = await answering.next((f) => f.t === 'ping');
      answering.send({ t: 'pong', id: (next as { id: number }).id });
    }
    expect(answering.closed).toBeNull();
  });

  it('limits the subscriptions one connection may hold', async () => {
    const running = await harness.start({ limits: { maxSubscriptionsPerConnection: 2 } });
    const me = running.addClient('me');
    const client = await RawClient.authenticated(running.url, me.id, me.secretKey);
    for (const name of ['a', 'b']) expect(await client.request({ t: 'subscribe', id: client.id(), name, pattern: '**' })).toMatchObject({ t: 'subscribed' });
    expect(await client.request({ t: 'subscribe', id: client.id(), name: 'c', pattern: '**' })).toMatchObject({ t: 'error', code: 'LIMIT_EXCEEDED' });
    expect(await client.request({ t: 'publish', id: client.id(), events: Array.from({ length: 1001 }, () => ({ type: 'x/y', payload: new Uint8Array(1) })) })).toMatchObject({
      t: 'error',
      code: 'LIMIT_EXCEEDED',
      field: 'events',
    });
  });

  it('limits the connections one client may hold', async () => {
    const running = await harness.start({ limits: { maxConnectionsPerClient: 2 } });
    const me = running.addClient('me');
    await RawClient.authenticated(running.url, me.id, me.secretKey);
    await RawClient.authenticated(running.url, me.id, me.secretKey);
    await expect(RawClient.authenticated(running.url, me.id, me.secretKey)).rejects.toThrow(/LIMIT_EXCEEDED/);
  });

  it('picks up a client added to the registry while running', async () => {
    const running = await harness.start();
    const other = running.addClient('late-comer');
    const client = await RawClient.authenticated(running.url, other.id, other.secretKey);
    expect(client.closed).toBeNull();
  });

  it('redelivers at once what a dropped connection held, to another connection of the subscription', async () => {
    const running = await harness.start();
    const me = running.addClient('me');
    const first = await RawClient.authenticated(running.url, me.id, me.secretKey);
    await first.request({ t: 'subscribe', id: first.id(), name: 'work', pattern: 'jobs/**', ackTimeoutMs: 60_000 });
    await first.request({ t: 'publish', id: first.id(), events: [{ type: 'jobs/run', payload: bytes('job'), id: 'job-1' }] });
    const held = (await first.next((f) => f.t === 'deliver')) as DeliverFrame;
    expect(held.deliveries[0]!.attempt).toBe(1);
    const second = await RawClient.authenticated(running.url, me.id, me.secretKey);
    await second.request({ t: 'subscribe', id: second.id(), name: 'work', pattern: 'jobs/**', ackTimeoutMs: 60_000 });
    const started = Date.now();
    first.socket.terminate();
    const again = (await second.next((f) => f.t === 'deliver')) as DeliverFrame;
    expect(again.deliveries[0]).toMatchObject({ attempt: 2, event: { id: 'job-1' } });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('keeps memory bounded for a consumer that stops reading', { timeout: 60_000 }, async () => {
    const running = await harness.start({ limits: { maxBufferedBytes: 64 * 1024, maxQueuedBytes: 8 * 1024 * 1024 } });
    const me = running.addClient('me');
    const slow = await RawClient.authenticated(running.url, me.id, me.secretKey);
    await slow.request({ t: 'subscribe', id: slow.id(), name: 'slow', pattern: 'bulk/**', maxInFlight: 200 });
    slow.socket.pause(); // stop reading: the server's send buffer fills
    const producer = await RawClient.authenticated(running.url, me.id, me.secretKey);
    const payload = new Uint8Array(4096);
    for (let batch = 0; batch < 20; batch++) {
      const events = Array.from({ length: 500 }, () => ({ type: 'bulk/item', payload }));
      const reply = (await producer.request({ t: 'publish', id: producer.id(), events })) as PublishedFrame;
      expect(reply.results.every((r) => !('error' in r))).toBe(true);
    }
    // 10,000 events (40 MB) wait on disk; the server holds at most the subscription's window per shard.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssBefore = process.memoryUsage().rss;
    expect(producer.closed).toBeNull();
    expect(await producer.request({ t: 'ping', id: producer.id() })).toMatchObject({ t: 'pong' });
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
    slow.socket.resume();
    // One type, one shard: at most the window (200) is out unacked; acking brings the next ones.
    const received: DeliverFrame['deliveries'] = [];
    while (received.length < 200) received.push(...((await slow.next((f) => f.t === 'deliver')) as DeliverFrame).deliveries);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received.length + slow.frames.filter((f) => f.t === 'deliver').length).toBe(200);
    slow.send({ t: 'ack', subscription: 'me/slow', deliveries: received.map((d) => [d.shard, d.offset]) });
    const more = (await slow.next((f) => f.t === 'deliver')) as DeliverFrame;
    expect(more.deliveries[0]!.offset).toBeGreaterThan(received.at(-1)!.offset);
  });
});
