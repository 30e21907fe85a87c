import { EngineError } from './errors.js';
import type { ProducerIdentity, PublishResult } from './shard-messages.js';
import type { ShardPool } from './shard-pool.js';

/** One encoded event waiting to cross to its shard. */
export interface EncodedEvent {
  body: Uint8Array;
  type: string;
  id: string;
  producerChoseId: boolean;
  signed: boolean;
}

/** What one event of a batch came to: its offset (the original one for a duplicate), or an error. */
export type EventOutcome = { offset: number; duplicate: boolean } | { error: EngineError };

interface ProducerBatch {
  producer: ProducerIdentity;
  events: EncodedEvent[];
  bytes: number;
  waiters: Array<(outcome: EventOutcome) => void>;
}

/**
 * Gathers one shard's publishes into batches: everything published in the same turn of the event
 * loop (up to `maxBatch` events per producer) crosses to the worker as one task, its bodies packed
 * into one transferred buffer.
 */
export class PublishBatcher {
  private batches = new Map<string, ProducerBatch>();
  private scheduled = false;

  constructor(
    private readonly pool: ShardPool,
    private readonly shard: number,
    private readonly maxBatch: number,
  ) {}

  add(producer: ProducerIdentity, event: EncodedEvent): Promise<EventOutcome> {
    return new Promise((resolve) => {
      let batch = this.batches.get(producer.id);
      if (!batch) {
        batch = { producer, events: [], bytes: 0, waiters: [] };
        this.batches.set(producer.id, batch);
      }
      batch.events.push(event);
      batch.bytes += event.body.length;
      batch.waiters.push(resolve);
      if (batch.events.length >= this.maxBatch) {
        this.batches.delete(producer.id);
        this.send(batch);
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  flush(): void {
    this.scheduled = false;
    const batches = [...this.batches.values()];
    this.batches.clear();
    for (const batch of batches) this.send(batch);
  }

  private send(batch: ProducerBatch): void {
    const count = batch.events.length;
    const bodies = new Uint8Array(batch.bytes);
    const ends = new Uint32Array(count);
    const producerIds = new Uint8Array(count);
    const signed = new Uint8Array(count);
    const types = new Array<string>(count);
    const ids = new Array<string>(count);
    let at = 0;
    batch.events.forEach((event, i) => {
      bodies.set(event.body, at);
      at += event.body.length;
      ends[i] = at;
      types[i] = event.type;
      ids[i] = event.id;
      producerIds[i] = event.producerChoseId ? 1 : 0;
      signed[i] = event.signed ? 1 : 0;
    });
    const task = { op: 'publish' as const, producer: batch.producer, batch: { bodies, ends, types, ids, producerIds, signed } };
    this.pool.run<PublishResult>(this.shard, task, [bodies.buffer as ArrayBuffer]).then(
      (result) => {
        const errors = new Map(result.errors.map(([index, error]) => [index, EngineError.fromJSON(error)]));
        batch.waiters.forEach((resolve, i) => {
          const error = errors.get(i);
          resolve(error ? { error } : { offset: result.offsets[i]!, duplicate: result.duplicate[i] === 1 });
        });
      },
      (error: EngineError) => batch.waiters.forEach((resolve) => resolve({ error })),
    );
  }
}
