import { afterEach, describe, expect, it, vi } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import type { StoredEvent } from '../../src/engine/event.js';
import { encodeEventBody } from '../../src/engine/event-codec.js';
import {
  decodeEventBody,
  decodeEventBodyAt,
  eventPriorityAt,
  readEventRouting,
  readEventRoutingAt,
  readEventTypeAt,
  TypeNames,
  type EventRouting,
} from '../../src/engine/event-decoding.js';
import { Prng } from '../helpers/prng.js';
import { storedEvent } from '../helpers/stored-event.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const event = (overrides: Partial<StoredEvent> = {}): StoredEvent => storedEvent({ payload: Uint8Array.from([1, 2, 3, 4, 5]), ...overrides });

const rng = new Prng(0xdec0de);
const longText = 'x'.repeat(70) + '-ü-' + 'y'.repeat(30); // above the codec's short-string path

/** Events covering every optional part, alone and together, ASCII and not. */
const EVENTS: Array<[string, StoredEvent]> = [
  ['minimal, empty payload', event({ payload: new Uint8Array(0) })],
  ['with key', event({ key: 'customer-17' })],
  ['with an empty key', event({ key: '' })],
  ['with headers', event({ headers: { 'content-type': 'application/json', empty: '', long: longText } })],
  ['with a __proto__ header', event({ headers: JSON.parse('{"a":"1","__proto__":"p","z":"2"}') as Record<string, string> })],
  ['with recipients', event({ recipients: ['client-a', 'client-b'] })],
  ['with no recipients (empty list)', event({ recipients: [] })],
  ['with signature', event({ signature: Uint8Array.from({ length: 64 }, (_, i) => 255 - i) })],
  ['with headers and recipients, no key', event({ headers: { h: 'v', 'x-trace': 'abc' }, recipients: ['r1'], priority: 0 })],
  [
    'non-ASCII sender, key, headers, recipients, type',
    event({
      type: 'orders/eu/créé.v2',
      sender: 'klient-ß-東京',
      key: 'customer/Zoë 🚀',
      headers: { 'x-trace-ünï': 'välue ✓ 😀', plain: 'ascii', [longText]: longText },
      recipients: ['client-β', 'client-😀', ''],
      signature: Uint8Array.from({ length: 64 }, (_, i) => i * 3),
      payload: rng.bytes(1_000),
      priority: 9,
      publishedAt: Number.MAX_SAFE_INTEGER,
      deliverAt: 1_718_000_005_000,
      expiresAt: 2 ** 40 + 17,
    }),
  ],
  ['long ASCII type and sender', event({ type: 'a/'.repeat(60) + 'end', sender: 's'.repeat(128), payload: rng.bytes(70_000) })],
];

/** Decoded events hold views; compare them as plain values (headers in order, as entries). */
function plain(e: StoredEvent): unknown {
  return {
    ...e,
    headers: Object.entries(e.headers),
    payload: Buffer.from(e.payload).toString('hex'),
    signature: e.signature === null ? null : Buffer.from(e.signature).toString('hex'),
  };
}

interface Placed {
  bytes: Uint8Array;
  ranges: Array<[number, number]>;
}

/**
 * `bodies` back to back in one buffer with filler between them, the buffer a view at a non-zero
 * byteOffset of a larger ArrayBuffer (a Buffer or a plain Uint8Array).
 */
function place(bodies: readonly Uint8Array[], kind: 'buffer' | 'uint8array' = 'buffer', filler = 0x5a): Placed {
  const gap = 7;
  const total = bodies.reduce((sum, b) => sum + b.length + gap, gap);
  const backing = new ArrayBuffer(total + 64);
  new Uint8Array(backing).fill(filler);
  const bytes = kind === 'buffer' ? Buffer.from(backing, 13, total) : new Uint8Array(backing, 13, total);
  const ranges: Array<[number, number]> = [];
  let at = gap;
  for (const body of bodies) {
    bytes.set(body, at);
    ranges.push([at, at + body.length]);
    at += body.length + gap;
  }
  return { bytes, ranges };
}

const BODIES = EVENTS.map(([, e]) => encodeEventBody(e));

function internal(fn: () => unknown, what = ''): EngineError {
  try {
    fn();
  } catch (error) {
    if (error instanceof EngineError && error.code === 'INTERNAL') return error;
    throw new Error(`${what}: expected an INTERNAL EngineError, got ${String(error)}`);
  }
  throw new Error(`${what}: expected a throw`);
}

/** Byte positions of the fixed fields of an encoded body. */
function layout(e: StoredEvent): { priority: number; flags: number; publishedAt: number; expiresAt: number } {
  const typeBytes = Buffer.byteLength(e.type, 'utf8');
  const priority = 3 + typeBytes + e.id.length;
  return { priority, flags: priority + 1, publishedAt: priority + 2, expiresAt: priority + 18 };
}

describe('decodeEventBodyAt', () => {
  for (const kind of ['buffer', 'uint8array'] as const) {
    it(`decodes a body in the middle of a larger ${kind} as decodeEventBody decodes it alone`, () => {
      const { bytes, ranges } = place(BODIES, kind);
      EVENTS.forEach(([name, original], i) => {
        const [start, end] = ranges[i]!;
        const alone = decodeEventBody(BODIES[i]!);
        const decoded = decodeEventBodyAt(bytes, start, end, null, null);
        expect(plain(decoded), name).toEqual(plain(alone));
        expect(plain(decoded), name).toEqual(plain(original));
        // payload and signature are views inside the body's range of `bytes`, not copies.
        for (const view of [decoded.payload, decoded.signature]) {
          if (view === null) continue;
          expect(view.buffer, `${name}: a view of the same memory`).toBe(bytes.buffer);
          expect(view.byteOffset).toBeGreaterThanOrEqual(bytes.byteOffset + start);
          expect(view.byteOffset + view.byteLength).toBeLessThanOrEqual(bytes.byteOffset + end);
        }
        expect(Object.hasOwn(decoded.headers, '__proto__')).toBe(Object.hasOwn(original.headers, '__proto__'));
        expect(Object.getPrototypeOf(decoded.headers)).toBe(Object.prototype);
      });
    });
  }

  it('decodes correctly when bodies alternate between buffers', () => {
    const a = place(BODIES, 'buffer', 0x00);
    const b = place([...BODIES].reverse(), 'uint8array', 0xff);
    const n = BODIES.length;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < n; i++) {
        const [as, ae] = a.ranges[i]!;
        const [bs, be] = b.ranges[n - 1 - i]!;
        expect(plain(decodeEventBodyAt(a.bytes, as, ae, null, null))).toEqual(plain(EVENTS[i]![1]));
        expect(plain(decodeEventBodyAt(b.bytes, bs, be, null, null))).toEqual(plain(EVENTS[i]![1]));
        expect(plain(decodeEventBody(BODIES[i]!))).toEqual(plain(EVENTS[i]![1]));
      }
    }
  });

  it('gives the same result when the caller passes the known type and sender', () => {
    const { bytes, ranges } = place(BODIES);
    EVENTS.forEach(([name, original], i) => {
      const [start, end] = ranges[i]!;
      const decoded = decodeEventBodyAt(bytes, start, end, original.type, original.sender);
      expect(plain(decoded), name).toEqual(plain(original));
    });
  });

  it('uses known strings of the stored length as they are, without decoding those bytes', () => {
    // The caller vouches for them (deliveries carry the names they were stored with): a stand-in of
    // the same length comes back, which shows the bytes were skipped, not decoded.
    const original = event({ type: 'orders/created', sender: 'client-1' });
    const { bytes, ranges } = place([encodeEventBody(original)]);
    const decoded = decodeEventBodyAt(bytes, ranges[0]![0], ranges[0]![1], 'ORDERS/CREATED', 'CLIENT-1');
    expect(decoded.type).toBe('ORDERS/CREATED');
    expect(decoded.sender).toBe('CLIENT-1');
    expect(plain({ ...decoded, type: original.type, sender: original.sender })).toEqual(plain(original));
  });

  it('ignores a known type or sender whose length differs from the stored one, and decodes it', () => {
    const { bytes, ranges } = place(BODIES);
    EVENTS.forEach(([name, original], i) => {
      const [start, end] = ranges[i]!;
      const wrongSender = `${original.sender}!`;
      const wrongType = original.type.slice(1);
      const decoded = decodeEventBodyAt(bytes, start, end, wrongType, wrongSender);
      expect(decoded.sender, name).toBe(original.sender);
      expect(decoded.type, name).toBe(original.type);
      expect(plain(decoded), name).toEqual(plain(original));
      const onlySender = decodeEventBodyAt(bytes, start, end, null, '');
      expect(onlySender.sender, name).toBe(original.sender);
    });
  });
});

describe('readEventRoutingAt', () => {
  it('fills its target with the ordering key, recipients and expiry, resetting recipients between events', () => {
    const { bytes, ranges } = place(BODIES);
    const into: EventRouting = { orderingKey: 'stale', recipients: ['stale'], expiresAt: 123 };
    // Twice over, so each event also follows one with recipients and one without.
    for (const order of [EVENTS.map((_, i) => i), EVENTS.map((_, i) => EVENTS.length - 1 - i)]) {
      for (const i of order) {
        const [name, original] = EVENTS[i]!;
        const [start, end] = ranges[i]!;
        readEventRoutingAt(bytes, start, end, null, into);
        const expected = { orderingKey: original.key ?? original.type, recipients: original.recipients, expiresAt: original.expiresAt };
        expect(into, name).toEqual(expected);
        expect(readEventRouting(BODIES[i]!), name).toEqual(expected);
        // With the known type, and with a known type of the wrong length (ignored).
        readEventRoutingAt(bytes, start, end, original.type, into);
        expect(into, `${name}, known type`).toEqual(expected);
        readEventRoutingAt(bytes, start, end, `${original.type}/x`, into);
        expect(into, `${name}, wrong known type`).toEqual(expected);
      }
    }
  });

  it('sets recipients to null for an event without them right after one with them', () => {
    const withRecipients = encodeEventBody(event({ recipients: ['only-me'], headers: { a: 'b' }, expiresAt: 99 }));
    const without = encodeEventBody(event({ key: 'k' }));
    const { bytes, ranges } = place([withRecipients, without]);
    const into: EventRouting = { orderingKey: '', recipients: null, expiresAt: 0 };
    readEventRoutingAt(bytes, ranges[0]![0], ranges[0]![1], null, into);
    expect(into).toEqual({ orderingKey: 'orders/created', recipients: ['only-me'], expiresAt: 99 });
    const previous = into.recipients;
    readEventRoutingAt(bytes, ranges[1]![0], ranges[1]![1], null, into);
    expect(into).toEqual({ orderingKey: 'k', recipients: null, expiresAt: 0 });
    // The earlier event's list was replaced, not emptied in place.
    expect(previous).toEqual(['only-me']);
  });
});

describe('eventPriorityAt', () => {
  it('reads each priority 0-9 of bodies in the middle of a buffer', () => {
    const events = Array.from({ length: 10 }, (_, priority) => event({ priority, key: priority % 2 ? `k${priority}` : null, type: `t/${'p'.repeat(priority)}` }));
    const { bytes, ranges } = place(events.map((e) => encodeEventBody(e)));
    events.forEach((e, i) => {
      expect(eventPriorityAt(bytes, ranges[i]![0], ranges[i]![1])).toBe(e.priority);
    });
    const placed = place(BODIES);
    EVENTS.forEach(([name, original], i) => {
      expect(eventPriorityAt(placed.bytes, placed.ranges[i]![0], placed.ranges[i]![1]), name).toBe(original.priority);
    });
  });
});

describe('TypeNames', () => {
  /** Calls of Buffer's toString (how the decoder turns bytes into strings) during `fn`. */
  function stringDecodes(fn: () => void): number {
    const spy = vi.spyOn(Buffer.prototype, 'toString');
    try {
      fn();
      return spy.mock.calls.length;
    } finally {
      spy.mockRestore();
    }
  }

  it('decodes a type once per stream and returns the cached string for later bodies of that type', () => {
    const names = new TypeNames();
    const e1 = event({ id: 'a1', payload: Uint8Array.of(1) });
    const e2 = event({ id: 'a2', key: 'k', priority: 7 });
    const first = place([encodeEventBody(e1)]);
    const second = place([encodeEventBody(e2), encodeEventBody(e1)], 'uint8array');
    let type = '';
    const firstDecodes = stringDecodes(() => (type = names.typeAt(first.bytes, first.ranges[0]![0], first.ranges[0]![1], 5)));
    expect(type).toBe('orders/created');
    expect(firstDecodes, 'the first body of a stream is decoded').toBeGreaterThan(0);
    const later: string[] = [];
    const laterDecodes = stringDecodes(() => {
      for (let i = 0; i < 3; i++) {
        later.push(names.typeAt(second.bytes, second.ranges[0]![0], second.ranges[0]![1], 5));
        later.push(names.typeAt(second.bytes, second.ranges[1]![0], second.ranges[1]![1], 5));
        later.push(names.typeAt(first.bytes, first.ranges[0]![0], first.ranges[0]![1], 5));
      }
    });
    expect(later.every((t) => t === 'orders/created')).toBe(true);
    expect(laterDecodes, 'later bodies of the type are not decoded again').toBe(0);
  });

  it('returns the right type when two types share a stream tag', () => {
    const names = new TypeNames();
    const types = ['orders/a', 'orders/b', 'orders/ab', 'orders/', 'o', 'orders/créé'];
    const bodies = types.map((type, i) => encodeEventBody(event({ type, id: `id-${i}` })));
    const { bytes, ranges } = place(bodies);
    const rounds = new Prng(77);
    for (let n = 0; n < 200; n++) {
      const i = rounds.int(0, types.length - 1);
      expect(names.typeAt(bytes, ranges[i]![0], ranges[i]![1], 1), `round ${n}`).toBe(types[i]);
    }
    // Alternating strictly as well.
    for (let n = 0; n < 20; n++) {
      const i = n % 2;
      expect(names.typeAt(bytes, ranges[i]![0], ranges[i]![1], 1)).toBe(types[i]);
    }
  });

  it('keeps streams apart and handles non-ASCII types', () => {
    const names = new TypeNames();
    const ascii = encodeEventBody(event({ type: 'billing/paid' }));
    const unicode = encodeEventBody(event({ type: 'billing/payé/東京' }));
    const { bytes, ranges } = place([ascii, unicode]);
    for (let n = 0; n < 5; n++) {
      expect(names.typeAt(bytes, ranges[0]![0], ranges[0]![1], 10)).toBe('billing/paid');
      expect(names.typeAt(bytes, ranges[1]![0], ranges[1]![1], 11)).toBe('billing/payé/東京');
    }
  });

  it('throws INTERNAL for a body cut before the end of its type, even with the type cached', () => {
    const names = new TypeNames();
    const body = encodeEventBody(event());
    const { bytes, ranges } = place([body, body]);
    expect(names.typeAt(bytes, ranges[0]![0], ranges[0]![1], 3)).toBe('orders/created');
    for (const cut of [0, 1, 2, 5, 15]) {
      internal(() => names.typeAt(bytes, ranges[1]![0], ranges[1]![0] + cut, 3), `cut at ${cut}`);
      internal(() => new TypeNames().typeAt(bytes, ranges[1]![0], ranges[1]![0] + cut, 3), `cut at ${cut}, empty cache`);
    }
    expect(names.typeAt(bytes, ranges[1]![0], ranges[1]![1], 3)).toBe('orders/created');
  });
});

describe('malformed bodies', () => {
  const full = EVENTS[EVENTS.length - 2]![1];
  const fullBody = encodeEventBody(full);

  /** Every reader of a body range, each run on [start, end) of `bytes`. */
  function readers(bytes: Uint8Array, start: number, end: number): Array<[string, () => unknown]> {
    const into: EventRouting = { orderingKey: '', recipients: null, expiresAt: 0 };
    return [
      ['decodeEventBodyAt', () => decodeEventBodyAt(bytes, start, end, null, null)],
      ['decodeEventBodyAt with known names', () => decodeEventBodyAt(bytes, start, end, full.type, full.sender)],
      ['readEventRoutingAt', () => readEventRoutingAt(bytes, start, end, null, into)],
      ['eventPriorityAt', () => eventPriorityAt(bytes, start, end)],
      ['readEventTypeAt', () => readEventTypeAt(bytes, start, end)],
    ];
  }

  function spoiled(change: (body: Buffer) => void): Placed {
    const copy = Buffer.from(fullBody);
    change(copy);
    return place([copy]);
  }

  it('throws INTERNAL for an unsupported version, from every reader', () => {
    for (const version of [0, 2, 255]) {
      const { bytes, ranges } = spoiled((b) => (b[0] = version));
      for (const [name, read] of readers(bytes, ranges[0]![0], ranges[0]![1])) internal(read, `${name}, version ${version}`);
    }
  });

  it('throws INTERNAL for a range outside the buffer, from every reader', () => {
    const { bytes, ranges } = place([fullBody]);
    const [start, end] = ranges[0]!;
    const cases: Array<[number, number]> = [
      [start, bytes.length + 1],
      [start, end + 100_000],
      [-1, end],
      [end, start],
      [start, start],
      [bytes.length, bytes.length],
      [bytes.length + 5, bytes.length + 10],
    ];
    for (const [s, e] of cases) {
      for (const [name, read] of readers(bytes, s, e)) internal(read, `${name} [${s}, ${e})`);
    }
    // A body that ends exactly at the end of its view, with more of the ArrayBuffer behind it.
    const tight = place([fullBody]);
    const view = tight.bytes.subarray(tight.ranges[0]![0], tight.ranges[0]![1]);
    expect(plain(decodeEventBodyAt(view, 0, view.length, null, null))).toEqual(plain(full));
    internal(() => decodeEventBodyAt(view, 0, view.length + 1, null, null), 'one past the view');
  });

  it('throws INTERNAL for bytes after the payload', () => {
    const { bytes, ranges } = place([fullBody]);
    const [start, end] = ranges[0]!;
    for (const extra of [1, 2, 7]) internal(() => decodeEventBodyAt(bytes, start, end + extra, null, null), `${extra} extra`);
    const padded = Buffer.concat([fullBody, Buffer.of(0)]);
    internal(() => decodeEventBody(padded), 'padded body');
  });

  it('throws INTERNAL for unknown flags', () => {
    const at = layout(full).flags;
    for (const flag of [0x08, 0x10, 0x80]) {
      const { bytes, ranges } = spoiled((b) => (b[at] = b[at]! | flag));
      internal(() => decodeEventBodyAt(bytes, ranges[0]![0], ranges[0]![1], null, null), `flag ${flag}`);
      internal(() => readEventRoutingAt(bytes, ranges[0]![0], ranges[0]![1], null, { orderingKey: '', recipients: null, expiresAt: 0 }), `routing, flag ${flag}`);
    }
  });

  it('throws INTERNAL for a body truncated anywhere', () => {
    for (const [name, original] of EVENTS) {
      const body = encodeEventBody(original);
      const { bytes, ranges } = place([body]);
      const [start, end] = ranges[0]!;
      // Every cut through the header fields; through long payloads, a sample and the last bytes.
      const lengths = new Set<number>();
      for (let length = 0; length < Math.min(body.length, 600); length++) lengths.add(length);
      for (let length = 600; length < body.length; length += 997) lengths.add(length);
      for (let length = Math.max(0, body.length - 8); length < body.length; length++) lengths.add(length);
      for (const length of lengths) {
        internal(() => decodeEventBodyAt(bytes, start, start + length, null, null), `${name}: ${length} of ${body.length} bytes`);
        internal(() => decodeEventBody(body.subarray(0, length)), `${name}: alone, ${length} of ${body.length} bytes`);
      }
      expect(end - start).toBe(body.length);
    }
  });

  it('throws INTERNAL for a priority above 9 or a time above 2^53', () => {
    const { priority, publishedAt, expiresAt } = layout(full);
    const highPriority = spoiled((b) => (b[priority] = 10));
    internal(() => decodeEventBodyAt(highPriority.bytes, highPriority.ranges[0]![0], highPriority.ranges[0]![1], null, null), 'decode, priority 10');
    internal(() => eventPriorityAt(highPriority.bytes, highPriority.ranges[0]![0], highPriority.ranges[0]![1]), 'priority 10');
    for (const at of [publishedAt, expiresAt]) {
      const big = spoiled((b) => b.writeUInt32LE(0x20_0000, at + 4));
      internal(() => decodeEventBodyAt(big.bytes, big.ranges[0]![0], big.ranges[0]![1], null, null), `time at ${at}`);
    }
    const bigExpiry = spoiled((b) => b.writeUInt32LE(0xffff_ffff, expiresAt + 4));
    internal(() => readEventRoutingAt(bigExpiry.bytes, bigExpiry.ranges[0]![0], bigExpiry.ranges[0]![1], null, { orderingKey: '', recipients: null, expiresAt: 0 }), 'routing expiry');
  });

  it('throws INTERNAL when a length field claims more than the body holds', () => {
    // The payload length (the body's last length field) one above what follows it.
    const payloadLengthAt = fullBody.length - full.payload.length - 4;
    const longer = spoiled((b) => b.writeUInt32LE(full.payload.length + 1, payloadLengthAt));
    internal(() => decodeEventBodyAt(longer.bytes, longer.ranges[0]![0], longer.ranges[0]![1], null, null), 'payload length');
    const shorter = spoiled((b) => b.writeUInt32LE(full.payload.length - 1, payloadLengthAt));
    internal(() => decodeEventBodyAt(shorter.bytes, shorter.ranges[0]![0], shorter.ranges[0]![1], null, null), 'short payload length');
    // The type length past the end.
    const typeLength = spoiled((b) => (b[1] = 255));
    for (const [name, read] of readers(typeLength.bytes, typeLength.ranges[0]![0], typeLength.ranges[0]![0] + 200)) {
      internal(read, `${name}, type length 255`);
    }
  });

  it('decodes good bodies normally after a malformed one threw', () => {
    const { bytes, ranges } = place(BODIES);
    const bad = spoiled((b) => (b[0] = 9));
    for (let i = 0; i < BODIES.length; i++) {
      internal(() => decodeEventBodyAt(bad.bytes, bad.ranges[0]![0], bad.ranges[0]![1], null, null));
      internal(() => decodeEventBodyAt(bytes, ranges[i]![0], ranges[i]![1] - 1, null, null));
      expect(plain(decodeEventBodyAt(bytes, ranges[i]![0], ranges[i]![1], null, null))).toEqual(plain(EVENTS[i]![1]));
    }
  });
});
