/**
 * One or more valid frames of every type, with optional fields both present and absent, for round
 * trips and as seeds of the fuzz tests.
 */
import type { ClientFrame, ServerFrame, WireEvent } from '../../src/protocol/index.js';

export function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** Times and offsets past 2^32 on purpose: they must travel as integers, not floats. */
const NOW = 1_760_000_000_123;

export function wireEvent(overrides: Partial<WireEvent> = {}): WireEvent {
  return {
    id: '01J9ZK3V6Q2W8X4Y5Z6A7B8C9D',
    type: 'orders/created',
    payload: bytes(300, 7),
    headers: { trace: 'abc', 'content-type': 'application/json', 'ü-name': 'värde' },
    key: 'order-17',
    sender: 'svc-a',
    publishedAt: NOW,
    recipients: ['svc-b', 'svc-c'],
    signature: bytes(64, 3),
    priority: 4,
    deliverAt: 0,
    expiresAt: NOW + 60_000,
    ...overrides,
  };
}

export const CLIENT_FRAMES: ClientFrame[] = [
  { t: 'hello', id: 0, version: 1, clientId: 'svc-a', signature: bytes(64) },
  { t: 'publish', id: 1, events: [{ type: 'orders/created', payload: new Uint8Array(0) }] },
  {
    t: 'publish',
    id: 2,
    events: [
      {
        type: 'orders/created',
        payload: bytes(1000),
        id: 'order-17-created',
        key: 'order-17',
        headers: { trace: 'abc' },
        recipients: ['svc-b'],
        signature: bytes(64, 9),
        ttlMs: 60_000,
        priority: 9,
        delayMs: 1500,
      },
      { type: 'orders/paid', payload: bytes(5), deliverAt: NOW + 10_000 },
    ],
  },
  { t: 'publish', id: 3, events: [] },
  { t: 'subscribe', id: 4, name: 'billing', pattern: 'orders/**' },
  { t: 'subscribe', id: 5, name: 'billing', pattern: 'orders/*', from: 'all', ordered: true, maxInFlight: 100, ackTimeoutMs: 5000, maxDeliveries: 3, credits: 50 },
  { t: 'subscribe', id: 6, name: 'audit', pattern: '**', from: 'new' },
  { t: 'subscribe', id: 7, name: 'audit', pattern: '**', from: { time: NOW } },
  { t: 'subscribe', id: 8, name: 'audit', pattern: '**', from: { offset: 2 ** 40 } },
  { t: 'unsubscribe', id: 9, subscription: 'svc-b/billing' },
  { t: 'ack', subscription: 'svc-b/billing', deliveries: [[0, 1], [3, 2 ** 35]] },
  { t: 'ack', id: 10, subscription: 'svc-b/billing', deliveries: [] },
  { t: 'nack', subscription: 'svc-b/billing', deliveries: [[1, 7]] },
  { t: 'nack', id: 11, subscription: 'svc-b/billing', deliveries: [[1, 7]], delayMs: 250 },
  { t: 'defer', subscription: 'svc-b/billing', deliveries: [[2, 9]], delayMs: 60_000 },
  { t: 'defer', id: 12, subscription: 'svc-b/billing', deliveries: [[2, 9]], delayMs: 0 },
  { t: 'discard', subscription: 'svc-b/billing', deliveries: [[2, 10]], reason: 'unparseable' },
  { t: 'discard', id: 13, subscription: 'svc-b/billing', deliveries: [[2, 10], [2, 11]], reason: '' },
  { t: 'pause', id: 14, subscription: 'svc-b/billing' },
  { t: 'resume', id: 15, subscription: 'svc-b/billing' },
  { t: 'seek', id: 16, subscription: 'svc-b/billing', from: { time: NOW - 3_600_000 } },
  { t: 'seek', id: 17, subscription: 'svc-b/billing', from: 'all' },
  { t: 'dead-letters', id: 18, subscription: 'svc-b/billing' },
  { t: 'dead-letters', id: 19, subscription: 'svc-b/billing', limit: 10 },
  { t: 'replay-dead-letters', id: 20, subscription: 'svc-b/billing', which: 'all' },
  { t: 'replay-dead-letters', id: 21, subscription: 'svc-b/billing', which: [[0, 4], [1, 5]] },
  { t: 'get-event', id: 22, type: 'orders/created', eventId: 'order-17-created' },
  { t: 'ping', id: 23 },
  { t: 'pong', id: Number.MAX_SAFE_INTEGER },
];

export const SERVER_FRAMES: ServerFrame[] = [
  { t: 'challenge', versions: [1], serverId: 'engine-7f3a', connectionId: 'c-000042', nonce: bytes(32, 5), authTimeoutMs: 10_000 },
  {
    t: 'welcome',
    id: 0,
    version: 1,
    clientId: 'svc-a',
    requireSignatures: false,
    limits: { maxFrameBytes: 4 * 1024 * 1024, maxPayloadBytes: 1024 * 1024, maxEventsPerPublish: 1000, maxSubscriptionsPerConnection: 64, publishWindow: 1000 },
    heartbeatMs: 15_000,
  },
  {
    t: 'published',
    id: 2,
    results: [
      { id: 'order-17-created', type: 'orders/created', offset: 2 ** 33 + 5, shard: 3, duplicate: false },
      { error: { code: 'INVALID_EVENT', message: 'key must not be empty', field: 'key', retryable: false } },
      { error: { code: 'OVERLOADED', message: 'window full', retryable: true } },
    ],
  },
  { t: 'subscribed', id: 4, subscription: 'svc-b/billing' },
  { t: 'ok', id: 9 },
  { t: 'ok', id: 20, count: 17 },
  {
    t: 'deliver',
    subscription: 'svc-b/billing',
    deliveries: [
      { shard: 3, offset: 2 ** 33 + 5, attempt: 1, event: wireEvent() },
      { shard: 0, offset: 0, attempt: 2, event: wireEvent({ key: null, recipients: null, signature: null, headers: {}, payload: new Uint8Array(0), expiresAt: 0 }) },
    ],
  },
  {
    t: 'dead-letters',
    id: 18,
    letters: [{ shard: 1, offset: 7, id: 'e-1', type: 'orders/created', publishedAt: NOW, reason: 'max-deliveries', attempts: 5, at: NOW + 9000 }],
  },
  { t: 'dead-letters', id: 19, letters: [] },
  {
    t: 'event',
    id: 22,
    event: wireEvent(),
    shard: 3,
    offset: 12,
    trail: [
      { kind: 'published', at: NOW, client: 'svc-a' },
      { kind: 'delivered', at: NOW + 5, subscription: 'svc-b/billing', consumer: 'svc-b/billing#1', attempt: 1 },
      { kind: 'deferred', at: NOW + 9, subscription: 'svc-b/billing', delayMs: 1000 },
      { kind: 'due', at: NOW + 1009, subscription: 'svc-b/billing', copyOffset: 40 },
      { kind: 'discarded', at: NOW + 2000, subscription: 'svc-b/billing', reason: 'bad data' },
    ],
  },
  { t: 'pong', id: 23 },
  { t: 'ping', id: 1 },
  { t: 'error', code: 'PROTOCOL_ERROR', message: 'frame is not valid msgpack', retryable: false },
  { t: 'error', id: 4, code: 'INVALID_ARGUMENT', message: 'name must be 1-128 bytes', field: 'name', retryable: false },
];
