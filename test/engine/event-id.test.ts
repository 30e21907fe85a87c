import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { EngineError } from '../../src/engine/errors.js';

type EventIdModule = typeof import('../../src/engine/event-id.js');
let ids: EventIdModule;

// Each test gets a fresh module: the generator's "last id" state must not leak between tests.
beforeEach(async () => {
  vi.resetModules();
  ids = await import('../../src/engine/event-id.js');
});

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ID_SHAPE = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/** The error `fn` throws. The module is re-imported per test, so its EngineError class is checked by shape. */
function thrownBy(fn: () => unknown): Pick<EngineError, 'code' | 'field' | 'message'> {
  try {
    fn();
  } catch (error) {
    if (error instanceof Error && typeof (error as EngineError).code === 'string') return error as EngineError;
    throw error;
  }
  throw new Error('expected a throw');
}

function randomPart(id: string): bigint {
  let value = 0n;
  for (const char of id.slice(10)) value = value * 32n + BigInt(CROCKFORD.indexOf(char));
  return value;
}

describe('newEventId', () => {
  it('encodes the time in the first 10 characters like ULID', () => {
    // The ULID specification's example: time 1469918176385 is "01ARYZ6S41".
    const id = ids.newEventId(1469918176385);
    expect(id).toMatch(ID_SHAPE);
    expect(id.slice(0, 10)).toBe('01ARYZ6S41');
    expect(ids.eventIdTime(id)).toBe(1469918176385);
    expect(ids.newEventId(2 ** 48 - 1).slice(0, 10)).toBe('7ZZZZZZZZZ');
  });

  it('uses the current time by default', () => {
    const before = Date.now();
    const id = ids.newEventId();
    const after = Date.now();
    expect(id).toHaveLength(ids.EVENT_ID_LENGTH);
    expect(ids.eventIdTime(id)).toBeGreaterThanOrEqual(before);
    expect(ids.eventIdTime(id)).toBeLessThanOrEqual(after);
  });

  it('makes 100k ids in one millisecond unique, increasing by one in the random part', () => {
    const now = 1_700_000_000_000;
    const generated = Array.from({ length: 100_000 }, () => ids.newEventId(now));
    expect(new Set(generated).size).toBe(generated.length);
    for (let i = 1; i < generated.length; i++) {
      // Sorting must not be needed: generation order is string order.
      if (!(generated[i - 1]! < generated[i]!)) throw new Error(`ids ${i - 1} and ${i} out of order`);
      if (randomPart(generated[i]!) !== randomPart(generated[i - 1]!) + 1n) {
        // The only other case: the 80-bit part overflowed and the id moved to the next millisecond.
        expect(ids.eventIdTime(generated[i]!)).toBe(now + 1);
      }
    }
    expect(generated.filter((id) => !ID_SHAPE.test(id))).toEqual([]);
  });

  it('draws a fresh random part in each new millisecond', () => {
    const a = ids.newEventId(1000);
    const b = ids.newEventId(1001);
    const c = ids.newEventId(1002);
    expect([a, b, c].map(ids.eventIdTime)).toEqual([1000, 1001, 1002]);
    // Three fresh 80-bit draws being consecutive would mean the randomness is not fresh.
    expect(randomPart(b) === randomPart(a) + 1n && randomPart(c) === randomPart(b) + 1n).toBe(false);
  });

  it('sorts by time across milliseconds, whatever the random parts', () => {
    const generated: string[] = [];
    for (let ms = 0; ms < 2000; ms++) generated.push(ids.newEventId(1_600_000_000_000 + ms * 37));
    expect([...generated].sort()).toEqual(generated);
  });

  it('keeps increasing when the clock steps back', () => {
    const first = ids.newEventId(5_000_000);
    const second = ids.newEventId(4_000_000);
    expect(second > first).toBe(true);
    expect(ids.eventIdTime(second)).toBe(5_000_000);
  });

  it('refuses times outside 48 bits and non-integers', () => {
    for (const bad of [-1, 2 ** 48, 1.5, Number.NaN, Infinity]) {
      const error = thrownBy(() => ids.newEventId(bad));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.field).toBe('nowMs');
    }
  });

  it('refuses to read the time of something that is not an id', () => {
    expect(() => ids.eventIdTime('order-42')).toThrow(/not an engine event id/);
    // Right length, but 'I' is not a Crockford base32 digit.
    expect(thrownBy(() => ids.eventIdTime('01ARYZ6SI1TSV4RRFFQ69G5FAV')).code).toBe('INVALID_ARGUMENT');
  });
});
