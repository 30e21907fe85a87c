import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/client/backoff.js';
import { decodeBase64 } from '../../src/client/base64.js';
import { EventIdGenerator } from '../../src/client/event-id.js';
import { Fifo } from '../../src/client/fifo.js';
import { eventIdTime } from '../../src/engine/event-id.js';

describe('decodeBase64', () => {
  it('decodes what Buffer encodes, at every padding', () => {
    for (let length = 0; length < 70; length++) {
      const bytes = crypto.randomBytes(length);
      expect(Buffer.from(decodeBase64(bytes.toString('base64'))!).equals(bytes)).toBe(true);
    }
  });

  it('refuses text that is not padded standard base64', () => {
    for (const text of ['abc', 'ab=c', '====', 'a===', 'ab-_', 'YWJj\n', 'é===', 'YW=j']) expect(decodeBase64(text), text).toBeNull();
  });
});

describe('EventIdGenerator', () => {
  it('makes 26-character ids in the engine layout that carry the time and strictly increase', () => {
    const ids = new EventIdGenerator();
    const now = Date.now();
    const made = [ids.next(now - 5), ids.next(now), ids.next(now), ids.next(now - 1000), ids.next(now + 1)];
    for (const id of made) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(eventIdTime(made[0]!)).toBe(now - 5);
    expect(eventIdTime(made[1]!)).toBe(now);
    expect(eventIdTime(made[3]!)).toBe(now); // the clock stepped back: one more than the previous id
    expect(eventIdTime(made[4]!)).toBe(now + 1);
    expect([...made].sort()).toEqual(made);
    expect(new Set(made).size).toBe(made.length);
  });
});

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the maximum, jittered within the upper half', () => {
    const options = { initialDelayMs: 100, maxDelayMs: 1000 };
    expect([0, 1, 2, 3, 4, 10, 100].map((attempt) => backoffDelay(attempt, options, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
    expect([0, 1, 2, 3, 4].map((attempt) => backoffDelay(attempt, options, () => 0))).toEqual([50, 100, 200, 400, 500]);
  });
});

describe('Fifo', () => {
  it('keeps order through shifts, prepends and compaction', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 3000; i++) fifo.push(i);
    for (let i = 0; i < 2500; i++) expect(fifo.shift()).toBe(i);
    fifo.prepend([-2, -1]);
    fifo.retain((n) => n % 2 !== 0 || n < 0);
    expect(fifo.size).toBe(252);
    expect(fifo.shift()).toBe(-2);
    expect(fifo.shift()).toBe(-1);
    expect(fifo.shift()).toBe(2501);
    expect(fifo.drain()).toHaveLength(249);
    expect(fifo.shift()).toBeUndefined();
  });
});
