import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_FRAME_TYPES,
  ProtocolError,
  SERVER_FRAME_TYPES,
  decodeClientFrame,
  decodeServerFrame,
  encodeFrame,
  type ClientFrame,
  type PublishFrame,
} from '../../src/protocol/index.js';
import { CLIENT_FRAMES, SERVER_FRAMES, bytes, wireEvent } from './sample-frames.js';

const MAX = 16 * 1024 * 1024;
/** Writes anything, as a careless or hostile peer would (records off so other decoders could read it). */
const raw = new Packr({ useRecords: false, variableMapSize: true });
const rawWithTypes = new Packr({ useRecords: false, variableMapSize: true, moreTypes: true });

function clientError(input: Uint8Array, maxFrameBytes = MAX): ProtocolError {
  try {
    decodeClientFrame(input, maxFrameBytes);
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('decodeClientFrame accepted a bad frame');
}

function serverError(input: Uint8Array): ProtocolError {
  try {
    decodeServerFrame(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('decodeServerFrame accepted a bad frame');
}

function hex(input: Uint8Array): string {
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('hex');
}

describe('round trip', () => {
  it('covers every frame type', () => {
    expect(new Set(CLIENT_FRAMES.map((frame) => frame.t))).toEqual(new Set(CLIENT_FRAME_TYPES));
    expect(new Set(SERVER_FRAMES.map((frame) => frame.t))).toEqual(new Set(SERVER_FRAME_TYPES));
  });

  it.each(CLIENT_FRAMES.map((frame, i) => [`${i} ${frame.t}`, frame] as const))('client frame %s', (_name, frame) => {
    const decoded = decodeClientFrame(encodeFrame(frame), MAX);
    expect(decoded).toEqual(frame);
  });

  it.each(SERVER_FRAMES.map((frame, i) => [`${i} ${frame.t}`, frame] as const))('server frame %s', (_name, frame) => {
    const decoded = decodeServerFrame(encodeFrame(frame));
    expect(decoded).toEqual(frame);
  });

  it('returns bins as plain Uint8Array even from a Node Buffer', () => {
    const frame = CLIENT_FRAMES.find((f): f is PublishFrame => f.t === 'publish' && f.events.length === 2)!;
    const decoded = decodeClientFrame(Buffer.from(encodeFrame(frame)), MAX) as PublishFrame;
    expect(decoded.events[0]!.payload.constructor).toBe(Uint8Array);
    expect(decoded.events[0]!.signature!.constructor).toBe(Uint8Array);
    const encoded = encodeFrame(frame);
    expect(encoded.constructor).toBe(Uint8Array);
  });

  it('writes integers past 32 bits as msgpack ints, not floats', () => {
    expect(hex(encodeFrame({ t: 'ok', id: 2 ** 40 }))).toBe('82a174a26f6ba26964d30000010000000000');
    expect(hex(encodeFrame({ t: 'ok', id: 2 ** 32 - 1 }))).toBe('82a174a26f6ba26964ceffffffff');
    // A generic msgpack reader that keeps 64-bit ints as BigInt sees an integer, never a float.
    const strict = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });
    const read = strict.unpack(encodeFrame(SERVER_FRAMES.find((f) => f.t === 'deliver')!) as Buffer) as {
      deliveries: Array<{ offset: unknown; event: { publishedAt: unknown } }>;
    };
    expect(read.deliveries[0]!.offset).toBe(BigInt(2 ** 33 + 5));
    expect(read.deliveries[0]!.event.publishedAt).toBe(BigInt(1_760_000_000_123));
  });

  it('leaves out fields set to undefined', () => {
    const frame = { t: 'ack', id: undefined, subscription: 's/x', deliveries: [[1, 2]] } as unknown as ClientFrame;
    const decoded = decodeClientFrame(encodeFrame(frame), MAX);
    expect(decoded).toEqual({ t: 'ack', subscription: 's/x', deliveries: [[1, 2]] });
    expect('id' in decoded).toBe(false);
  });

  it('reads frames written by other msgpack encoders: int64 for small values, str8 keys, map16', () => {
    // {"t":"ping","id":5} with the id as uint64 and the map as map16, as some encoders write it.
    const ping = Uint8Array.from(Buffer.from('de0002' + 'd90174' + 'a470696e67' + 'd9026964' + 'cf0000000000000005', 'hex'));
    expect(decodeClientFrame(ping, MAX)).toEqual({ t: 'ping', id: 5 });
  });

  it('refuses to encode values msgpack frames cannot hold, naming the field', () => {
    const bad = { t: 'publish', id: 1, events: [{ type: 'a', payload: new Date() }] } as unknown as ClientFrame;
    expect(() => encodeFrame(bad)).toThrow(ProtocolError);
    try {
      encodeFrame(bad);
    } catch (error) {
      expect((error as ProtocolError).field).toBe('events[0].payload');
      expect((error as ProtocolError).message).toContain('events[0].payload');
    }
    const cyclic: Record<string, unknown> = { t: 'ping' };
    cyclic.id = cyclic;
    expect(() => encodeFrame(cyclic as unknown as ClientFrame)).toThrow(/nested more than 16 levels/);
  });
});

describe('bad input', () => {
  it('not msgpack: truncated data and trailing bytes', () => {
    const truncated = clientError(Uint8Array.from([0x82, 0xa1, 0x74]));
    expect(truncated.code).toBe('PROTOCOL_ERROR');
    expect(truncated.message).toMatch(/not valid msgpack/);
    expect(truncated.requestId).toBeUndefined();

    const valid = encodeFrame({ t: 'ping', id: 1 });
    const trailing = clientError(Uint8Array.from([...valid, 0x00]));
    expect(trailing.code).toBe('PROTOCOL_ERROR');
    expect(trailing.message).toMatch(/not valid msgpack/);

    expect(clientError(new Uint8Array(0)).code).toBe('PROTOCOL_ERROR');
  });

  it('msgpack but not a map', () => {
    for (const value of [[1, 2], 'ping', 7, null, true, new Uint8Array(3)]) {
      const error = clientError(raw.pack(value));
      expect(error.code).toBe('PROTOCOL_ERROR');
      expect(error.message).toMatch(/must be a msgpack map/);
      expect(error.field).toBeUndefined();
    }
    // 0xc1 is "never used" in msgpack; msgpackr turns it into an object, which is still not a map.
    expect(clientError(Uint8Array.from([0xc1])).message).toMatch(/must be a msgpack map/);
  });

  it('a text frame (not bytes) is refused', () => {
    const error = clientError('{"t":"ping"}' as unknown as Uint8Array);
    expect(error.code).toBe('PROTOCOL_ERROR');
  });

  it('unknown or missing t, with the request id when readable', () => {
    const unknown = clientError(raw.pack({ t: 'bogus', id: 7 }));
    expect(unknown).toMatchObject({ code: 'PROTOCOL_ERROR', field: 't', requestId: 7 });
    expect(unknown.message).toContain('"bogus"');

    expect(clientError(raw.pack({ id: 8 }))).toMatchObject({ field: 't', requestId: 8 });
    expect(clientError(raw.pack({ t: 3, id: 9 }))).toMatchObject({ field: 't', requestId: 9 });
    expect(clientError(raw.pack({ t: 'constructor', id: 10 }))).toMatchObject({ field: 't', requestId: 10 });
    // A server frame type is not a client frame, and the other way round.
    expect(clientError(raw.pack({ t: 'welcome', id: 11 }))).toMatchObject({ field: 't', requestId: 11 });
    expect(serverError(raw.pack({ t: 'hello', id: 12 }))).toMatchObject({ field: 't', requestId: 12 });
    // An id that is not a request id is not reported as one.
    expect(clientError(raw.pack({ t: 'bogus', id: -1 })).requestId).toBeUndefined();
    expect(clientError(raw.pack({ t: 'bogus', id: '7' })).requestId).toBeUndefined();
  });

  it('missing fields', () => {
    expect(clientError(raw.pack({ t: 'subscribe', id: 3, name: 'x' }))).toMatchObject({ code: 'PROTOCOL_ERROR', field: 'pattern', requestId: 3 });
    expect(clientError(raw.pack({ t: 'ping' }))).toMatchObject({ field: 'id', requestId: undefined });
    expect(clientError(raw.pack({ t: 'publish', id: 4, events: [{ type: 'a' }] }))).toMatchObject({ field: 'events[0].payload', requestId: 4 });
    expect(serverError(raw.pack({ t: 'welcome', id: 0, version: 1, clientId: 'a', requireSignatures: true, heartbeatMs: 1, limits: { maxFrameBytes: 1, maxPayloadBytes: 1 } }))).toMatchObject({
      field: 'limits.maxEventsPerPublish',
      requestId: 0,
    });
    const noKey = { ...wireEvent() } as Partial<ReturnType<typeof wireEvent>>;
    delete noKey.key;
    expect(serverError(raw.pack({ t: 'deliver', subscription: 's/x', deliveries: [{ shard: 0, offset: 1, attempt: 1, event: noKey }] }))).toMatchObject({
      field: 'deliveries[0].event.key',
    });
    // msgpackr's `undefined` extension counts as absent.
    expect(clientError(raw.pack({ t: 'unsubscribe', id: 5, subscription: undefined }))).toMatchObject({ field: 'subscription', requestId: 5 });
  });

  const wrongTypes: Array<[string, Record<string, unknown>, string, number | undefined]> = [
    ['string', { t: 'subscribe', id: 1, name: 5, pattern: '**' }, 'name', 1],
    ['request id negative', { t: 'ping', id: -1 }, 'id', undefined],
    ['request id float', { t: 'ping', id: 1.5 }, 'id', undefined],
    ['request id past 2^53', { t: 'ping', id: 2 ** 53 }, 'id', undefined],
    ['offset float', { t: 'ack', id: 2, subscription: 's/x', deliveries: [[0, 1.5]] }, 'deliveries[0][1]', 2],
    ['shard negative', { t: 'ack', subscription: 's/x', deliveries: [[-1, 1]] }, 'deliveries[0][0]', undefined],
    ['tuple length', { t: 'nack', id: 3, subscription: 's/x', deliveries: [[1]] }, 'deliveries[0]', 3],
    ['array', { t: 'publish', id: 4, events: { type: 'a' } }, 'events', 4],
    ['bin', { t: 'publish', id: 5, events: [{ type: 'a', payload: 'abc' }] }, 'events[0].payload', 5],
    ['bin length', { t: 'hello', id: 6, version: 1, clientId: 'a', signature: new Uint8Array(63) }, 'signature', 6],
    ['boolean', { t: 'subscribe', id: 7, name: 'n', pattern: '**', ordered: 'yes' }, 'ordered', 7],
    ['number', { t: 'publish', id: 8, events: [{ type: 'a', payload: new Uint8Array(1), ttlMs: '60s' }] }, 'events[0].ttlMs', 8],
    ['header value', { t: 'publish', id: 9, events: [{ type: 'a', payload: new Uint8Array(1), headers: { trace: 1 } }] }, 'events[0].headers.trace', 9],
    ['headers map', { t: 'publish', id: 10, events: [{ type: 'a', payload: new Uint8Array(1), headers: ['a'] }] }, 'events[0].headers', 10],
    ['recipients entry', { t: 'publish', id: 11, events: [{ type: 'a', payload: new Uint8Array(1), recipients: ['b', 2] }] }, 'events[0].recipients[1]', 11],
    ['start position', { t: 'seek', id: 12, subscription: 's/x', from: 'oldest' }, 'from', 12],
    ['start time', { t: 'seek', id: 13, subscription: 's/x', from: { time: -5 } }, 'from.time', 13],
    ['which', { t: 'replay-dead-letters', id: 14, subscription: 's/x', which: 'some' }, 'which', 14],
    ['nil for an optional field', { t: 'dead-letters', id: 15, subscription: 's/x', limit: null }, 'limit', 15],
    ['date for a string', { t: 'get-event', id: 16, type: 'a', eventId: new Date(0) }, 'eventId', 16],
  ];
  it.each(wrongTypes)('wrong type: %s', (_name, frame, field, requestId) => {
    const error = clientError(raw.pack(frame));
    expect(error).toMatchObject({ code: 'PROTOCOL_ERROR', field, requestId });
    expect(error.message).toContain(field);
  });

  it('wrong types in server frames', () => {
    expect(serverError(raw.pack({ t: 'challenge', versions: [1], serverId: 's', connectionId: 'c', nonce: new Uint8Array(31), authTimeoutMs: 1 }))).toMatchObject({ field: 'nonce' });
    expect(serverError(raw.pack({ t: 'error', id: 3, code: 'NOPE', message: 'm', retryable: false }))).toMatchObject({ field: 'code', requestId: 3 });
    expect(serverError(raw.pack({ t: 'published', id: 4, results: [{ error: { code: 'INTERNAL', message: 'm', retryable: 'no' } }] }))).toMatchObject({
      field: 'results[0].error.retryable',
      requestId: 4,
    });
    expect(serverError(raw.pack({ t: 'published', id: 5, results: [{ id: 'e', type: 'a', offset: 1, shard: 0 }] }))).toMatchObject({ field: 'results[0].duplicate' });
    const event = { ...wireEvent(), recipients: 'svc-b' };
    expect(serverError(raw.pack({ t: 'event', id: 6, event, shard: 0, offset: 0, trail: [] }))).toMatchObject({ field: 'event.recipients', requestId: 6 });
    expect(serverError(raw.pack({ t: 'event', id: 7, event: wireEvent(), shard: 0, offset: 0, trail: [{ kind: 'teleported', at: 1 }] }))).toMatchObject({
      field: 'trail[0].kind',
    });
  });

  it('extra fields are refused by name, at any depth', () => {
    expect(clientError(raw.pack({ t: 'ping', id: 1, extra: true }))).toMatchObject({ code: 'PROTOCOL_ERROR', field: 'extra', requestId: 1 });
    const sender = clientError(raw.pack({ t: 'publish', id: 2, events: [{ type: 'a', payload: new Uint8Array(1), sender: 'me' }] }));
    expect(sender).toMatchObject({ field: 'events[0].sender', requestId: 2 });
    expect(sender.message).toContain('events[0].sender is not a field here');
    expect(clientError(raw.pack({ t: 'seek', id: 3, subscription: 's/x', from: { time: 1, offset: 2 } }))).toMatchObject({ field: 'from.offset' });
    expect(serverError(raw.pack({ ...SERVER_FRAMES[1], limits: { ...(SERVER_FRAMES[1] as { limits: object }).limits, more: 1 } }))).toMatchObject({
      field: 'limits.more',
    });
    // "__proto__" arrives renamed by msgpackr and is refused like any unknown field, without touching prototypes.
    const proto = clientError(Uint8Array.from(Buffer.from('83a174a470696e67a2696401a95f5f70726f746f5f5f81a8706f6c6c75746564c3', 'hex')));
    expect(proto).toMatchObject({ code: 'PROTOCOL_ERROR', requestId: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('oversized frames are refused before decoding', () => {
    const frame = encodeFrame({ t: 'publish', id: 1, events: [{ type: 'a', payload: bytes(1000) }] });
    const tooLarge = clientError(frame, frame.byteLength - 1);
    expect(tooLarge).toMatchObject({ code: 'FRAME_TOO_LARGE', requestId: undefined, retryable: false });
    expect(tooLarge.message).toContain(`${frame.byteLength} bytes`);
    expect(decodeClientFrame(frame, frame.byteLength).t).toBe('publish');
    // Not even malformed bytes are parsed once they are over the limit.
    expect(clientError(new Uint8Array(100).fill(0xc1), 99).code).toBe('FRAME_TOO_LARGE');
    try {
      decodeServerFrame(frame, 10);
      throw new Error('accepted');
    } catch (error) {
      expect((error as ProtocolError).code).toBe('FRAME_TOO_LARGE');
    }
  });

  it('unsafe 64-bit integers and non-Uint8Array typed arrays are refused', () => {
    // {"t":"ping","id": 2^63 as uint64}
    const huge = Uint8Array.from(Buffer.from('82a174a470696e67a26964cf8000000000000000', 'hex'));
    expect(clientError(huge)).toMatchObject({ field: 'id', requestId: undefined });
    expect(clientError(huge).message).toContain('bigint');
    const floats = rawWithTypes.pack({ t: 'publish', id: 3, events: [{ type: 'a', payload: new Float64Array([1.5, 2.5]) }] });
    expect(clientError(floats)).toMatchObject({ field: 'events[0].payload', requestId: 3 });
  });
});

describe('decoding from a subarray of a larger buffer', () => {
  const payload = Uint8Array.from({ length: 256 }, (_, i) => i);
  const frame: ClientFrame = { t: 'publish', id: 77, events: [{ type: 'a/b', payload, signature: bytes(64, 11) }, { type: 'c', payload: payload.subarray(100, 103) }] };

  for (const offset of [0, 1, 3, 7, 13]) {
    it(`keeps payload bytes exact at offset ${offset}`, () => {
      const encoded = encodeFrame(frame);
      const memory = new ArrayBuffer(offset + encoded.byteLength + 17);
      const whole = new Uint8Array(memory);
      whole.fill(0xee);
      whole.set(encoded, offset);
      for (const input of [whole.subarray(offset, offset + encoded.byteLength), Buffer.from(memory, offset, encoded.byteLength)]) {
        const decoded = decodeClientFrame(input, MAX) as PublishFrame;
        expect(decoded.id).toBe(77);
        expect(decoded.events[0]!.payload).toEqual(payload);
        expect(decoded.events[0]!.payload.constructor).toBe(Uint8Array);
        expect(decoded.events[0]!.signature).toEqual(bytes(64, 11));
        expect(decoded.events[1]!.payload).toEqual(Uint8Array.from([100, 101, 102]));
      }
    });
  }

  it('keeps delivered payloads exact, and shares the input bytes (documented: no copy)', () => {
    const deliver = SERVER_FRAMES.find((f) => f.t === 'deliver')!;
    const encoded = encodeFrame(deliver);
    const whole = new Uint8Array(encoded.byteLength + 9);
    whole.set(encoded, 5);
    const input = whole.subarray(5, 5 + encoded.byteLength);
    const decoded = decodeServerFrame(input);
    expect(decoded).toEqual(deliver);
    if (decoded.t !== 'deliver') throw new Error('not a deliver frame');
    const first = decoded.deliveries[0]!.event.payload;
    expect(first.buffer).toBe(whole.buffer);
    input.fill(0);
    expect(first.every((b) => b === 0)).toBe(true);
  });

  it('an offset typed array other than Uint8Array in a frame is refused, not misread', () => {
    const encoded = rawWithTypes.pack({ t: 'publish', id: 5, events: [{ type: 'a', payload: new Float32Array([1, 2, 3]) }] });
    const whole = new Uint8Array(encoded.byteLength + 3);
    whole.set(encoded, 3);
    expect(clientError(whole.subarray(3))).toMatchObject({ code: 'PROTOCOL_ERROR', field: 'events[0].payload', requestId: 5 });
  });
});
