import type { StoredEvent } from '../../src/engine/event.js';

/** A stored event with every field set (an empty payload, no key, headers or signature), overridden as given. */
export function storedEvent(overrides: Partial<StoredEvent> = {}): StoredEvent {
  return {
    id: '01HZX3J5Q6W8E9R0T1Y2U30405',
    type: 'orders/created',
    payload: new Uint8Array(0),
    headers: {},
    key: null,
    sender: 'client-1',
    publishedAt: 1_718_000_000_000,
    recipients: null,
    signature: null,
    priority: 4,
    deliverAt: 0,
    expiresAt: 0,
    ...overrides,
  };
}
