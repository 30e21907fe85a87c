import { expect } from 'vitest';
import type { AppendOutcome, AppendRecordInput, StoredRecord } from './log-types.js';

/** What the test believes one stored record must look like. */
export interface ExpectedRecord {
  offset: number;
  timestamp: number;
  attributes: number;
  stream: number;
  body: Buffer;
}

/**
 * Model of the log built from what the test appended and the offsets append() reported.
 * Applies the contract's timestamp rule (non-decreasing: an older record takes its
 * predecessor's timestamp) so tests compare against the model, never against hard-coded values.
 */
export class ExpectedLog {
  private readonly byOffset = new Map<number, AppendRecordInput>();

  /** Registers a confirmed batch at the offsets the log assigned to it. */
  add(records: readonly AppendRecordInput[], result: AppendOutcome): void {
    expect(result.lastOffset - result.baseOffset + 1, 'append result spans the batch').toBe(records.length);
    records.forEach((record, i) => {
      const offset = result.baseOffset + i;
      if (this.byOffset.has(offset)) throw new Error(`offset ${offset} assigned twice`);
      this.byOffset.set(offset, record);
    });
  }

  get size(): number {
    return this.byOffset.size;
  }

  /** Records in offset order with clamped timestamps; asserts offsets are consecutive from `start`. */
  records(start = 0): ExpectedRecord[] {
    const offsets = [...this.byOffset.keys()].sort((a, b) => a - b);
    const gap = offsets.findIndex((offset, i) => offset !== start + i);
    if (gap >= 0) expect(offsets[gap], `confirmed offsets are consecutive from ${start}`).toBe(start + gap);
    const out: ExpectedRecord[] = [];
    let previous = -Infinity;
    for (const offset of offsets) {
      const input = this.byOffset.get(offset) as AppendRecordInput;
      if (input.timestamp === undefined) throw new Error('ExpectedLog needs explicit timestamps');
      const timestamp = Math.max(previous, input.timestamp);
      previous = timestamp;
      out.push({
        offset,
        timestamp,
        attributes: input.attributes ?? 0,
        stream: input.stream ?? 0,
        body: Buffer.from(input.body),
      });
    }
    return out;
  }
}

/** First offset whose (clamped) timestamp is >= t, or null; the reference for offsetForTime. */
export function expectedOffsetForTime(records: readonly ExpectedRecord[], t: number): number | null {
  let lo = 0;
  let hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((records[mid] as ExpectedRecord).timestamp >= t) hi = mid;
    else lo = mid + 1;
  }
  return lo < records.length ? (records[lo] as ExpectedRecord).offset : null;
}

function isSameRecord(actual: StoredRecord | undefined, expected: ExpectedRecord): boolean {
  return (
    actual !== undefined &&
    actual.offset === expected.offset &&
    actual.timestamp === expected.timestamp &&
    actual.attributes === expected.attributes &&
    actual.stream === expected.stream &&
    Buffer.isBuffer(actual.body) &&
    actual.body.equals(expected.body)
  );
}

/** Asserts a stored record equals the model, byte for byte, with a message naming the offset. */
export function expectSameRecord(actual: StoredRecord | undefined, expected: ExpectedRecord): void {
  // Plain comparison first: the bulk tests check ~10^5 records and expect() per field is slow.
  if (isSameRecord(actual, expected)) return;
  expect(actual, `record at offset ${expected.offset} missing`).toBeDefined();
  const record = actual as StoredRecord;
  const where = `offset ${expected.offset}`;
  expect(record.offset, where).toBe(expected.offset);
  expect(record.timestamp, `${where} timestamp`).toBe(expected.timestamp);
  expect(record.attributes, `${where} attributes`).toBe(expected.attributes);
  expect(record.stream, `${where} stream`).toBe(expected.stream);
  expect(Buffer.isBuffer(record.body), `${where} body is a Buffer`).toBe(true);
  if (!record.body.equals(expected.body)) {
    throw new Error(`${where}: body differs (stored ${record.body.length} bytes, expected ${expected.body.length})`);
  }
}

/** Asserts a sequence of stored records equals the model slice exactly (same count, same bytes). */
export function expectSameRecords(actual: Iterable<StoredRecord>, expected: readonly ExpectedRecord[]): void {
  const list = [...actual];
  expect(list.length, 'record count').toBe(expected.length);
  expected.forEach((record, i) => expectSameRecord(list[i], record));
}
