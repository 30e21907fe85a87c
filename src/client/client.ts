/**
 * EnSyncClient: publish events and subscribe to them over one WebSocket connection to an EnSync
 * engine. The connection is replaced by itself when it drops (exponential backoff with jitter):
 * the client authenticates again, reopens every subscription and re-sends the publishes that were
 * not confirmed, under their original ids so the engine stores each event once.
 */
import type { ConnectionLimits, DeliverFrame, TrailEntry } from '../protocol/index.js';
import { DEFAULT_RECONNECT, backoffDelay, type ReconnectOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { EnSyncError, invalidArgument } from './errors.js';
import { EventIdGenerator } from './event-id.js';
import { canonicalSigningBytes } from './event-signing.js';
import { secretKeyBytes, sign } from './keys.js';
import { PublishPipeline, type PublishReceipt } from './publish-pipeline.js';
import { buildPublishEvent, type PublishOptions } from './publish-event.js';
import { eventData, type EventData } from './received-event.js';
import type { ReplyTo, RequestFrame } from './request-frames.js';
import { Session, type SessionEvents } from './session.js';
import { Subscription, type SubscribeOptions, type SubscriptionHost } from './subscription.js';

export interface ConnectOptions {
  clientId: string;
  /** The client's Ed25519 secret key: the 32-byte seed, as base64 text or bytes. */
  secretKey: string | Uint8Array;
  /** Reconnect delays, or false to give up (close the client) when the connection drops. */
  reconnect?: ReconnectOptions | false;
  /** How long a request (publish included) may take, waiting for a connection included; default 30 000 ms. */
  requestTimeoutMs?: number;
}

export type ClientEvents = {
  /** A replacement connection is up (subscriptions reopened). */
  connected: () => void;
  /** The connection dropped; the client reconnects unless it is closed. */
  disconnected: (error: EnSyncError) => void;
  /** A reconnect attempt is starting (1, 2, …). */
  reconnecting: (attempt: number) => void;
  /** An `error` frame that answers no request, or a reconnect attempt that failed. */
  error: (error: EnSyncError) => void;
  /** The client is closed for good: by close(), or by a fatal error (then given). */
  closed: (error: EnSyncError | null) => void;
};

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Requests waiting for a connection at most; more fail with OVERLOADED. */
export const MAX_WAITING_FOR_CONNECTION = 10_000;
/** Limits assumed until the first welcome (replaced by the server's). */
const INITIAL_LIMITS: ConnectionLimits = { maxFrameBytes: 1024 * 1024, maxPayloadBytes: 1024 * 1024, maxEventsPerPublish: 1000, maxSubscriptionsPerConnection: 64, publishWindow: 1000 };
/** Errors after which reconnecting cannot help. */
const FATAL_CODES: ReadonlySet<string> = new Set(['AUTH_FAILED', 'UNSUPPORTED_VERSION']);

interface ConnectionWaiter {
  resolve(session: Session): void;
  reject(error: EnSyncError): void;
  timer: ReturnType<typeof setTimeout>;
}

export class EnSyncClient extends Emitter<ClientEvents> {
  private session: Session | null = null;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly pipeline: PublishPipeline;
  private readonly ids = new EventIdGenerator();
  private requestId = 0;
  private requireSignatures = false;
  private closedWith: EnSyncError | null = null;
  private reconnecting = false;
  private readonly connectionWaiters = new Set<ConnectionWaiter>();
  private wakeReconnect: (() => void) | null = null;
  private readonly sessionEvents: SessionEvents = {
    deliver: (session, frame) => this.onDeliver(session, frame),
    error: (_session, error) => this.emit('error', error),
    closed: (session, error) => this.onSessionClosed(session, error),
  };
  private readonly host: SubscriptionHost = {
    call: (frame, retry) => this.call(frame, retry),
    currentSession: () => (this.session?.isOpen ? this.session : null),
    forget: (subscription) => {
      if (this.subscriptions.get(subscription.key) === subscription) this.subscriptions.delete(subscription.key);
    },
  };

  private constructor(
    readonly url: string,
    readonly clientId: string,
    private readonly secretKey: Uint8Array,
    private readonly reconnectOptions: Required<ReconnectOptions> | false,
    private readonly requestTimeoutMs: number,
  ) {
    super();
    this.pipeline = new PublishPipeline(INITIAL_LIMITS, requestTimeoutMs);
  }

  /** Connect and authenticate; rejects (AUTH_FAILED, CONNECTION_FAILED, …) when the first attempt fails. */
  static async connect(url: string, options: ConnectOptions): Promise<EnSyncClient> {
    const endpoint = endpointUrl(url);
    if (typeof options?.clientId !== 'string' || options.clientId.length === 0) throw invalidArgument('clientId', 'must be a non-empty string');
    const secretKey = secretKeyBytes(options.secretKey);
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!Number.isSafeInteger(requestTimeoutMs) || requestTimeoutMs <= 0) throw invalidArgument('requestTimeoutMs', 'must be a positive integer (ms)');
    const reconnect = options.reconnect === false ? false : reconnectOptions(options.reconnect);
    const client = new EnSyncClient(endpoint, options.clientId, secretKey, reconnect, requestTimeoutMs);
    client.useSession(await client.openSession());
    return client;
  }

  get isConnected(): boolean {
    return this.session?.isOpen ?? false;
  }

  get isClosed(): boolean {
    return this.closedWith !== null;
  }

  /** The server's limits for this client (from the latest welcome). */
  get limits(): ConnectionLimits {
    return this.session?.welcome.limits ?? INITIAL_LIMITS;
  }

  /** Events published but not yet confirmed (waiting or sent). */
  get pendingPublishes(): number {
    return this.pipeline.pendingCount;
  }

  /**
   * Publish one event; resolves once it is durable. `payload`: bytes are sent as they are, any other
   * value is packed with msgpack (header `content-type: application/msgpack`).
   */
  publish(type: string, payload: unknown, options: PublishOptions = {}): Promise<PublishReceipt> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    let event;
    try {
      event = buildPublishEvent(type, payload, options, () => this.ids.next());
    } catch (error) {
      return Promise.reject(error);
    }
    const signature = this.requireSignatures ? sign(canonicalSigningBytes({ ...event, id: event.id! }), this.secretKey) : null;
    return this.pipeline.publish(event, signature);
  }

  /** Open (or reopen) the durable subscription `options.name` over the event types of `pattern`. */
  async subscribe(pattern: string, options: SubscribeOptions): Promise<Subscription> {
    if (this.closedWith !== null) throw this.closedWith;
    if (typeof pattern !== 'string') throw invalidArgument('pattern', 'must be a string');
    if (typeof options?.name !== 'string') throw invalidArgument('name', 'must be a string');
    const subscription = new Subscription(this.host, this.clientId, pattern, { ...options });
    if (this.subscriptions.has(subscription.key)) throw invalidArgument('name', `subscription ${options.name} is already open on this client`);
    // Registered first: deliveries may arrive before the `subscribed` reply.
    this.subscriptions.set(subscription.key, subscription);
    try {
      await this.call(subscription.subscribeFrame(), true);
    } catch (error) {
      subscription.end(null);
      throw error;
    }
    if (subscription.isClosed) throw this.closedWith ?? new EnSyncError('CLIENT_CLOSED', 'the client was closed');
    subscription.opened();
    return subscription;
  }

  /** A stored event and its history (published, delivered, acked, …). */
  async getEvent(type: string, id: string): Promise<{ event: EventData; trail: TrailEntry[] }> {
    const reply = await this.call({ t: 'get-event', type, eventId: id }, true);
    return { event: eventData(reply.event, reply.shard, reply.offset), trail: reply.trail };
  }

  /** Stop for good: no more reconnects; pending requests and publishes fail with CLIENT_CLOSED. */
  async close(): Promise<void> {
    this.shutdown(new EnSyncError('CLIENT_CLOSED', 'the client was closed'), null);
  }

  private openSession(): Promise<Session> {
    return Session.open(
      { url: this.url, clientId: this.clientId, secretKey: this.secretKey, timeoutMs: this.requestTimeoutMs, nextRequestId: () => this.requestId++ },
      this.sessionEvents,
    );
  }

  private useSession(session: Session): void {
    this.session = session;
    this.requireSignatures = session.welcome.requireSignatures;
    this.pipeline.attach(session);
    for (const waiter of this.connectionWaiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(session);
    }
    this.connectionWaiters.clear();
  }

  /** A request on the open session; with `retry`, one lost with its connection is sent again on the next. */
  private async call<F extends RequestFrame>(frame: F, retry: boolean): Promise<ReplyTo<F['t']>> {
    const deadline = Date.now() + this.requestTimeoutMs;
    for (;;) {
      const session = await this.connectedSession(deadline);
      try {
        return await session.request(frame, Math.max(1, deadline - Date.now()));
      } catch (error) {
        if (retry && error instanceof EnSyncError && error.code === 'CONNECTION_LOST' && this.closedWith === null && Date.now() < deadline) continue;
        throw error;
      }
    }
  }

  private connectedSession(deadline: number): Promise<Session> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    if (this.session?.isOpen) return Promise.resolve(this.session);
    if (this.connectionWaiters.size >= MAX_WAITING_FOR_CONNECTION) {
      return Promise.reject(new EnSyncError('OVERLOADED', `${MAX_WAITING_FOR_CONNECTION} requests are already waiting for the connection`, { retryable: true }));
    }
    return new Promise<Session>((resolve, reject) => {
      const waiter: ConnectionWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.connectionWaiters.delete(waiter);
          reject(new EnSyncError('TIMEOUT', `not connected within ${this.requestTimeoutMs} ms`));
        }, Math.max(1, deadline - Date.now())),
      };
      this.connectionWaiters.add(waiter);
    });
  }

  private onDeliver(session: Session, frame: DeliverFrame): void {
    // Deliveries of a subscription no longer held are not acked: the server delivers them again.
    this.subscriptions.get(frame.subscription)?.deliver(session, frame.deliveries);
  }

  private onSessionClosed(session: Session, error: EnSyncError): void {
    for (const subscription of this.subscriptions.values()) subscription.sessionLost(session);
    this.pipeline.detach(session);
    if (session !== this.session) return; // a replacement that failed while being set up
    this.session = null;
    if (this.closedWith !== null) return;
    this.emit('disconnected', error);
    if (this.reconnectOptions === false) {
      this.shutdown(error, error);
      return;
    }
    void this.reconnect(this.reconnectOptions);
  }

  private async reconnect(options: Required<ReconnectOptions>): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let attempt = 0; this.closedWith === null; attempt++) {
        await this.sleep(backoffDelay(attempt, options));
        if (this.closedWith !== null) return;
        this.emit('reconnecting', attempt + 1);
        let session: Session;
        try {
          session = await this.openSession();
        } catch (error) {
          const failure = error instanceof EnSyncError ? error : new EnSyncError('CONNECTION_FAILED', String(error));
          if (FATAL_CODES.has(failure.code)) {
            this.shutdown(failure, failure);
            return;
          }
          this.emit('error', failure);
          continue;
        }
        if (this.closedWith !== null) {
          session.close(this.closedWith);
          return;
        }
        try {
          await this.reopenSubscriptions(session);
        } catch (error) {
          session.close(error instanceof EnSyncError ? error : new EnSyncError('CONNECTION_LOST', String(error)));
          continue;
        }
        if (!session.isOpen || this.closedWith !== null) continue;
        this.useSession(session);
        this.emit('connected');
        return;
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /** Subscribe again to every open subscription; retryable failures retry the whole connection. */
  private async reopenSubscriptions(session: Session): Promise<void> {
    const open = [...this.subscriptions.values()].filter((subscription) => subscription.isOpen);
    await Promise.all(
      open.map(async (subscription) => {
        try {
          await session.request(subscription.subscribeFrame());
        } catch (error) {
          const failure = error instanceof EnSyncError ? error : new EnSyncError('INTERNAL', String(error));
          if (failure.retryable) throw failure;
          subscription.end(failure); // e.g. FORBIDDEN after its permissions changed
          return;
        }
        // Unsubscribed while this was on its way: close the consumer just opened.
        if (subscription.isClosed) session.request({ t: 'unsubscribe', subscription: subscription.key }).catch(() => undefined);
      }),
    );
  }

  /** Wait `ms`, or less if the client closes meanwhile. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeReconnect = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      this.wakeReconnect = null;
    });
  }

  /** Close for good. `failure` (a fatal error) is what iterators throw; null ends them quietly. */
  private shutdown(error: EnSyncError, failure: EnSyncError | null): void {
    if (this.closedWith !== null) return;
    this.closedWith = error;
    this.wakeReconnect?.();
    const session = this.session;
    this.session = null;
    session?.close(error);
    this.pipeline.close(error);
    for (const waiter of this.connectionWaiters) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.connectionWaiters.clear();
    for (const subscription of [...this.subscriptions.values()]) subscription.end(failure);
    this.subscriptions.clear();
    this.emit('closed', failure);
  }
}

/** ws:// or wss:// URL; `/ws` is appended when it has no path. */
function endpointUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidArgument('url', `is not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw invalidArgument('url', `must be ws:// or wss://, got ${parsed.protocol}//`);
  if (parsed.pathname === '' || parsed.pathname === '/') parsed.pathname = '/ws';
  return parsed.toString();
}

function reconnectOptions(options: ReconnectOptions | undefined): Required<ReconnectOptions> {
  const initialDelayMs = options?.initialDelayMs ?? DEFAULT_RECONNECT.initialDelayMs;
  const maxDelayMs = options?.maxDelayMs ?? Math.max(DEFAULT_RECONNECT.maxDelayMs, initialDelayMs);
  if (!Number.isFinite(initialDelayMs) || initialDelayMs < 0) throw invalidArgument('reconnect.initialDelayMs', 'must be a non-negative number (ms)');
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < initialDelayMs) throw invalidArgument('reconnect.maxDelayMs', 'must be a number not below initialDelayMs (ms)');
  return { initialDelayMs, maxDelayMs };
}
