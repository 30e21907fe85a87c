import { EngineError } from '../errors.js';

/**
 * What a record of a shard's event log holds, kept in the record's `attributes`. Scheduling lives in
 * the same log as events, so one log's recovery covers both:
 * - EVENT: a published event, delivered in place;
 * - SCHEDULED: a published event due later; never delivered in place, a FIRED copy is when due;
 * - FIRED: a copy of a scheduled event, or of a deferred delivery, appended when it came due;
 *   body = copy header + the event's body;
 * - DEFER: a consumer deferred a delivery; body = defer header + a copy of the event's body (markers
 *   written before defers carried their event have the header only and point at it), so a defer
 *   fires whatever compaction or retention does to the original meanwhile.
 */
export const RecordKind = { EVENT: 0, SCHEDULED: 1, FIRED: 2, DEFER: 3 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

const KIND_MASK = 0x0f;
const HEADER_VERSION = 1;
/** version, three u64, u16 subscription length */
const FIXED_HEADER_BYTES = 1 + 8 + 8 + 8 + 2;

export function recordKind(attributes: number): RecordKind {
  const kind = attributes & KIND_MASK;
  if (kind > RecordKind.DEFER) throw new EngineError('INTERNAL', `unknown record kind ${kind} in the event log`);
  return kind as RecordKind;
}

/**
 * The header of a FIRED copy or a DEFER marker. `source` is the offset of the record that
 * scheduled it (the SCHEDULED event or the DEFER marker; for a marker itself, its own offset is
 * the source and this field is unused), `eventOffset` the record the event was delivered from,
 * `subscription` the only subscription it is for ('' for all).
 */
export interface ScheduleHeader {
  source: number;
  dueAt: number;
  eventOffset: number;
  subscription: string;
}

/** Encode a header, followed by `eventBody` (a FIRED copy, a DEFER marker; null: header only). */
export function encodeScheduleRecord(header: ScheduleHeader, eventBody: Uint8Array | null): Buffer {
  const subscriptionBytes = Buffer.byteLength(header.subscription, 'utf8');
  if (subscriptionBytes > 0xffff) throw new EngineError('INTERNAL', 'subscription name too long for a schedule record');
  const size = FIXED_HEADER_BYTES + subscriptionBytes + (eventBody?.byteLength ?? 0);
  const out = Buffer.allocUnsafe(size);
  out[0] = HEADER_VERSION;
  out.writeDoubleLE(header.source, 1);
  out.writeDoubleLE(header.dueAt, 9);
  out.writeDoubleLE(header.eventOffset, 17);
  out.writeUInt16LE(subscriptionBytes, 25);
  out.write(header.subscription, FIXED_HEADER_BYTES, 'utf8');
  if (eventBody) out.set(eventBody, FIXED_HEADER_BYTES + subscriptionBytes);
  return out;
}

export function decodeScheduleHeader(body: Uint8Array): ScheduleHeader & { bodyStart: number } {
  if (body.byteLength < FIXED_HEADER_BYTES || body[0] !== HEADER_VERSION) {
    throw new EngineError('INTERNAL', 'malformed schedule record in the event log');
  }
  const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const length = view.readUInt16LE(25);
  const bodyStart = FIXED_HEADER_BYTES + length;
  if (bodyStart > body.byteLength) throw new EngineError('INTERNAL', 'malformed schedule record in the event log');
  return {
    source: view.readDoubleLE(1),
    dueAt: view.readDoubleLE(9),
    eventOffset: view.readDoubleLE(17),
    subscription: view.toString('utf8', FIXED_HEADER_BYTES, bodyStart),
    bodyStart,
  };
}

/**
 * The event body a record carries, for reading the event (EVENT, SCHEDULED, FIRED); null for a
 * DEFER marker. `subscription` is '' unless the record is a copy for one subscription only.
 */
export function eventBodyOf(attributes: number, body: Uint8Array): { body: Uint8Array; subscription: string } | null {
  const kind = recordKind(attributes);
  if (kind === RecordKind.EVENT || kind === RecordKind.SCHEDULED) return { body, subscription: '' };
  if (kind === RecordKind.DEFER) return null;
  const header = decodeScheduleHeader(body);
  return { body: body.subarray(header.bodyStart), subscription: header.subscription };
}
