/**
 * Records just appended to a shard's events log, as columns by position from `base`: what the
 * schedule index, the priority lanes and the tail need of each. Publishes hand over their batch's
 * columns as they are; copies appended by the scheduler are turned into columns (they are few).
 */
export interface AppendedEvents {
  base: number;
  count: number;
  /** Each record's RecordKind. */
  attributes: ArrayLike<number>;
  priorities: ArrayLike<number>;
  /** Due time of a SCHEDULED event; 0 for others. */
  deliverAts: ArrayLike<number>;
  streams: ArrayLike<number>;
}

/** An appended record as an object (the scheduler's copies). */
export interface StoredRecord {
  body: Uint8Array;
  timestamp: number;
  stream: number;
  attributes: number;
  priority: number;
  deliverAt: number;
}

export function appendedOf(base: number, records: readonly StoredRecord[]): AppendedEvents {
  return {
    base,
    count: records.length,
    attributes: records.map((r) => r.attributes),
    priorities: records.map((r) => r.priority),
    deliverAts: records.map((r) => r.deliverAt),
    streams: records.map((r) => r.stream),
  };
}
