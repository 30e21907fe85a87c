import { performance } from 'node:perf_hooks';
import type { LatencyRecorder } from '../observability/latency-recorder.js';
import type { ClientActivity } from './client-activity.js';
import type { ClientRegistry } from './client-registry.js';
import type { Receipt } from './delivery.js';
import type { ResolvedEngineOptions } from './engine-options.js';
import { EngineError } from './errors.js';
import { DEFAULT_EVENT_LIMITS, DEFAULT_EVENT_PRIORITY, validatePublishInput, type EventLimits, type ValidatedPublishInput } from './event.js';
import { encodeEventBodyInto, eventStreamTag } from './event-codec.js';
import { newEventId } from './event-id.js';
import type { OutcomeSink, PublishBatcher } from './publish-batcher.js';
import { newPendingPublish, PublishWaiter, receiptOf, scheduledTime, type PendingPublish } from './publish-waiter.js';
import { PublishFlag, type ProducerIdentity } from './shard-messages.js';

/**
 * The engine's way in for events: validates each publish, encodes it straight into its shard's
 * batch, and holds each producer to its window of unconfirmed publishes (past it: a retryable
 * OVERLOADED). Runs on the engine's thread, once per published event.
 */
export class EventIntake {
  /** Unconfirmed publishes per client (one small entry per client that ever published). */
  private readonly unconfirmed = new Map<string, { pending: number }>();
  private readonly eventLimits: EventLimits;

  constructor(
    private readonly options: ResolvedEngineOptions,
    private readonly clients: ClientRegistry,
    private readonly publishers: readonly PublishBatcher[],
    private readonly activity: ClientActivity,
    private readonly latency: LatencyRecorder,
    private readonly isClosed: () => boolean,
    /** Shards of the engine: a type's shard is its stream tag modulo this. */
    private readonly shards: number,
  ) {
    this.eventLimits = { ...DEFAULT_EVENT_LIMITS, maxPayloadBytes: options.maxPayloadBytes, maxScheduleMs: options.maxScheduleMs };
  }

  /** Send every batch being gathered now (closing). */
  flush(): void {
    for (const publisher of this.publishers) publisher.flush();
  }

  /** Engine.publish: one event, one promise (settled by a PublishWaiter, which is also its pending record). */
  publish(clientId: string, input: unknown): Promise<Receipt> {
    return new Promise((resolve, reject) => {
      const waiter = new PublishWaiter(resolve, reject, this.latency);
      const refused = this.enqueue(clientId, input, waiter, 0, waiter);
      if (refused) reject(refused);
    });
  }

  /** Engine.publishMany: one promise for the batch, one sink for all its events. */
  publishMany(clientId: string, inputs: readonly unknown[]): Promise<Array<Receipt | EngineError>> {
    if (!Array.isArray(inputs)) return Promise.reject(new EngineError('INVALID_ARGUMENT', 'publishMany needs an array of events', { field: 'events' }));
    return new Promise((resolve) => {
      const startedAt = performance.now();
      const results = new Array<Receipt | EngineError>(inputs.length);
      const pendings = new Array<PendingPublish | null>(inputs.length);
      let left = inputs.length;
      if (left === 0) resolve(results);
      const sink: OutcomeSink = {
        settle: (index, offset, duplicate, error, now) => {
          const queued = pendings[index]!;
          queued.window.pending--;
          if (!error) this.latency.record('publish_to_durable', (now - startedAt) * 1000);
          results[index] = error ?? receiptOf(queued, offset, duplicate);
          if (--left === 0) resolve(results);
        },
      };
      for (let i = 0; i < inputs.length; i++) {
        const pending = newPendingPublish();
        const refused = this.enqueue(clientId, inputs[i], sink, i, pending);
        if (refused) {
          results[i] = refused;
          pendings[i] = null;
          if (--left === 0) resolve(results);
        } else {
          pendings[i] = pending;
        }
      }
    });
  }

  /**
   * Validate, encode into the shard's batch and queue one event, noting it in `pending`; an error
   * refuses it synchronously (returned).
   */
  private enqueue(clientId: string, input: unknown, sink: OutcomeSink, index: number, pending: PendingPublish): EngineError | null {
    let producer: ProducerIdentity;
    let event: ValidatedPublishInput;
    try {
      if (this.isClosed()) throw new EngineError('ENGINE_CLOSED', 'the engine is closed');
      producer = this.clients.get(clientId);
      event = validatePublishInput(input, this.eventLimits);
    } catch (error) {
      return error instanceof EngineError ? error : new EngineError('INTERNAL', String(error));
    }
    let window = this.unconfirmed.get(clientId);
    if (!window) {
      window = { pending: 0 };
      this.unconfirmed.set(clientId, window);
    }
    if (window.pending >= this.options.publishWindow) {
      return new EngineError('OVERLOADED', `client ${clientId} has ${window.pending} unconfirmed publishes (window ${this.options.publishWindow}); retry after some confirm`, {
        retryable: true,
      });
    }
    const now = Date.now();
    const id = event.id ?? newEventId(now);
    const type = event.type;
    const stream = eventStreamTag(type);
    const shard = stream % this.shards;
    const publisher = this.publishers[shard]!;
    const priority = event.priority ?? DEFAULT_EVENT_PRIORITY;
    const deliverAt = scheduledTime(event, now);
    const expiresAt = event.ttlMs === undefined ? 0 : now + event.ttlMs;
    let bodyLength: number;
    try {
      bodyLength = encodeEventBodyInto(publisher, event, id, producer.id, now, priority, deliverAt, expiresAt);
    } catch (error) {
      return error instanceof EngineError ? error : new EngineError('INTERNAL', String(error));
    }
    window.pending++;
    this.activity.published(clientId, 1, now);
    pending.id = id;
    pending.type = type;
    pending.shard = shard;
    pending.window = window;
    const flags =
      (event.id !== undefined ? PublishFlag.PRODUCER_ID : 0) |
      (event.signature !== undefined ? PublishFlag.SIGNED : 0) |
      (event.key !== undefined ? PublishFlag.KEY : 0) |
      (event.recipients !== undefined ? PublishFlag.RECIPIENTS : 0);
    publisher.add(producer, bodyLength, type, id, now, flags, stream, priority, deliverAt, expiresAt, sink, index);
    return null;
  }
}
