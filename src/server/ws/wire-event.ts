import type { StoredEvent } from '../../engine/event.js';
import type { TrailEntry as EngineTrailEntry } from '../../engine/shard/trail-log.js';
import type { TrailEntry, WireEvent } from '../../protocol/index.js';

/** An event as the protocol carries it (the engine's stored form, field for field). */
export function toWireEvent(event: StoredEvent): WireEvent {
  return {
    id: event.id,
    type: event.type,
    payload: event.payload,
    headers: event.headers,
    key: event.key,
    sender: event.sender,
    publishedAt: event.publishedAt,
    recipients: event.recipients,
    signature: event.signature,
    priority: event.priority,
    deliverAt: event.deliverAt,
    expiresAt: event.expiresAt,
  };
}

export function toWireTrail(trail: readonly EngineTrailEntry[]): TrailEntry[] {
  return trail.map((entry) => ({ ...entry }));
}
