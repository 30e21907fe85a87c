/**
 * The EnSync client SDK (Node and browsers): `import { EnSyncClient, generateKeyPair } from
 * 'ensync-node-engine/client'`.
 */
export { EnSyncClient, DEFAULT_REQUEST_TIMEOUT_MS } from './client.js';
export type { ConnectOptions, ClientEvents } from './client.js';
export { Subscription, DEFAULT_MAX_IN_FLIGHT } from './subscription.js';
export type { SubscribeOptions, SubscriptionEvents } from './subscription.js';
export type { PublishOptions } from './publish-event.js';
export type { PublishReceipt } from './publish-pipeline.js';
export type { EventData, ReceivedEvent } from './received-event.js';
export type { ReconnectOptions } from './backoff.js';
export { EnSyncError, isEnSyncError } from './errors.js';
export type { EnSyncErrorCode, ClientErrorCode } from './errors.js';
export { generateKeyPair, publicKeyOf } from './keys.js';
export type { KeyPair } from './keys.js';
export { canonicalSigningBytes } from './event-signing.js';
export { MSGPACK_CONTENT_TYPE, CONTENT_TYPE_HEADER } from './payload.js';
export type { DeadLetter, StartFrom, TrailEntry } from '../protocol/index.js';
