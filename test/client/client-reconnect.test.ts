import { afterEach, describe, expect, it } from 'vitest';
import { EnSyncClient, EnSyncError } from '../../src/client/index.js';
import { WsEngineHarness, type WsEngine } from '../helpers/ws-engine.js';
import { EventReader, connectAs, eventually, sleep } from './client-fixtures.js';
import { TcpProxy } from './tcp-proxy.js';

const harness = new WsEngineHarness();
const clients: EnSyncClient[] = [];
const proxies: TcpProxy[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  for (const proxy of proxies.splice(0)) await proxy.close();
  await harness.cleanup();
});

/** An engine, a client connected to it through a proxy that can be cut, and a direct client. */
async function setup(options: Parameters<typeof connectAs>[2] = {}) {
  const running = await harness.start();
  const proxy = await TcpProxy.start(running.server.port);
  proxies.push(proxy);
  const client = await connectAs(proxy.url, running.addClient('alpha'), options);
  const other = await connectAs(running.url, running.addClient('beta'));
  clients.push(client, other);
  return { running, proxy, client, other };
}

function connectedAgain(client: EnSyncClient): Promise<void> {
  return new Promise((resolve) => client.on('connected', resolve));
}

/** How many stored events of `type` carry `id`: read back from the start of the log by a fresh subscription. */
async function storedCopies(running: WsEngine, type: string, id: string): Promise<number> {
  const counter = await connectAs(running.url, running.addClient(`counter-${Date.now()}`));
  clients.push(counter);
  const sub = await counter.subscribe(type, { name: 'count', from: 'all' });
  const reader = new EventReader(sub);
  let copies = 0;
  // Everything of this type is published before this is called: read until quiet.
  for (;;) {
    const event = await reader.next(600).catch(() => null);
    if (event === null) return copies;
    if (event.id === id) copies++;
    await event.ack();
  }
}

describe('EnSyncClient reconnects', () => {
  it('after a cut it reconnects, resubscribes, and gets the unacked delivery again', async () => {
    const { proxy, client, other } = await setup();
    const disconnects: EnSyncError[] = [];
    client.on('disconnected', (error) => disconnects.push(error));
    const sub = await client.subscribe('orders/*', { name: 'orders', ackTimeoutMs: 60_000 });
    const reader = new EventReader(sub);
    const receipt = await other.publish('orders/created', 'first');
    const first = await reader.next();
    expect(first).toMatchObject({ id: receipt.id, attempt: 1 });

    const reconnected = connectedAgain(client);
    proxy.cut();
    await reconnected;
    expect(proxy.connections).toBe(2);
    expect(disconnects).toHaveLength(1);
    expect(disconnects[0]!.code).toBe('CONNECTION_LOST');
    // The ack of a delivery from the dropped connection goes nowhere, quietly.
    await expect(first.ack()).resolves.toBeUndefined();

    const again = await reader.next();
    expect(again).toMatchObject({ id: receipt.id, offset: first.offset, shard: first.shard });
    expect(again.attempt).toBeGreaterThanOrEqual(2);
    await again.ack();
    // The subscription keeps working on the new connection.
    const later = await other.publish('orders/created', 'second');
    const next = await reader.next();
    expect(next.id).toBe(later.id);
    await next.ack();
    await eventually(async () => expect((await client.getEvent('orders/created', receipt.id)).trail.map((e) => e.kind)).toContain('acked'));
  });

  it('re-sends a publish whose result was lost in the cut: it resolves once and is stored once', async () => {
    const { running, proxy, client } = await setup();
    proxy.holdReplies = true;
    const reconnected = connectedAgain(client);
    const publishing = client.publish('audit/entry', { n: 1 }, { id: 'audit-1' });
    // Stored by the engine, but the reply is held back by the proxy.
    await eventually(() => running.engine.eventTrail('audit/entry', 'audit-1'));
    expect(client.pendingPublishes).toBe(1);
    proxy.cut();
    const receipt = await publishing;
    await reconnected;
    expect(receipt).toMatchObject({ id: 'audit-1', type: 'audit/entry', duplicate: true });
    expect(client.pendingPublishes).toBe(0);
    expect(await storedCopies(running, 'audit/entry', 'audit-1')).toBe(1);
  });

  it('re-sends a publish that never reached the server, with the id the client gave it', async () => {
    const { running, proxy, client } = await setup();
    proxy.holdRequests = true;
    const publishing = client.publish('audit/lost', new Uint8Array([5]));
    await sleep(100);
    proxy.cut();
    const receipt = await publishing;
    expect(receipt.duplicate).toBe(false);
    expect(await storedCopies(running, 'audit/lost', receipt.id)).toBe(1);
  });

  it('keeps publishes made while disconnected and sends them once reconnected, in order', async () => {
    const { running, proxy, client } = await setup({ reconnect: { initialDelayMs: 300, maxDelayMs: 300 } });
    const disconnected = new Promise((resolve) => client.on('disconnected', resolve));
    proxy.cut();
    await disconnected;
    expect(client.isConnected).toBe(false);
    const receipts = await Promise.all([1, 2, 3].map((n) => client.publish('queue/item', n, { key: 'same' })));
    expect(receipts.map((r) => r.duplicate)).toEqual([false, false, false]);
    const readerClient = await connectAs(running.url, running.addClient('reader'));
    clients.push(readerClient);
    const sub = await readerClient.subscribe('queue/*', { name: 'q', from: 'all' });
    const reader = new EventReader(sub);
    const values = [];
    for (let i = 0; i < 3; i++) {
      const event = await reader.next();
      values.push(event.value);
      await event.ack();
    }
    expect(values).toEqual([1, 2, 3]);
    await sub.unsubscribe();
  });

  it('close() stops reconnecting and fails what is pending with CLIENT_CLOSED; iterators finish', async () => {
    const { proxy, client } = await setup();
    const sub = await client.subscribe('x/*', { name: 'x' });
    const reader = new EventReader(sub);
    const attempts: number[] = [];
    client.on('reconnecting', (n) => attempts.push(n));
    await proxy.close(); // cut, and nothing listens any more: reconnects fail
    await eventually(() => expect(attempts.length).toBeGreaterThanOrEqual(2));
    const publishing = client.publish('x/y', 1);
    const getting = client.getEvent('x/y', 'nope');
    const ended = reader.ends();
    await client.close();
    await expect(publishing).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    await expect(getting).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(await ended).toBe(true);
    const seen = attempts.length;
    await sleep(300);
    expect(attempts.length).toBe(seen);
    await expect(client.publish('x/y', 2)).rejects.toBeInstanceOf(EnSyncError);
  });

  it('gives up when a reconnect is refused with AUTH_FAILED (the client was removed): iterators throw it', async () => {
    const { running, proxy, client } = await setup();
    const sub = await client.subscribe('x/*', { name: 'x' });
    const reader = new EventReader(sub);
    const closed = new Promise<EnSyncError | null>((resolve) => client.on('closed', resolve));
    running.store.remove('alpha');
    running.clients.reload();
    proxy.cut();
    expect(await closed).toMatchObject({ code: 'AUTH_FAILED' });
    await expect(reader.next()).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    await expect(client.publish('x/y', 1)).rejects.toMatchObject({ code: 'AUTH_FAILED' });
  });

  it('with reconnect: false, a drop closes the client', async () => {
    const { proxy, client } = await setup({ reconnect: false });
    const closed = new Promise<EnSyncError | null>((resolve) => client.on('closed', resolve));
    proxy.cut();
    expect(await closed).toMatchObject({ code: 'CONNECTION_LOST' });
    expect(client.isClosed).toBe(true);
    await expect(client.publish('a/b', 1)).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
  });

  it('detects a silent server (no frames for 2 × heartbeatMs) and reconnects', async () => {
    const running = await harness.start({ limits: { heartbeatMs: 150 } });
    const proxy = await TcpProxy.start(running.server.port);
    proxies.push(proxy);
    const client = await connectAs(proxy.url, running.addClient('alpha'));
    clients.push(client);
    await sleep(400); // pings arrive and are answered: still connected
    expect(client.isConnected).toBe(true);
    expect(proxy.connections).toBe(1);
    const disconnected = new Promise<EnSyncError>((resolve) => client.on('disconnected', resolve));
    const reconnected = connectedAgain(client);
    proxy.partition(); // the path goes quiet without closing
    expect((await disconnected).message).toContain('nothing heard');
    await reconnected;
    expect(proxy.connections).toBe(2);
    await expect(client.publish('hb/ok', 1)).resolves.toMatchObject({ type: 'hb/ok' });
  });
});
