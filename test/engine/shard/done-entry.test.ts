import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeDoneEntry, encodeDoneEntry } from '../../../src/engine/shard/done-entry.js';

describe('acks journal entries', () => {
  it('round-trip offsets and lane keys above 2^32, an empty list, and a non-ASCII subscription', () => {
    for (const entry of [
      { s: 'billing/invoices', o: [0, 1, 7, 2 ** 32 + 5, 2 ** 48 * 3 + 12] },
      { s: 'é/ü', o: [] },
      { s: 'a/b', o: Array.from({ length: 5000 }, (_, i) => i * 3) },
    ]) {
      expect(decodeDoneEntry(encodeDoneEntry(entry))).toEqual(entry);
    }
  });

  it('decodes a view into a larger buffer', () => {
    const body = encodeDoneEntry({ s: 'x/y', o: [3, 4] });
    const big = new Uint8Array(body.length + 20);
    big.set(body, 7);
    expect(decodeDoneEntry(big.subarray(7, 7 + body.length))).toEqual({ s: 'x/y', o: [3, 4] });
  });

  it('still reads entries written as msgpack before the binary format', () => {
    const entry = { s: 'billing/invoices', o: [10, 11, 2 ** 40] };
    expect(decodeDoneEntry(pack(entry))).toEqual(entry);
  });

  it('refuses truncated, padded and unrecognisable bodies as INTERNAL', () => {
    const body = encodeDoneEntry({ s: 'a/b', o: [1, 2, 3] });
    for (let cut = 1; cut < body.length; cut++) {
      expect(() => decodeDoneEntry(body.subarray(0, cut)), `cut at ${cut}`).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    }
    expect(() => decodeDoneEntry(Buffer.concat([body, Buffer.of(0)]))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(() => decodeDoneEntry(pack({ x: 1 }))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });
});
