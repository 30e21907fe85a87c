import { DEFAULT_EVENT_PRIORITY, type StoredEvent } from '../../src/engine/event.js';
import { encodeEventBody, eventStreamTag } from '../../src/engine/event-codec.js';
import { newEventId } from '../../src/engine/event-id.js';
import { PublishFlag, type EncodedPublishBatch, type ProducerIdentity } from '../../src/engine/shard-messages.js';

export function producerIdentity(id: string): ProducerIdentity {
  return { id, publicKey: null, requireSignatures: false };
}

/**
 * Encode events the way the engine does before they cross to a shard (engine-assigned ids,
 * unsigned), for tests that drive a Shard in-process.
 */
export function encodePublishBatch(producer: ProducerIdentity, events: ReadonlyArray<{ type: string; payload: Uint8Array; key?: string }>): EncodedPublishBatch {
  const now = Date.now();
  const bodies: Uint8Array[] = [];
  let bytes = 0;
  for (const { type, payload, key } of events) {
    const event: StoredEvent = {
      id: newEventId(now),
      type,
      payload,
      headers: {},
      key: key ?? null,
      sender: producer.id,
      publishedAt: now,
      recipients: null,
      signature: null,
      priority: DEFAULT_EVENT_PRIORITY,
      deliverAt: 0,
      expiresAt: 0,
    };
    const body = encodeEventBody(event);
    bodies.push(body);
    bytes += body.length;
  }
  const all = new Uint8Array(bytes);
  const ends = new Uint32Array(events.length);
  let at = 0;
  bodies.forEach((body, i) => {
    all.set(body, at);
    at += body.length;
    ends[i] = at;
  });
  return {
    producers: [producer],
    producerOf: new Uint16Array(events.length),
    bodies: all,
    ends,
    types: [...new Set(events.map((e) => e.type))],
    typeOf: new Uint16Array(events.map((e) => [...new Set(events.map((x) => x.type))].indexOf(e.type))),
    producerIds: [],
    times: new Float64Array(events.length).fill(now),
    flags: new Uint8Array(events.map((e) => (e.key === undefined ? 0 : PublishFlag.KEY))),
    streams: new Uint32Array(events.map((e) => eventStreamTag(e.type))),
    priorities: new Uint8Array(events.length).fill(DEFAULT_EVENT_PRIORITY),
    deliverAts: new Float64Array(events.length),
    expiresAts: new Float64Array(events.length),
  };
}
