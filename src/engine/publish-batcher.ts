import { performance } from 'node:perf_hooks';
import { EngineError } from './errors.js';
import type { BodyTarget } from './event-codec.js';
import { PublishFlag, type ProducerIdentity, type PublishResult } from './shard-messages.js';
import type { BatchBufferPool } from './batch-buffer-pool.js';
import { NameTable } from './name-table.js';
import type { ShardPool } from './shard-pool.js';

/**
 * Told what became of queued events; `index` is the one the caller gave with each event. Either
 * `error` is set, or `offset` (the original one for a duplicate) and `duplicate` are meaningful.
 * `now` is performance.now() when the outcome came (one reading for a whole batch). Positional, not
 * an outcome object: this runs once per published event.
 */
export interface OutcomeSink {
  settle(index: number, offset: number, duplicate: boolean, error: EngineError | null, now: number): void;
}

/**
 * Each batch's buffer is transferred to the worker, so every flush allocates a fresh one, outside
 * V8's heap. It is sized by the batch before it (twice its bytes, within these bounds): at a low rate
 * a batch holds an event or two, and 64 KiB buffers for them made V8 run a full GC every few hundred
 * milliseconds for the external memory alone (stalls of 5-10 ms on the publish path).
 */
const MIN_BATCH_BYTES = 4 * 1024;
const MAX_INITIAL_BATCH_BYTES = 1024 * 1024;
/** Events per batch at most: producers and types of a batch are indexed by u16. */
const MAX_BATCH = 0xffff;

/**
 * Gathers one shard's publishes into batches: everything published to the shard in the same turn
 * of the event loop (up to `maxBatch` events), from any producer, crosses to the worker as one task,
 * its encoded bodies packed into one transferred buffer. Events are encoded straight into that
 * buffer as they arrive.
 */
export class PublishBatcher implements BodyTarget {
  private bodies: Buffer;
  private used = 0;
  private count = 0;
  private ends: Uint32Array;
  private flags: Uint8Array;
  private producerOf: Uint16Array;
  private times: Float64Array;
  private streams: Uint32Array;
  private priorities: Uint8Array;
  private deliverAts: Float64Array;
  private expiresAts: Float64Array;
  private readonly types = new NameTable();
  private typeOf: Uint16Array;
  private producerIds: string[] = [];
  private producers: ProducerIdentity[] = [];
  private producerIndex = new Map<string, number>();
  /** The producer of the last event added, and its index in `producers` (producers publish in runs). */
  private lastProducer: ProducerIdentity | null = null;
  private lastProducerIndex = 0;
  private sinks: OutcomeSink[] = [];
  private sinkIndexes: number[] = [];
  private scheduled = false;

  constructor(
    private readonly pool: ShardPool,
    private readonly shard: number,
    private readonly maxBatch: number,
    /** Where batch buffers come from, and go back to when the worker returns them. */
    private readonly buffers: BatchBufferPool,
  ) {
    this.bodies = buffers.take(MIN_BATCH_BYTES);
    if (!(maxBatch >= 1 && maxBatch <= MAX_BATCH)) throw new RangeError(`maxBatch must be 1 to ${MAX_BATCH}, got ${maxBatch}`);
    this.ends = new Uint32Array(maxBatch);
    this.typeOf = new Uint16Array(maxBatch);
    this.flags = new Uint8Array(maxBatch);
    this.producerOf = new Uint16Array(maxBatch);
    this.times = new Float64Array(maxBatch);
    this.streams = new Uint32Array(maxBatch);
    this.priorities = new Uint8Array(maxBatch);
    this.deliverAts = new Float64Array(maxBatch);
    this.expiresAts = new Float64Array(maxBatch);
  }

  /** The buffer bodies are encoded into (BodyTarget): the batch being gathered. */
  get buffer(): Buffer {
    return this.bodies;
  }

  /** Room for the next event's body at the end of the batch (encode it there, then `add`). */
  reserve(size: number): number {
    if (this.used + size > this.bodies.length) {
      const grown = this.buffers.take(Math.max(this.bodies.length * 2, this.used + size));
      this.bodies.copy(grown, 0, 0, this.used);
      this.buffers.give(this.bodies.buffer as ArrayBuffer);
      this.bodies = grown;
    }
    return this.used;
  }

  /**
   * Queue the event whose body was just encoded at `reserve`'s position. `flags` are its
   * PublishFlag bits; stream, priority, deliverAt and expiresAt are as in its body.
   */
  add(
    producer: ProducerIdentity,
    bodyLength: number,
    type: string,
    id: string,
    publishedAt: number,
    flags: number,
    stream: number,
    priority: number,
    deliverAt: number,
    expiresAt: number,
    sink: OutcomeSink,
    sinkIndex: number,
  ): void {
    const i = this.count++;
    this.times[i] = publishedAt;
    this.used += bodyLength;
    this.ends[i] = this.used;
    this.typeOf[i] = this.types.indexOf(type);
    if (flags & PublishFlag.PRODUCER_ID) this.producerIds.push(id);
    this.flags[i] = flags;
    this.streams[i] = stream;
    this.priorities[i] = priority;
    this.deliverAts[i] = deliverAt;
    this.expiresAts[i] = expiresAt;
    let index = producer === this.lastProducer ? this.lastProducerIndex : this.producerIndex.get(producer.id);
    if (index === undefined) {
      index = this.producers.length;
      this.producers.push(producer);
      this.producerIndex.set(producer.id, index);
    }
    this.lastProducer = producer;
    this.lastProducerIndex = index;
    this.producerOf[i] = index;
    this.sinks.push(sink);
    this.sinkIndexes.push(sinkIndex);
    if (this.count >= this.maxBatch) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  private readonly flushNow = (): void => this.flush();

  flush(): void {
    this.scheduled = false;
    const count = this.count;
    if (count === 0) return;
    // The whole buffer is transferred (no copy); the next batch starts in a fresh one.
    const transferred = this.bodies.buffer as ArrayBuffer;
    const batch = {
      producers: this.producers,
      producerOf: this.producerOf.slice(0, count),
      bodies: new Uint8Array(transferred, this.bodies.byteOffset, this.used),
      ends: this.ends.slice(0, count),
      types: this.types.take(),
      typeOf: this.typeOf.slice(0, count),
      producerIds: this.producerIds,
      times: this.times.slice(0, count),
      flags: this.flags.slice(0, count),
      streams: this.streams.slice(0, count),
      priorities: this.priorities.slice(0, count),
      deliverAts: this.deliverAts.slice(0, count),
      expiresAts: this.expiresAts.slice(0, count),
    };
    const sinks = this.sinks;
    const sinkIndexes = this.sinkIndexes;
    this.bodies = this.buffers.take(Math.min(MAX_INITIAL_BATCH_BYTES, Math.max(MIN_BATCH_BYTES, this.used * 2)));
    this.used = 0;
    this.count = 0;
    this.producerIds = [];
    this.producers = [];
    this.producerIndex = new Map();
    this.lastProducer = null;
    this.sinks = [];
    this.sinkIndexes = [];
    this.pool.run<PublishResult>(this.shard, { op: 'publish', batch }, [transferred]).then(
      (result) => {
        if (result.bodies) this.buffers.give(result.bodies);
        const errors = result.errors.length > 0 ? new Map(result.errors.map(([index, error]) => [index, EngineError.fromJSON(error)])) : null;
        const now = performance.now();
        for (let i = 0; i < sinks.length; i++) {
          sinks[i]!.settle(sinkIndexes[i]!, result.offsets[i]!, result.duplicate[i] === 1, errors?.get(i) ?? null, now);
        }
      },
      (error: EngineError) => {
        const now = performance.now();
        sinks.forEach((sink, i) => sink.settle(sinkIndexes[i]!, -1, false, error, now));
      },
    );
  }
}
