import { ClientRegistry, type ClientIdentity } from './client-registry.js';
import { Consumer, type ConsumerControl, type DeliveryHandler } from './consumer.js';
import type { Delivery, Receipt } from './delivery.js';
import { unpackDeliveries } from './delivery-batch.js';
import { loadOrCreateMetadata } from './engine-metadata.js';
import { resolveEngineOptions, type EngineOptions, type ResolvedEngineOptions } from './engine-options.js';
import { EngineError } from './errors.js';
import { DEFAULT_EVENT_LIMITS, DEFAULT_EVENT_PRIORITY, validatePublishInput, type StoredEvent } from './event.js';
import { encodeEventBody, eventStreamTag } from './event-codec.js';
import { newEventId } from './event-id.js';
import { PublishBatcher } from './publish-batcher.js';
import { SettleBatcher } from './settle-batcher.js';
import type { DeliveryMessage, OpenResult } from './shard-messages.js';
import { ShardPool } from './shard-pool.js';
import { resolveSubscriptionSpec, type SubscriptionOptions } from './subscription-spec.js';

export interface ConsumerOptions {
  /** Unacked deliveries this consumer holds at most, per shard (default: the subscription's maxInFlight). */
  credits?: number;
}

/**
 * The engine's API, independent of any network protocol: publish, subscribe, ack. Events are
 * spread over shards by type; each shard lives in one worker thread, which stores its events,
 * verifies signatures and runs delivery. This facade batches work per shard, bounds what each
 * producer may have unconfirmed, and routes deliveries to live consumers.
 */
export class Engine {
  readonly options: ResolvedEngineOptions;
  readonly clients = new ClientRegistry();
  private readonly pool: ShardPool;
  private readonly publishers: PublishBatcher[] = [];
  private readonly settlers: SettleBatcher[] = [];
  private readonly consumers = new Map<string, Consumer>();
  private readonly unconfirmed = new Map<string, number>();
  private readonly eventLimits;
  private nextConsumerId = 1;
  private closed = false;
  private openResults: OpenResult[] = [];

  private constructor(options: ResolvedEngineOptions) {
    this.options = options;
    this.eventLimits = { ...DEFAULT_EVENT_LIMITS, maxPayloadBytes: options.maxPayloadBytes };
    this.pool = new ShardPool({
      workers: options.workers,
      shards: options.shards,
      config: {
        dataDir: options.dataDir,
        fsync: options.fsync,
        fsyncIntervalMs: options.fsyncIntervalMs,
        segmentBytes: options.segmentBytes,
        dedupWindowMs: options.dedupWindowMs,
        maxDedupEntries: options.maxDedupEntries,
        maxPayloadBytes: options.maxPayloadBytes,
      },
      onDeliveries: (message) => this.route(message),
      onWorkerLog: (shard, level, message) => this.log(level === 'error' ? 'error' : 'warn', message, { shard }),
      onShardReopened: (shard) => this.reattach(shard),
      onShardReopenFailed: (shard, error) => this.log('error', 'shard could not be reopened after its worker died', { shard, error }),
    });
    for (let shard = 0; shard < options.shards; shard++) {
      this.publishers.push(new PublishBatcher(this.pool, shard, options.maxPublishBatch));
      this.settlers.push(new SettleBatcher(this.pool, shard, (error) => this.log('warn', 'settle failed; unacked events will be redelivered', { shard, error })));
    }
  }

  static async open(options: EngineOptions): Promise<Engine> {
    const resolved = resolveEngineOptions(options);
    const metadata = loadOrCreateMetadata(resolved.dataDir, resolved.shards);
    const engine = new Engine({ ...resolved, shards: metadata.shards });
    engine.openResults = await engine.pool.start();
    return engine;
  }

  /** What opening each shard recovered. */
  get shardRecovery(): readonly OpenResult[] {
    return this.openResults;
  }

  get shardPool(): ShardPool {
    return this.pool;
  }

  registerClient(client: ClientIdentity): void {
    this.clients.register(client);
  }

  /** The shard an event type lives in (fixed for the life of the data directory). */
  shardOf(type: string): number {
    return eventStreamTag(type) % this.options.shards;
  }

  /**
   * Publish one event as `clientId`. Resolves with its receipt once durable; a repeated id within
   * the dedup window resolves with the first receipt and `duplicate: true`.
   */
  async publish(clientId: string, input: unknown): Promise<Receipt> {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', 'the engine is closed');
    const producer = this.clients.get(clientId);
    const event = validatePublishInput(input, this.eventLimits);
    const pending = this.unconfirmed.get(clientId) ?? 0;
    if (pending >= this.options.publishWindow) {
      throw new EngineError('OVERLOADED', `client ${clientId} has ${pending} unconfirmed publishes (window ${this.options.publishWindow}); retry after some confirm`, {
        retryable: true,
      });
    }
    this.unconfirmed.set(clientId, pending + 1);
    try {
      const now = Date.now();
      const id = event.id ?? newEventId(now);
      const stored: StoredEvent = {
        id,
        type: event.type,
        payload: event.payload,
        headers: event.headers ?? {},
        key: event.key ?? null,
        sender: producer.id,
        publishedAt: now,
        recipients: event.recipients ?? null,
        signature: event.signature ?? null,
        priority: DEFAULT_EVENT_PRIORITY,
        deliverAt: 0,
        expiresAt: 0,
      };
      const outcome = await this.publishers[this.shardOf(event.type)]!.add(producer, {
        body: encodeEventBody(stored),
        type: event.type,
        id,
        producerChoseId: event.id !== undefined,
        signed: event.signature !== undefined,
      });
      if ('error' in outcome) throw outcome.error;
      return { id, type: event.type, offset: outcome.offset, shard: this.shardOf(event.type), duplicate: outcome.duplicate };
    } finally {
      const left = (this.unconfirmed.get(clientId) ?? 1) - 1;
      if (left > 0) this.unconfirmed.set(clientId, left);
      else this.unconfirmed.delete(clientId);
    }
  }

  /**
   * Open (creating if new) the durable subscription `options.name` of `clientId` and attach a live
   * consumer to it. Deliveries go to `handler` in batches.
   */
  async subscribe(clientId: string, options: SubscriptionOptions, handler: DeliveryHandler, consumerOptions: ConsumerOptions = {}): Promise<Consumer> {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', 'the engine is closed');
    this.clients.get(clientId);
    const spec = resolveSubscriptionSpec(clientId, options);
    const credits = consumerOptions.credits ?? spec.maxInFlight;
    if (!Number.isInteger(credits) || credits < 1) throw new EngineError('INVALID_ARGUMENT', 'credits must be a positive integer', { field: 'credits' });
    const shards = [...Array(this.options.shards).keys()];
    await Promise.all(shards.map((shard) => this.pool.run(shard, { op: 'subscribe', spec })));
    const consumer = new Consumer(`${spec.key}#${this.nextConsumerId++}`, spec.key, clientId, credits, handler, this.control);
    this.consumers.set(consumer.id, consumer);
    await Promise.all(shards.map((shard) => this.attach(shard, consumer)));
    return consumer;
  }

  private readonly control: ConsumerControl = {
    ack: (consumer, delivery) => this.settlers[delivery.shard]?.ack(consumer.subscription, delivery.offset),
    nack: (consumer, delivery, delayMs) => this.settlers[delivery.shard]?.nack(consumer.subscription, delivery.offset, delayMs),
    close: async (consumer) => {
      this.consumers.delete(consumer.id);
      if (this.closed) return;
      await Promise.all(this.settlers.map((settler) => settler.flush()));
      await Promise.allSettled(
        this.settlers.map((_, shard) => this.pool.run(shard, { op: 'detach', subscription: consumer.subscription, consumer: consumer.id, credits: 0 })),
      );
    },
  };

  private attach(shard: number, consumer: Consumer): Promise<unknown> {
    return this.pool.run(shard, { op: 'attach', subscription: consumer.subscription, consumer: consumer.id, credits: consumer.credits });
  }

  /** A shard came back in a new worker: its live consumers attach again (subscriptions are on disk). */
  private reattach(shard: number): void {
    this.log('warn', 'shard reopened in a new worker after its worker died', { shard });
    for (const consumer of this.consumers.values()) {
      this.attach(shard, consumer).catch((error) => this.log('error', 'consumer could not re-attach', { shard, consumer: consumer.id, error }));
    }
  }

  private route(message: DeliveryMessage): void {
    let byConsumer: Map<string, Delivery[]> | null = null;
    for (const delivery of unpackDeliveries(message.packed, message.shard)) {
      byConsumer ??= new Map();
      let list = byConsumer.get(delivery.consumer);
      if (!list) {
        list = [];
        byConsumer.set(delivery.consumer, list);
      }
      list.push(delivery);
    }
    if (!byConsumer) return;
    for (const [id, deliveries] of byConsumer) {
      const consumer = this.consumers.get(id);
      // A consumer that just closed: its detach makes the shard redeliver these elsewhere.
      if (!consumer) continue;
      try {
        consumer.handler(deliveries, consumer);
      } catch (error) {
        this.log('error', 'delivery handler threw; its deliveries will be redelivered after the ack timeout', { consumer: id, error });
      }
    }
  }

  private log(level: 'warn' | 'error', message: string, fields: Record<string, unknown>): void {
    this.options.logger?.[level](message, fields);
  }

  /** Confirm what is pending, flush every shard and stop the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const publisher of this.publishers) publisher.flush();
    await Promise.all(this.settlers.map((settler) => settler.flush()));
    this.consumers.clear();
    await this.pool.close();
  }
}
