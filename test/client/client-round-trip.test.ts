import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EnSyncClient, EnSyncError, MSGPACK_CONTENT_TYPE, type ReceivedEvent } from '../../src/client/index.js';
import { WsEngineHarness } from '../helpers/ws-engine.js';
import { EventReader, connectAs, eventually, sleep } from './client-fixtures.js';

const harness = new WsEngineHarness();
const clients: EnSyncClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await harness.cleanup();
});

async function setup(limits = {}) {
  const running = await harness.start({ limits });
  const alpha = running.addClient('alpha');
  const client = await connectAs(running.url, alpha);
  clients.push(client);
  return { running, client };
}

describe('EnSyncClient publish and subscribe', () => {
  it('connects to a URL without a path, publishes, receives and acks', async () => {
    const running = await harness.start();
    const alpha = running.addClient('alpha');
    const client = await connectAs(`ws://127.0.0.1:${running.server.port}`, alpha);
    clients.push(client);
    expect(client.url).toBe(`ws://127.0.0.1:${running.server.port}/ws`);
    const sub = await client.subscribe('orders/*', { name: 'orders', from: 'new' });
    expect(sub.key).toBe('alpha/orders');
    const payload = new Uint8Array([1, 2, 3, 250]);
    const receipt = await client.publish('orders/created', payload, { key: 'o-1', headers: { trace: 't1' }, priority: 7 });
    expect(receipt).toMatchObject({ type: 'orders/created', duplicate: false });
    expect(receipt.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);

    const event = await new EventReader(sub).next();
    expect(event).toMatchObject({ id: receipt.id, type: 'orders/created', key: 'o-1', headers: { trace: 't1' }, sender: 'alpha', attempt: 1, priority: 7, shard: receipt.shard, offset: receipt.offset });
    expect([...event.payload]).toEqual([1, 2, 3, 250]);
    expect('value' in event).toBe(false);
    await event.ack();
    const { trail } = await eventually(async () => {
      const found = await client.getEvent('orders/created', receipt.id);
      expect(found.trail.map((entry) => entry.kind)).toContain('acked');
      return found;
    });
    expect(trail[0]!.kind).toBe('published');
    await expect(client.getEvent('orders/created', 'no-such-id')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('round-trips a payload that is not bytes as a msgpack value', async () => {
    const { client } = await setup();
    const sub = await client.subscribe('orders/**', { name: 'values' });
    const value = { order: 42, items: ['a', 'b'], total: 12.5, paid: true, note: null, blob: new Uint8Array([9, 8]), big: 2 ** 40 };
    const receipt = await client.publish('orders/paid', value, { id: 'order-42-paid' });
    expect(receipt.id).toBe('order-42-paid');
    const event = await new EventReader(sub).next();
    expect(event.headers['content-type']).toBe(MSGPACK_CONTENT_TYPE);
    expect(event.value).toMatchObject({ order: 42, items: ['a', 'b'], total: 12.5, paid: true, note: null, big: 2 ** 40 });
    expect([...(event.value as { blob: Uint8Array }).blob]).toEqual([9, 8]);
    await event.ack();
    const stored = await client.getEvent('orders/paid', 'order-42-paid');
    expect(stored.event.value).toEqual(event.value);
  });

  it('redelivers a nacked event with attempt 2', async () => {
    const { client } = await setup();
    const sub = await client.subscribe('jobs/*', { name: 'jobs' });
    const reader = new EventReader(sub);
    const receipt = await client.publish('jobs/run', new Uint8Array([1]));
    const first = await reader.next();
    expect(first.attempt).toBe(1);
    await first.nack();
    const second = await reader.next();
    expect(second).toMatchObject({ id: receipt.id, attempt: 2, offset: first.offset, shard: first.shard });
    await second.ack();
    await expect(first.ack()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('brings a deferred event back later, as a copy with attempt 1', async () => {
    const { client } = await setup();
    const sub = await client.subscribe('jobs/*', { name: 'later' });
    const reader = new EventReader(sub);
    const receipt = await client.publish('jobs/later', 'x');
    const first = await reader.next();
    const deferredAt = Date.now();
    await first.defer(400);
    await sleep(150);
    expect(sub.bufferedCount).toBe(0);
    const again = await reader.next();
    expect(Date.now() - deferredAt).toBeGreaterThanOrEqual(350);
    expect(again).toMatchObject({ id: receipt.id, attempt: 1, value: 'x' });
    expect(again.offset).not.toBe(first.offset);
    await again.ack();
  });

  it('lists a discarded event as a dead letter and replays it', async () => {
    const { client } = await setup();
    const sub = await client.subscribe('mail/*', { name: 'mail' });
    const reader = new EventReader(sub);
    const receipt = await client.publish('mail/send', new Uint8Array([7]));
    const event = await reader.next();
    await event.discard('mailbox full');
    const letters = await eventually(async () => {
      const found = await sub.deadLetters();
      expect(found).toHaveLength(1);
      return found;
    });
    expect(letters[0]).toMatchObject({ id: receipt.id, type: 'mail/send', shard: event.shard, offset: event.offset });
    expect(letters[0]!.reason).toContain('mailbox full');
    expect(await sub.replayDeadLetters([{ shard: letters[0]!.shard, offset: letters[0]!.offset }])).toBe(1);
    const back = await reader.next();
    expect(back.id).toBe(receipt.id);
    await back.ack();
    await eventually(async () => expect(await sub.deadLetters()).toHaveLength(0));
  });

  it('pauses, resumes and replays a subscription', async () => {
    const { client } = await setup();
    const sub = await client.subscribe('feed/*', { name: 'feed' });
    const reader = new EventReader(sub);
    await sub.pause();
    const receipt = await client.publish('feed/item', 1);
    await sleep(300);
    expect(sub.bufferedCount).toBe(0);
    await sub.resume();
    const event = await reader.next();
    expect(event.id).toBe(receipt.id);
    await event.ack();
    await sub.replay({ from: 'all' });
    const replayed = await reader.next();
    expect(replayed.id).toBe(receipt.id);
    await replayed.ack();
  });

  it('delivers to event listeners; a failing listener nacks its event and reports the error', async () => {
    const { client } = await setup();
    const sub = await client.subscribe('tasks/*', { name: 'tasks' });
    const seen: ReceivedEvent[] = [];
    const errors: EnSyncError[] = [];
    sub.on('error', (error) => errors.push(error));
    sub.on('event', async (event) => {
      seen.push(event);
      if (event.attempt === 1) throw new Error('handler broke');
      await event.ack();
    });
    await client.publish('tasks/a', 'a');
    await eventually(() => expect(seen.map((e) => e.attempt)).toEqual([1, 2]));
    expect(errors[0]!.message).toContain('handler broke');
  });

  it('buffers at most `credits` deliveries per shard for the iterator', async () => {
    const { client } = await setup();
    const shards = 2; // the harness engine's shard count
    const sub = await client.subscribe('bulk/*', { name: 'bulk', credits: 3 });
    const receipts = await Promise.all(Array.from({ length: 20 }, (_, i) => client.publish('bulk/item', i, { key: `k${i}` })));
    await eventually(() => expect(sub.bufferedCount).toBeGreaterThanOrEqual(3));
    await sleep(200);
    expect(sub.bufferedCount).toBeLessThanOrEqual(3 * shards);
    const reader = new EventReader(sub);
    const got = new Set<string>();
    while (got.size < 20) {
      const event = await reader.next();
      got.add(event.id);
      await event.ack();
    }
    expect([...got].sort()).toEqual(receipts.map((r) => r.id).sort());
  });
});

describe('EnSyncClient publish batching and bounds', () => {
  it('sends the publishes of one tick in one frame, each promise with its own result', async () => {
    const { client } = await setup();
    // Counts the WebSocket messages the client sends (the `ws` package carries them in Node).
    const send = WebSocket.prototype.send;
    let frames = 0;
    WebSocket.prototype.send = function (this: WebSocket, ...args: unknown[]) {
      frames++;
      return (send as (...a: unknown[]) => void).apply(this, args);
    } as WebSocket['send'];
    try {
      const receipts = await Promise.all(Array.from({ length: 100 }, (_, i) => client.publish(`batch/e${i % 3}`, i, { id: `batch-${i}` })));
      expect(frames).toBe(1);
      receipts.forEach((receipt, i) => expect(receipt).toMatchObject({ id: `batch-${i}`, type: `batch/e${i % 3}`, duplicate: false }));
    } finally {
      WebSocket.prototype.send = send;
    }
  });

  it('keeps within the publish window and maxEventsPerPublish, and refuses past 10 × the window', async () => {
    const { client } = await setup({ publishWindow: 4, maxEventsPerPublish: 2 });
    expect(client.limits).toMatchObject({ publishWindow: 4, maxEventsPerPublish: 2 });
    const outcomes = await Promise.allSettled(Array.from({ length: 45 }, (_, i) => client.publish('window/e', i)));
    const stored = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(stored).toHaveLength(40);
    expect(refused).toHaveLength(5);
    for (const o of refused) expect(o.reason).toMatchObject({ code: 'OVERLOADED', retryable: true });
    expect(client.pendingPublishes).toBe(0);
  });

  it('fails only the event the client may not publish (FORBIDDEN), not its batch', async () => {
    const running = await harness.start();
    const narrow = running.addClient('narrow', { publish: ['orders/**'], subscribe: ['orders/**'] });
    const client = await connectAs(running.url, narrow);
    clients.push(client);
    const [allowed, forbidden] = await Promise.allSettled([client.publish('orders/ok', 1), client.publish('billing/secret', 2)]);
    expect(allowed.status).toBe('fulfilled');
    expect(forbidden.status).toBe('rejected');
    const error = (forbidden as PromiseRejectedResult).reason as EnSyncError;
    expect(error).toBeInstanceOf(EnSyncError);
    expect(error).toMatchObject({ code: 'FORBIDDEN', retryable: false });
    await expect(client.subscribe('billing/*', { name: 'b' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });

  it('refuses a payload over maxFrameBytes before sending it, without closing the connection', async () => {
    const { client } = await setup({ maxFrameBytes: 64 * 1024 });
    await expect(client.publish('big/one', new Uint8Array(100 * 1024))).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' });
    await expect(client.publish('big/small', new Uint8Array(10))).resolves.toMatchObject({ type: 'big/small' });
    expect(client.isConnected).toBe(true);
  });

  it('rejects wrong argument types before anything is sent', async () => {
    const { client } = await setup();
    await expect(client.publish('x/y', undefined)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'payload' });
    await expect(client.publish('x/y', 1, { priority: '5' as unknown as number })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'priority' });
    await expect(client.publish('x/y', 1, { colour: 'red' } as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'colour' });
    await expect(client.publish('x/y', 1, { priority: 12 })).rejects.toMatchObject({ code: 'INVALID_EVENT', field: 'priority' });
  });
});

describe('EnSyncClient.connect', () => {
  it('rejects a wrong secret key with AUTH_FAILED', async () => {
    const running = await harness.start();
    const alpha = running.addClient('alpha');
    const wrong = new Uint8Array(32).fill(7);
    const error = await EnSyncClient.connect(running.url, { clientId: alpha.id, secretKey: wrong }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnSyncError);
    expect(error).toMatchObject({ code: 'AUTH_FAILED', retryable: false });
  });

  it('rejects an unreachable server with CONNECTION_FAILED and bad options with INVALID_ARGUMENT', async () => {
    const running = await harness.start();
    const alpha = running.addClient('alpha');
    const port = running.server.port;
    await harness.stop(running);
    await expect(EnSyncClient.connect(`ws://127.0.0.1:${port}`, { clientId: 'alpha', secretKey: alpha.secretKey, requestTimeoutMs: 2000 })).rejects.toMatchObject({ code: 'CONNECTION_FAILED', retryable: true });
    await expect(EnSyncClient.connect('http://127.0.0.1:1', { clientId: 'alpha', secretKey: alpha.secretKey })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'url' });
    await expect(EnSyncClient.connect(`ws://127.0.0.1:${port}`, { clientId: 'alpha', secretKey: 'not base64!' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'secretKey' });
  });
});
