import type { Consumer, DeliveryRef as EngineDeliveryRef } from '../../engine/consumer.js';
import type { Delivery } from '../../engine/delivery.js';
import type { Engine } from '../../engine/engine.js';
import { EngineError } from '../../engine/errors.js';
import { validateEventType } from '../../engine/event.js';
import type { StartPosition } from '../../engine/subscription-spec.js';
import { ProtocolError, type ClientFrame, type DeliveryRef, type ErrorBody, type PublishResult, type ServerFrame, type StartFrom } from '../../protocol/index.js';
import type { KnownClient } from '../client-directory.js';
import type { WsLimits } from './ws-limits.js';
import { toWireEvent, toWireTrail } from './wire-event.js';

/**
 * The requests of one authenticated connection, served through the engine's API as its client:
 * publishing (within the client's publish patterns), subscriptions and their settlements, pause,
 * seek, dead letters and lookups. It holds the connection's consumers; `close` closes them, so
 * their unacked deliveries go out again at once.
 */
export class ClientRequests {
  private readonly consumers = new Map<string, Consumer>();
  private closed = false;

  constructor(
    private readonly engine: Engine,
    private readonly client: KnownClient,
    private readonly limits: WsLimits,
    private readonly send: (frame: ServerFrame) => void,
  ) {}

  /** Serve one request; a failure rejects with the typed error the connection reports. */
  async handle(frame: ClientFrame): Promise<void> {
    const engine = this.engine;
    const clientId = this.client.record.id;
    switch (frame.t) {
      case 'hello':
        throw new ProtocolError('PROTOCOL_ERROR', 'already authenticated', { requestId: frame.id });
      case 'publish':
        return this.publish(frame);
      case 'subscribe':
        return this.subscribe(frame);
      case 'unsubscribe': {
        const consumer = this.consumerOf(frame.subscription);
        this.consumers.delete(frame.subscription);
        await consumer.close();
        return this.send({ t: 'ok', id: frame.id });
      }
      case 'ack':
      case 'nack':
      case 'defer':
      case 'discard': {
        const consumer = this.consumerOf(frame.subscription);
        const refs = frame.deliveries.map(toEngineRef);
        if (frame.t === 'ack') consumer.ack(refs);
        else if (frame.t === 'nack') consumer.nack(refs, frame.delayMs === undefined ? {} : { delayMs: frame.delayMs });
        else if (frame.t === 'defer') consumer.defer(refs, frame.delayMs);
        else consumer.discard(refs, frame.reason);
        if (frame.id !== undefined) this.send({ t: 'ok', id: frame.id });
        return;
      }
      case 'pause':
      case 'resume': {
        const name = this.ownName(frame.subscription);
        await (frame.t === 'pause' ? engine.pause(clientId, name) : engine.resume(clientId, name));
        return this.send({ t: 'ok', id: frame.id });
      }
      case 'seek':
        await engine.seek(clientId, this.ownName(frame.subscription), startPosition(frame.from));
        return this.send({ t: 'ok', id: frame.id });
      case 'dead-letters': {
        const letters = await engine.deadLetters(clientId, this.ownName(frame.subscription), frame.limit === undefined ? {} : { limit: frame.limit });
        return this.send({ t: 'dead-letters', id: frame.id, letters });
      }
      case 'replay-dead-letters': {
        const which = frame.which === 'all' ? 'all' : frame.which.map(toEngineRef);
        const count = await engine.replayDeadLetters(clientId, this.ownName(frame.subscription), which);
        return this.send({ t: 'ok', id: frame.id, count });
      }
      case 'get-event': {
        this.client.permissions.checkSubscribe(frame.type);
        const found = await engine.eventTrail(frame.type, frame.eventId);
        return this.send({ t: 'event', id: frame.id, event: toWireEvent(found.event), shard: found.shard, offset: found.offset, trail: toWireTrail(found.trail) });
      }
      case 'ping':
      case 'pong':
        throw new ProtocolError('PROTOCOL_ERROR', 'heartbeats are answered by the connection', { requestId: frame.id });
    }
  }

  private async publish(frame: Extract<ClientFrame, { t: 'publish' }>): Promise<void> {
    const { maxEventsPerPublish } = this.limits;
    if (frame.events.length > maxEventsPerPublish) {
      throw new ProtocolError('LIMIT_EXCEEDED', `a publish carries at most ${maxEventsPerPublish} events, got ${frame.events.length}`, { field: 'events', requestId: frame.id });
    }
    const permissions = this.client.permissions;
    const results: PublishResult[] = new Array(frame.events.length);
    const allowed: unknown[] = [];
    const positions: number[] = [];
    frame.events.forEach((event, i) => {
      try {
        validateEventType(event.type); // a malformed type is INVALID_EVENT, not a permission matter
        permissions.checkPublish(event.type);
        allowed.push(event);
        positions.push(i);
      } catch (error) {
        results[i] = { error: errorBody(error) };
      }
    });
    if (allowed.length > 0) {
      const outcomes = await this.engine.publishMany(this.client.record.id, allowed);
      outcomes.forEach((outcome, j) => {
        results[positions[j]!] = outcome instanceof EngineError ? { error: errorBody(outcome) } : outcome;
      });
    }
    this.send({ t: 'published', id: frame.id, results });
  }

  private async subscribe(frame: Extract<ClientFrame, { t: 'subscribe' }>): Promise<void> {
    const { maxSubscriptionsPerConnection } = this.limits;
    if (this.consumers.size >= maxSubscriptionsPerConnection) {
      throw new ProtocolError('LIMIT_EXCEEDED', `a connection holds at most ${maxSubscriptionsPerConnection} subscriptions`, { requestId: frame.id });
    }
    const clientId = this.client.record.id;
    const key = `${clientId}/${frame.name}`;
    if (this.consumers.has(key)) {
      throw new EngineError('INVALID_ARGUMENT', `subscription ${frame.name} is already open on this connection`, { field: 'name' });
    }
    this.client.permissions.checkSubscribe(frame.pattern);
    const consumer = await this.engine.subscribe(
      clientId,
      {
        name: frame.name,
        pattern: frame.pattern,
        ...(frame.from === undefined ? {} : { start: startPosition(frame.from) }),
        ...(frame.ordered === undefined ? {} : { ordered: frame.ordered }),
        ...(frame.maxInFlight === undefined ? {} : { maxInFlight: frame.maxInFlight }),
        ...(frame.ackTimeoutMs === undefined ? {} : { ackTimeoutMs: frame.ackTimeoutMs }),
        ...(frame.maxDeliveries === undefined ? {} : { maxDeliveries: frame.maxDeliveries }),
      },
      (deliveries) => this.deliver(key, deliveries),
      frame.credits === undefined ? {} : { credits: frame.credits },
    );
    if (this.closed) {
      await consumer.close();
      return;
    }
    this.consumers.set(consumer.subscription, consumer);
    this.send({ t: 'subscribed', id: frame.id, subscription: consumer.subscription });
  }

  private deliver(subscription: string, deliveries: Delivery[]): void {
    this.send({
      t: 'deliver',
      subscription,
      deliveries: deliveries.map((d) => ({ shard: d.shard, offset: d.offset, attempt: d.attempt, event: toWireEvent(d.event) })),
    });
  }

  private consumerOf(subscription: string): Consumer {
    const consumer = this.consumers.get(subscription);
    if (!consumer) throw new EngineError('NOT_FOUND', `subscription ${subscription} is not open on this connection`, { field: 'subscription' });
    return consumer;
  }

  /** The subscription's name, if it is this client's own (`<clientId>/<name>`). */
  private ownName(subscription: string): string {
    const prefix = `${this.client.record.id}/`;
    if (!subscription.startsWith(prefix)) {
      throw new EngineError('FORBIDDEN', `subscription ${subscription} does not belong to client ${this.client.record.id}`, { field: 'subscription' });
    }
    return subscription.slice(prefix.length);
  }

  close(): void {
    this.closed = true;
    for (const consumer of this.consumers.values()) void consumer.close();
    this.consumers.clear();
  }
}

function toEngineRef([shard, offset]: DeliveryRef): EngineDeliveryRef {
  return { shard, offset };
}

function startPosition(from: StartFrom): StartPosition {
  if (from === 'new' || from === 'all') return { from };
  if ('time' in from) return { from: 'time', timestamp: from.time };
  return { from: 'offset', offset: from.offset };
}

/** The error body of any failure: typed errors keep their code, anything else is INTERNAL. */
export function errorBody(error: unknown): ErrorBody {
  if (error instanceof ProtocolError) return error.toBody();
  if (error instanceof EngineError) {
    const body: ErrorBody = { code: error.code as ErrorBody['code'], message: error.message, retryable: error.retryable };
    if (error.field !== undefined) body.field = error.field;
    return body;
  }
  return { code: 'INTERNAL', message: 'internal error', retryable: false };
}
