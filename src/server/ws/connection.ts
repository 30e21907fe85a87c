import type { Consumer, DeliveryRef as EngineDeliveryRef } from '../../engine/consumer.js';
import type { Delivery } from '../../engine/delivery.js';
import type { Engine } from '../../engine/engine.js';
import { EngineError } from '../../engine/errors.js';
import { validateEventType } from '../../engine/event.js';
import type { StartPosition } from '../../engine/subscription-spec.js';
import type { Logger } from '../../observability/logger.js';
import {
  CLOSE_CODES,
  PROTOCOL_VERSION,
  ProtocolError,
  SUPPORTED_VERSIONS,
  decodeClientFrame,
  encodeFrame,
  errorFrame,
  type ClientFrame,
  type ConnectionLimits,
  type DeliveryRef,
  type ErrorBody,
  type PublishResult,
  type ServerFrame,
  type StartFrom,
} from '../../protocol/index.js';
import type { ClientDirectory, KnownClient } from '../client-directory.js';
import type { ClientSessions } from '../client-sessions.js';
import { newChallenge, verifyChallenge, type AuthThrottle, type Challenge } from './client-auth.js';
import { toWireEvent, toWireTrail } from './wire-event.js';

/** What a connection needs of its socket (uWebSockets.js, or a test double). */
export interface SocketPort {
  /** false when the frame was dropped (the socket is closing). */
  send(frame: Uint8Array): boolean;
  bufferedAmount(): number;
  close(code: number, reason: string): void;
  readonly remoteAddress: string;
}

export interface WsLimits extends ConnectionLimits {
  /** Deliveries stop going to the socket while more than this is buffered; they resume on drain. */
  maxBufferedBytes: number;
  /** Frames held for a slow socket at most (bytes); past it the connection is closed. */
  maxQueuedBytes: number;
  authTimeoutMs: number;
  heartbeatMs: number;
  /** Open connections one client may hold at most. */
  maxConnectionsPerClient: number;
}

/** What every connection of one server shares. */
export interface ConnectionContext {
  engine: Engine;
  clients: ClientDirectory;
  throttle: AuthThrottle;
  limits: WsLimits;
  serverId: string;
  sessions: ClientSessions;
  logger: Logger | null;
}

type State = 'challenged' | 'verifying' | 'authenticated' | 'closed';

/**
 * One client connection: the challenge-response handshake, then requests dispatched to the engine
 * under the authenticated client's identity and permissions, and deliveries pushed as they come.
 * Frames wait in a bounded queue while the socket's send buffer is over its bound (backpressure);
 * a consumer's deliveries are bounded by its credits, so a client that stops reading costs bounded
 * memory, and one that lets the queue pass its bound is disconnected.
 */
export class Connection {
  private state: State = 'challenged';
  private readonly challenge: Challenge;
  private client: KnownClient | null = null;
  private readonly consumers = new Map<string, Consumer>();
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private readonly authTimer: NodeJS.Timeout;
  private heartbeat: NodeJS.Timeout | null = null;
  /** The server's ping not yet answered (-1: none out). */
  private pingOut = -1;
  private nextPingId = 1;

  constructor(
    private readonly socket: SocketPort,
    private readonly context: ConnectionContext,
  ) {
    this.challenge = newChallenge(context.serverId);
    this.send({
      t: 'challenge',
      versions: [...SUPPORTED_VERSIONS],
      serverId: this.challenge.serverId,
      connectionId: this.challenge.connectionId,
      nonce: this.challenge.nonce,
      authTimeoutMs: context.limits.authTimeoutMs,
    });
    this.authTimer = setTimeout(() => {
      if (this.state !== 'authenticated') this.fail({ code: 'AUTH_TIMEOUT', message: `no valid hello within ${context.limits.authTimeoutMs} ms`, retryable: true }, CLOSE_CODES.AUTH_TIMEOUT);
    }, context.limits.authTimeoutMs);
    this.authTimer.unref();
  }

  get clientId(): string | null {
    return this.client?.record.id ?? null;
  }

  get id(): string {
    return this.challenge.connectionId;
  }

  onMessage(bytes: Uint8Array, isBinary: boolean): void {
    if (this.state === 'closed') return;
    let frame: ClientFrame;
    try {
      if (!isBinary) throw new ProtocolError('PROTOCOL_ERROR', 'frames must be binary (msgpack)');
      frame = decodeClientFrame(bytes, this.context.limits.maxFrameBytes);
    } catch (error) {
      this.refuse(error);
      return;
    }
    if (this.client) this.context.sessions.seen(this.client.record.id, Date.now());
    if (this.state !== 'authenticated') {
      if (frame.t !== 'hello' || this.state !== 'challenged') {
        this.fail({ code: 'PROTOCOL_ERROR', message: 'authenticate first: the only frame accepted now is hello', retryable: false }, CLOSE_CODES.PROTOCOL_ERROR, frame.id);
        return;
      }
      void this.hello(frame);
      return;
    }
    this.handle(frame).catch((error: unknown) => this.sendError(error, frame.id));
  }

  /** The socket can take more: send what waited. */
  onDrain(): void {
    while (this.queue.length > 0 && this.socket.bufferedAmount() <= this.context.limits.maxBufferedBytes) {
      const bytes = this.queue.shift()!;
      this.queuedBytes -= bytes.byteLength;
      if (!this.socket.send(bytes)) return;
    }
  }

  /** The socket closed: its consumers close, so their unacked deliveries go out again at once. */
  onClose(): void {
    if (this.state === 'closed') return;
    if (this.state === 'authenticated') this.context.sessions.disconnected(this.client!.record.id, Date.now());
    this.state = 'closed';
    clearTimeout(this.authTimer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.queue.length = 0;
    for (const consumer of this.consumers.values()) void consumer.close();
    this.consumers.clear();
  }

  /** Close from the server side (shutdown: going away). */
  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.socket.close(code, reason);
    this.onClose();
  }

  private async hello(frame: Extract<ClientFrame, { t: 'hello' }>): Promise<void> {
    this.state = 'verifying';
    const address = this.socket.remoteAddress;
    const delay = this.context.throttle.delayFor(address, Date.now());
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    if (this.state !== 'verifying') return;
    if (!SUPPORTED_VERSIONS.includes(frame.version)) {
      this.fail({ code: 'UNSUPPORTED_VERSION', message: `protocol version ${frame.version} is not supported (supported: ${SUPPORTED_VERSIONS.join(', ')})`, field: 'version', retryable: false }, CLOSE_CODES.PROTOCOL_ERROR, frame.id);
      return;
    }
    const client = this.context.clients.get(frame.clientId);
    if (!client || !verifyChallenge(this.challenge, client.publicKey, frame.signature)) {
      this.context.throttle.failed(address, Date.now());
      // The same answer for an unknown client and a bad signature: ids are not revealed.
      this.fail({ code: 'AUTH_FAILED', message: 'authentication failed: unknown client or bad signature', retryable: false }, CLOSE_CODES.AUTH_FAILED, frame.id);
      return;
    }
    this.context.throttle.succeeded(address);
    clearTimeout(this.authTimer);
    const open = this.context.sessions.get(client.record.id, Date.now())?.connections ?? 0;
    if (open >= this.context.limits.maxConnectionsPerClient) {
      this.fail({ code: 'LIMIT_EXCEEDED', message: `client ${client.record.id} has ${open} connections open, the most allowed`, retryable: true }, CLOSE_CODES.PROTOCOL_ERROR, frame.id);
      return;
    }
    this.client = client;
    this.state = 'authenticated';
    this.context.sessions.connected(client.record.id, Date.now());
    const { maxFrameBytes, maxPayloadBytes, maxEventsPerPublish, maxSubscriptionsPerConnection, publishWindow } = this.context.limits;
    this.send({
      t: 'welcome',
      id: frame.id,
      version: PROTOCOL_VERSION,
      clientId: client.record.id,
      requireSignatures: client.record.requireSignatures,
      limits: { maxFrameBytes, maxPayloadBytes, maxEventsPerPublish, maxSubscriptionsPerConnection, publishWindow },
      heartbeatMs: this.context.limits.heartbeatMs,
    });
    this.heartbeat = setInterval(() => this.ping(), this.context.limits.heartbeatMs);
    this.heartbeat.unref();
  }

  /** A ping still unanswered when the next is due means the peer is gone: its deliveries go out again. */
  private ping(): void {
    if (this.pingOut >= 0) {
      this.context.logger?.info('closing a connection that stopped answering pings', { client: this.clientId });
      this.close(CLOSE_CODES.GOING_AWAY, 'no pong');
      return;
    }
    this.pingOut = this.nextPingId++;
    this.send({ t: 'ping', id: this.pingOut });
  }

  private async handle(frame: ClientFrame): Promise<void> {
    const engine = this.context.engine;
    const clientId = this.client!.record.id;
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
        this.client!.permissions.checkSubscribe(frame.type);
        const found = await engine.eventTrail(frame.type, frame.eventId);
        return this.send({ t: 'event', id: frame.id, event: toWireEvent(found.event), shard: found.shard, offset: found.offset, trail: toWireTrail(found.trail) });
      }
      case 'ping':
        return this.send({ t: 'pong', id: frame.id });
      case 'pong':
        if (frame.id === this.pingOut) this.pingOut = -1;
        return;
    }
  }

  private async publish(frame: Extract<ClientFrame, { t: 'publish' }>): Promise<void> {
    const { maxEventsPerPublish } = this.context.limits;
    if (frame.events.length > maxEventsPerPublish) {
      throw new ProtocolError('LIMIT_EXCEEDED', `a publish carries at most ${maxEventsPerPublish} events, got ${frame.events.length}`, { field: 'events', requestId: frame.id });
    }
    const permissions = this.client!.permissions;
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
      const outcomes = await this.context.engine.publishMany(this.client!.record.id, allowed);
      outcomes.forEach((outcome, j) => {
        results[positions[j]!] = outcome instanceof EngineError ? { error: errorBody(outcome) } : outcome;
      });
    }
    this.send({ t: 'published', id: frame.id, results });
  }

  private async subscribe(frame: Extract<ClientFrame, { t: 'subscribe' }>): Promise<void> {
    const { maxSubscriptionsPerConnection } = this.context.limits;
    if (this.consumers.size >= maxSubscriptionsPerConnection) {
      throw new ProtocolError('LIMIT_EXCEEDED', `a connection holds at most ${maxSubscriptionsPerConnection} subscriptions`, { requestId: frame.id });
    }
    const clientId = this.client!.record.id;
    const key = `${clientId}/${frame.name}`;
    if (this.consumers.has(key)) {
      throw new EngineError('INVALID_ARGUMENT', `subscription ${frame.name} is already open on this connection`, { field: 'name' });
    }
    this.client!.permissions.checkSubscribe(frame.pattern);
    const consumer = await this.context.engine.subscribe(
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
    if (this.state === 'closed') {
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
    const prefix = `${this.client!.record.id}/`;
    if (!subscription.startsWith(prefix)) {
      throw new EngineError('FORBIDDEN', `subscription ${subscription} does not belong to client ${this.client!.record.id}`, { field: 'subscription' });
    }
    return subscription.slice(prefix.length);
  }

  private send(frame: ServerFrame): void {
    if (this.state === 'closed') return;
    const bytes = encodeFrame(frame);
    if (this.queue.length === 0 && this.socket.bufferedAmount() <= this.context.limits.maxBufferedBytes) {
      this.socket.send(bytes);
      return;
    }
    this.queue.push(bytes);
    this.queuedBytes += bytes.byteLength;
    if (this.queuedBytes > this.context.limits.maxQueuedBytes) {
      this.context.logger?.warn('closing a connection that does not read its frames', { client: this.clientId, queuedBytes: this.queuedBytes });
      this.close(CLOSE_CODES.GOING_AWAY, 'too slow: frames waiting past the bound');
    }
  }

  private sendError(error: unknown, requestId: number | undefined): void {
    const body = errorBody(error);
    if (body.code === 'INTERNAL' || body.code === 'STORAGE_FAILED') {
      this.context.logger?.error('request failed', { client: this.clientId, code: body.code, error: body.message });
    }
    this.send(errorFrame(body, requestId));
  }

  /** A frame that could not be read: an error frame; before authentication, the connection ends. */
  private refuse(error: unknown): void {
    const body = errorBody(error);
    const requestId = error instanceof ProtocolError ? error.requestId : undefined;
    if (this.state !== 'authenticated') {
      this.fail(body, body.code === 'FRAME_TOO_LARGE' ? CLOSE_CODES.MESSAGE_TOO_BIG : CLOSE_CODES.PROTOCOL_ERROR, requestId);
      return;
    }
    this.send(errorFrame(body, requestId));
  }

  private fail(body: ErrorBody, closeCode: number, requestId?: number): void {
    this.send(errorFrame(body, requestId));
    this.close(closeCode, body.code);
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
function errorBody(error: unknown): ErrorBody {
  if (error instanceof ProtocolError) return error.toBody();
  if (error instanceof EngineError) {
    const body: ErrorBody = { code: error.code as ErrorBody['code'], message: error.message, retryable: error.retryable };
    if (error.field !== undefined) body.field = error.field;
    return body;
  }
  return { code: 'INTERNAL', message: 'internal error', retryable: false };
}
