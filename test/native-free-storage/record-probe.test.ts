import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  type DecodeResult,
  decodeRecordAt,
  encodedRecordBytes,
  encodeRecordFrom,
  encodeRecordInto,
  MIN_RECORD_BYTES,
  probeRecordAt,
  RECORD_CORRUPT,
  RECORD_HEADER_BYTES,
  RECORD_INCOMPLETE,
  recordAttributes,
  recordBodyStart,
  recordOffset,
  recordStream,
  recordTimestamp,
  type RecordFields,
  viewOf,
} from '../../native-free-storage/record.js';
import { Prng } from '../helpers/prng.js';

const TWO_32 = 2 ** 32;

/** What probeRecordAt must answer for a decodeRecordAt result. */
function expectedProbe(decoded: DecodeResult): number {
  if (decoded.status === 'ok') return decoded.length;
  return decoded.status === 'incomplete' ? RECORD_INCOMPLETE : RECORD_CORRUPT;
}

function expectAgreement(buffer: Buffer, position: number, verify: boolean, label: string): number {
  const decoded = decodeRecordAt(buffer, position, verify);
  const probed = probeRecordAt(buffer, position, verify);
  expect(probed, `${label} (verify ${verify}): decodeRecordAt says ${JSON.stringify(decoded.status === 'ok' ? { length: decoded.length } : decoded)}`).toBe(expectedProbe(decoded));
  return probed;
}

/** The record* readers give decodeRecordAt's fields and body. */
function expectSameFields(buffer: Buffer, position: number, label: string): void {
  const decoded = decodeRecordAt(buffer, position, true);
  if (decoded.status !== 'ok') throw new Error(`${label}: not a valid record (${decoded.status})`);
  const { record, length } = decoded;
  expect(probeRecordAt(buffer, position, true), `${label}: length`).toBe(length);
  expect(probeRecordAt(buffer, position, false), `${label}: length without verify`).toBe(length);
  expect(recordOffset(buffer, position), `${label}: offset`).toBe(record.offset);
  expect(recordTimestamp(buffer, position), `${label}: timestamp`).toBe(record.timestamp);
  expect(recordAttributes(buffer, position), `${label}: attributes`).toBe(record.attributes);
  expect(recordStream(buffer, position), `${label}: stream`).toBe(record.stream);
  const bodyStart = recordBodyStart(buffer, position);
  expect(bodyStart, `${label}: body start`).toBe(record.body.byteOffset - buffer.byteOffset);
  expect(buffer.subarray(bodyStart, position + length).equals(record.body), `${label}: body`).toBe(true);
}

/** One record encoded with encodeRecordInto at `position` of a buffer with `slack` bytes after it. */
function encodeOne(fields: RecordFields, position = 0, slack = 0): Buffer {
  const buffer = Buffer.alloc(position + encodedRecordBytes(fields.body.length) + slack, 0xee);
  const end = encodeRecordInto(buffer, viewOf(buffer), position, fields);
  expect(end).toBe(position + encodedRecordBytes(fields.body.length));
  return buffer;
}

/** Rewrite the CRC after editing a record's bytes, so only the edit (not the checksum) is wrong. */
function resum(buffer: Buffer, position: number): void {
  const length = buffer.readUInt32LE(position + 4);
  buffer.writeUInt32LE(zlib.crc32(buffer.subarray(position + 4, position + length)), position);
}

const FIELD_CASES: RecordFields[] = [
  { offset: 0, timestamp: 0, attributes: 0, stream: 0, body: new Uint8Array(0) },
  { offset: 1, timestamp: 1_700_000_000_000, attributes: 1, stream: 1, body: Buffer.from('hello') },
  { offset: TWO_32 - 1, timestamp: TWO_32 - 1, attributes: 0xffff, stream: 0xffff_ffff, body: Buffer.alloc(300, 7) },
  { offset: TWO_32, timestamp: TWO_32, attributes: 0x8000, stream: 0x8000_0000, body: Buffer.from([1]) },
  { offset: TWO_32 + 1, timestamp: TWO_32 + 1, attributes: 0x1234, stream: 0x89ab_cdef, body: Buffer.from('above 2^32') },
  { offset: 3 * TWO_32 + 12_345, timestamp: 2 ** 44 + 999, attributes: 2, stream: 42, body: Buffer.alloc(4096, 0xab) },
  { offset: Number.MAX_SAFE_INTEGER, timestamp: Number.MAX_SAFE_INTEGER, attributes: 0xfffe, stream: 0xffff_fffe, body: Buffer.from('max') },
];

describe('probeRecordAt on valid records', () => {
  it('returns the length, and the field readers give the encoded fields, above 2^32 too', () => {
    for (const [i, fields] of FIELD_CASES.entries()) {
      for (const position of [0, 5, 64]) {
        const buffer = encodeOne(fields, position, 17);
        const label = `case ${i} at ${position}`;
        expect(probeRecordAt(buffer, position, true), label).toBe(RECORD_HEADER_BYTES + fields.body.length);
        expectSameFields(buffer, position, label);
        expect(recordOffset(buffer, position), `${label}: offset exact`).toBe(fields.offset);
        expect(recordTimestamp(buffer, position), `${label}: timestamp exact`).toBe(fields.timestamp);
        expect(recordAttributes(buffer, position)).toBe(fields.attributes);
        expect(recordStream(buffer, position)).toBe(fields.stream);
        expect(recordBodyStart(buffer, position)).toBe(position + RECORD_HEADER_BYTES);
        expect(Buffer.from(fields.body).equals(buffer.subarray(position + RECORD_HEADER_BYTES, position + RECORD_HEADER_BYTES + fields.body.length))).toBe(true);
      }
    }
  });

  it('walks a run of records encoded back to back with encodeRecordFrom, from bodies inside a larger source', () => {
    const rng = new Prng(0x9e0b);
    const source = rng.bytes(20_000);
    const spans: Array<{ start: number; end: number; offset: number; timestamp: number; attributes: number; stream: number }> = [];
    let bytes = 0;
    let offset = TWO_32 - 20; // crosses 2^32 part way
    let timestamp = TWO_32 * 300 - 5;
    for (let i = 0; i < 60; i++) {
      const start = rng.int(0, 19_000);
      const end = start + rng.int(0, 1_000);
      spans.push({ start, end, offset: offset++, timestamp: (timestamp += rng.int(0, 3)), attributes: rng.int(0, 0xffff), stream: rng.int(0, 0xffff_ffff) });
      bytes += encodedRecordBytes(end - start);
    }
    const buffer = Buffer.alloc(bytes + 3);
    const view = viewOf(buffer);
    let at = 0;
    for (const s of spans) at = encodeRecordFrom(buffer, view, at, s.offset, s.timestamp, s.attributes, s.stream, source, s.start, s.end);
    expect(at).toBe(bytes);

    at = 0;
    for (const [i, s] of spans.entries()) {
      const length = probeRecordAt(buffer, at, true);
      expect(length, `record ${i}`).toBe(RECORD_HEADER_BYTES + s.end - s.start);
      expectSameFields(buffer, at, `record ${i}`);
      expect(recordOffset(buffer, at)).toBe(s.offset);
      expect(recordTimestamp(buffer, at)).toBe(s.timestamp);
      expect(recordAttributes(buffer, at)).toBe(s.attributes);
      expect(recordStream(buffer, at)).toBe(s.stream);
      expect(buffer.subarray(recordBodyStart(buffer, at), at + length).equals(source.subarray(s.start, s.end)), `record ${i} body`).toBe(true);
      at += length;
    }
    // The 3 bytes after the last record are an incomplete one, to both.
    expect(expectAgreement(buffer, at, true, 'tail')).toBe(RECORD_INCOMPLETE);
  });

  it('a longer header (a later format version) is accepted and the body found after it', () => {
    const body = Buffer.from('body after a 40-byte header');
    const buffer = encodeOne({ offset: TWO_32 + 7, timestamp: 123, attributes: 5, stream: 6, body: Buffer.concat([Buffer.alloc(8, 0x11), body]) });
    buffer[9] = 40;
    resum(buffer, 0);
    expect(probeRecordAt(buffer, 0, true)).toBe(buffer.length);
    expectSameFields(buffer, 0, '40-byte header');
    expect(recordBodyStart(buffer, 0)).toBe(40);
    expect(buffer.subarray(recordBodyStart(buffer, 0)).equals(body)).toBe(true);
    // A header as long as the whole record: an empty body.
    buffer[9] = buffer.length;
    resum(buffer, 0);
    expect(expectAgreement(buffer, 0, true, 'header = length')).toBe(buffer.length);
    expect(recordBodyStart(buffer, 0)).toBe(buffer.length);
  });
});

describe('probeRecordAt on incomplete records', () => {
  it('fewer than 8 bytes left: RECORD_INCOMPLETE, like decodeRecordAt', () => {
    const whole = encodeOne(FIELD_CASES[4]!, 3);
    for (let available = 0; available < 8; available++) {
      const cut = whole.subarray(0, 3 + available);
      for (const verify of [true, false]) {
        expect(expectAgreement(cut, 3, verify, `${available} bytes`)).toBe(RECORD_INCOMPLETE);
      }
      expect(decodeRecordAt(cut, 3, true)).toEqual({ status: 'incomplete', needed: 8 });
    }
    expect(probeRecordAt(Buffer.alloc(0), 0, true)).toBe(RECORD_INCOMPLETE);
  });

  it('a length beyond the end of the buffer: RECORD_INCOMPLETE at every cut', () => {
    const whole = encodeOne(FIELD_CASES[1]!, 10);
    const length = whole.length - 10;
    for (let end = 10 + 8; end < whole.length; end++) {
      const cut = whole.subarray(0, end);
      for (const verify of [true, false]) expect(expectAgreement(cut, 10, verify, `cut at ${end}`)).toBe(RECORD_INCOMPLETE);
      expect(decodeRecordAt(cut, 10, true)).toEqual({ status: 'incomplete', needed: length });
    }
    expect(expectAgreement(whole, 10, true, 'whole')).toBe(length);
    // A length field far past the buffer, with garbage after it: still just incomplete.
    const huge = Buffer.alloc(64, 0x33);
    huge.writeUInt32LE(0xffff_ffff, 4);
    for (const verify of [true, false]) expect(expectAgreement(huge, 0, verify, 'length 2^32-1')).toBe(RECORD_INCOMPLETE);
  });
});

describe('probeRecordAt on corrupt records', () => {
  it('a length field below the header size: RECORD_CORRUPT, even when the buffer is short', () => {
    for (const length of [0, 1, 8, 31]) {
      const buffer = encodeOne(FIELD_CASES[1]!);
      buffer.writeUInt32LE(length, 4);
      for (const verify of [true, false]) {
        expect(expectAgreement(buffer, 0, verify, `length ${length}`)).toBe(RECORD_CORRUPT);
        expect(expectAgreement(buffer.subarray(0, 8), 0, verify, `length ${length}, 8 bytes`)).toBe(RECORD_CORRUPT);
      }
    }
    expect(MIN_RECORD_BYTES).toBe(RECORD_HEADER_BYTES);
    // Exactly the header: a valid record with an empty body.
    const empty = encodeOne(FIELD_CASES[0]!);
    expect(empty.length).toBe(MIN_RECORD_BYTES);
    expect(expectAgreement(empty, 0, true, 'header only')).toBe(MIN_RECORD_BYTES);
  });

  it('a bad checksum: RECORD_CORRUPT with verify on, accepted with verify off', () => {
    const fields = FIELD_CASES[5]!;
    const buffer = encodeOne(fields, 4, 9);
    const length = buffer.length - 13;
    const flips = [
      [0, 0x01], // the stored CRC itself
      [3, 0x80],
      [10, 0x01], // attributes
      [12, 0x10], // stream
      [16, 0x01], // offset
      [27, 0x40], // timestamp
      [32, 0xff], // first body byte
      [length - 1, 0x01], // last body byte
    ] as const;
    for (const [at, mask] of flips) {
      const damaged = Buffer.from(buffer);
      damaged[4 + at]! ^= mask;
      expect(expectAgreement(damaged, 4, true, `byte ${at} ^ ${mask}`)).toBe(RECORD_CORRUPT);
      expect(decodeRecordAt(damaged, 4, true)).toEqual({ status: 'corrupt', reason: 'checksum mismatch' });
      expect(expectAgreement(damaged, 4, false, `byte ${at} ^ ${mask}`)).toBe(length);
      // The readers then return what the bytes say, as decodeRecordAt does.
      const decoded = decodeRecordAt(damaged, 4, false);
      if (decoded.status !== 'ok') throw new Error('accepted without verify');
      expect(recordOffset(damaged, 4)).toBe(decoded.record.offset);
      expect(recordTimestamp(damaged, 4)).toBe(decoded.record.timestamp);
      expect(recordAttributes(damaged, 4)).toBe(decoded.record.attributes);
      expect(recordStream(damaged, 4)).toBe(decoded.record.stream);
    }
  });

  it('a wrong magic: RECORD_CORRUPT with a matching checksum, with verify on and off', () => {
    for (const magic of [0, 2, 0xff]) {
      const buffer = encodeOne(FIELD_CASES[2]!);
      buffer[8] = magic;
      resum(buffer, 0);
      for (const verify of [true, false]) expect(expectAgreement(buffer, 0, verify, `magic ${magic}`)).toBe(RECORD_CORRUPT);
      expect(decodeRecordAt(buffer, 0, true)).toEqual({ status: 'corrupt', reason: `unknown magic ${magic}` });
    }
  });

  it('a header length out of range: RECORD_CORRUPT with a matching checksum, with verify on and off', () => {
    const buffer = encodeOne(FIELD_CASES[1]!); // 37 bytes
    for (const headerLength of [0, 8, 31, buffer.length + 1, 255]) {
      const damaged = Buffer.from(buffer);
      damaged[9] = headerLength;
      resum(damaged, 0);
      for (const verify of [true, false]) expect(expectAgreement(damaged, 0, verify, `header length ${headerLength}`)).toBe(RECORD_CORRUPT);
      expect(decodeRecordAt(damaged, 0, true)).toEqual({ status: 'corrupt', reason: `header length ${headerLength}` });
    }
  });

  it('agrees with decodeRecordAt on every single-byte change of a record, with verify on and off', () => {
    const rng = new Prng(0xbadc0de);
    const fields: RecordFields = { offset: TWO_32 + 99, timestamp: 2 ** 41 + 3, attributes: 0xa5a5, stream: 0x1234_5678, body: rng.bytes(40) };
    const buffer = encodeOne(fields, 2, 20);
    const length = encodedRecordBytes(fields.body.length);
    const outcomes = new Set<number>();
    for (let at = 2; at < 2 + length; at++) {
      for (const mask of [0x01, 0x80, 0xff, rng.int(1, 254)]) {
        const damaged = Buffer.from(buffer);
        damaged[at]! ^= mask;
        for (const verify of [true, false]) {
          const probed = expectAgreement(damaged, 2, verify, `byte ${at - 2} ^ ${mask}`);
          outcomes.add(probed > 0 ? 1 : probed);
          if (verify) expect(probed, `byte ${at - 2} ^ ${mask}: never accepted with verify on`).toBeLessThanOrEqual(0);
          if (probed > 0) {
            const decoded = decodeRecordAt(damaged, 2, verify);
            if (decoded.status !== 'ok') throw new Error('unreachable');
            expect(recordBodyStart(damaged, 2)).toBe(decoded.record.body.byteOffset - damaged.byteOffset);
            expect(recordOffset(damaged, 2)).toBe(decoded.record.offset);
            expect(recordTimestamp(damaged, 2)).toBe(decoded.record.timestamp);
          }
        }
      }
    }
    expect([...outcomes].sort(), 'the changes hit all three outcomes').toEqual([RECORD_CORRUPT, RECORD_INCOMPLETE, 1].sort());
  });

  it('RECORD_INCOMPLETE and RECORD_CORRUPT can never be a record length', () => {
    expect(RECORD_INCOMPLETE).toBeLessThan(MIN_RECORD_BYTES);
    expect(RECORD_CORRUPT).toBeLessThan(MIN_RECORD_BYTES);
    expect(RECORD_INCOMPLETE).not.toBe(RECORD_CORRUPT);
  });
});
