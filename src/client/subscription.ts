/**
 * A subscription as the application holds it: deliveries come out of an async iterator (or to
 * `event` listeners), and the subscription can be paused, resumed, replayed from a position, and
 * its dead letters listed and replayed. It outlives connections: after a reconnect the client opens
 * it again with the same name, pattern and options.
 */
import type { DeadLetter, StartFrom, SubscribeFrame, WireDelivery } from '../protocol/index.js';
import { Emitter } from './emitter.js';
import { EnSyncError, invalidArgument } from './errors.js';
import { Fifo } from './fifo.js';
import { DeliveredEvent, type ReceivedEvent } from './received-event.js';
import type { ReplyTo, RequestFrame } from './request-frames.js';
import type { Session } from './session.js';

export interface SubscribeOptions {
  /** Durable name, unique per client: 1–128 of `A–Z a–z 0–9 . _ -`. */
  name: string;
  /** Where a new subscription starts (ignored when it exists); default "new". */
  from?: StartFrom;
  /** Unacked deliveries per shard, across all consumers of the subscription; default 1000. */
  maxInFlight?: number;
  /** Redeliver an unacked delivery after this long; default 30000. */
  ackTimeoutMs?: number;
  /** Dead-letter an event after this many deliveries; default 5. */
  maxDeliveries?: number;
  /** One unacked delivery per ordering key (the event key, else its type). */
  ordered?: boolean;
  /** Unacked deliveries this connection holds per shard; default maxInFlight. Also the bound of the local buffer. */
  credits?: number;
}

export const DEFAULT_MAX_IN_FLIGHT = 1000;

/** What a subscription needs of its client. */
export interface SubscriptionHost {
  /** A request on the connected session (waiting for a connection when there is none). */
  call<F extends RequestFrame>(frame: F, retryOnConnectionLoss: boolean): Promise<ReplyTo<F['t']>>;
  /** The open session, or null while reconnecting. */
  currentSession(): Session | null;
  /** The subscription ended: stop routing to it and stop resubscribing it. */
  forget(subscription: Subscription): void;
}

export type SubscriptionEvents = {
  /** A delivery, when listeners are registered (instead of the iterator). */
  event: (event: ReceivedEvent) => unknown;
  /** An `event` listener failed (its event was nacked), or the subscription could not be reopened. */
  error: (error: EnSyncError) => void;
  /** The subscription ended (unsubscribed, client closed, or it could not be reopened). */
  end: () => void;
};

interface Waiter {
  resolve(result: IteratorResult<ReceivedEvent>): void;
  reject(error: EnSyncError): void;
}

export class Subscription extends Emitter<SubscriptionEvents> implements AsyncIterable<ReceivedEvent> {
  /** `<clientId>/<name>`, as the server names it. */
  readonly key: string;
  readonly name: string;
  /** Deliveries buffered per shard at most (the server never has more unacked on this connection). */
  readonly credits: number;
  /** Buffered deliveries not yet taken by the iterator; bounded by `credits` per shard. */
  private readonly buffer = new Fifo<DeliveredEvent>();
  private readonly bufferedPerShard = new Map<number, number>();
  private readonly waiters: Waiter[] = [];
  private state: 'opening' | 'open' | 'closed' = 'opening';
  private failure: EnSyncError | null = null;

  constructor(
    private readonly host: SubscriptionHost,
    clientId: string,
    readonly pattern: string,
    readonly options: Readonly<SubscribeOptions>,
  ) {
    super();
    this.name = options.name;
    this.key = `${clientId}/${options.name}`;
    this.credits = options.credits ?? options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  }

  /** Opened at least once and not ended: reopened after a reconnect. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Deliveries waiting in the local buffer. */
  get bufferedCount(): number {
    return this.buffer.size;
  }

  /** The `subscribe` frame (without id) that opens this subscription, first time and after reconnects. */
  subscribeFrame(): Omit<SubscribeFrame, 'id'> {
    const { from, maxInFlight, ackTimeoutMs, maxDeliveries, ordered, credits } = this.options;
    return { t: 'subscribe', name: this.name, pattern: this.pattern, from, maxInFlight, ackTimeoutMs, maxDeliveries, ordered, credits };
  }

  override on<K extends keyof SubscriptionEvents>(name: K, listener: SubscriptionEvents[K]): this {
    super.on(name, listener);
    // Deliveries buffered before the first listener came go to it.
    if (name === 'event') while (this.buffer.size > 0) this.dispatch(this.take()!);
    return this;
  }

  /** Stop delivery of this subscription (for all its consumers, durably) until resume(). */
  async pause(): Promise<void> {
    await this.host.call({ t: 'pause', subscription: this.key }, true);
  }

  async resume(): Promise<void> {
    await this.host.call({ t: 'resume', subscription: this.key }, true);
  }

  /** Move the subscription to `from` in every shard: replay or skip. */
  async replay(options: { from: StartFrom }): Promise<void> {
    await this.host.call({ t: 'seek', subscription: this.key, from: options.from }, true);
  }

  async deadLetters(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const reply = await this.host.call({ t: 'dead-letters', subscription: this.key, limit: options.limit }, true);
    return reply.letters;
  }

  /** Deliver dead letters again: all, or those named by shard and offset (as deadLetters() lists them). */
  async replayDeadLetters(which: 'all' | ReadonlyArray<{ shard: number; offset: number }>): Promise<number> {
    if (which !== 'all' && !Array.isArray(which)) throw invalidArgument('which', 'must be "all" or an array of {shard, offset}');
    const refs = which === 'all' ? 'all' : which.map(({ shard, offset }) => [shard, offset] as [number, number]);
    const reply = await this.host.call({ t: 'replay-dead-letters', subscription: this.key, which: refs }, false);
    return reply.count ?? 0;
  }

  /**
   * Close this connection's consumer; the durable subscription and its position stay. Buffered and
   * unacked deliveries go back to the server, which delivers them again later.
   */
  async unsubscribe(): Promise<void> {
    if (this.state === 'closed') return;
    const session = this.host.currentSession();
    this.end(null);
    if (session === null) return; // the consumer went with the connection
    try {
      await session.request({ t: 'unsubscribe', subscription: this.key });
    } catch (error) {
      if (error instanceof EnSyncError && ['CONNECTION_LOST', 'CLIENT_CLOSED', 'NOT_FOUND'].includes(error.code)) return;
      throw error;
    }
  }

  /** The iterator ends when the subscription ends; leaving a `for await` loop early unsubscribes. */
  [Symbol.asyncIterator](): AsyncIterator<ReceivedEvent> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.unsubscribe();
        return { done: true, value: undefined };
      },
    };
  }

  /** @internal The server confirmed the subscription. */
  opened(): void {
    if (this.state === 'opening') this.state = 'open';
  }

  /** @internal Deliveries for this subscription from `session`. */
  deliver(session: Session, deliveries: readonly WireDelivery[]): void {
    if (this.state === 'closed') return; // not acked: the server delivers them again
    for (const delivery of deliveries) {
      const event = new DeliveredEvent(session, this.key, delivery);
      if (this.listenerCount('event') > 0) {
        this.dispatch(event);
      } else if (this.waiters.length > 0) {
        this.waiters.shift()!.resolve({ done: false, value: event });
      } else {
        const held = this.bufferedPerShard.get(event.shard) ?? 0;
        // More than the credits would be a server fault; dropped unacked, it comes back after ackTimeoutMs.
        if (held >= this.credits) continue;
        this.bufferedPerShard.set(event.shard, held + 1);
        this.buffer.push(event);
      }
    }
  }

  /** @internal A session dropped: its buffered deliveries are void (the server delivers them again). */
  sessionLost(session: Session): void {
    if (this.buffer.size === 0) return;
    this.buffer.retain((event) => !DeliveredEvent.cameOn(event, session));
    this.bufferedPerShard.clear();
    for (const event of this.buffer) this.bufferedPerShard.set(event.shard, (this.bufferedPerShard.get(event.shard) ?? 0) + 1);
  }

  /** @internal End the subscription: with `failure` the iterator throws it, else it finishes. */
  end(failure: EnSyncError | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.failure = failure;
    this.host.forget(this);
    this.buffer.drain();
    this.bufferedPerShard.clear();
    for (const waiter of this.waiters.splice(0)) {
      if (failure === null) waiter.resolve({ done: true, value: undefined });
      else waiter.reject(failure);
    }
    if (failure !== null) this.emit('error', failure);
    this.emit('end');
  }

  protected override onListenerError(name: keyof SubscriptionEvents, error: unknown, args: unknown[]): void {
    if (name !== 'event') return;
    const event = args[0] as DeliveredEvent;
    // A failed handler: deliver the event again rather than leave it until ackTimeoutMs.
    if (!event.settled) event.nack().catch(() => undefined);
    const failure = error instanceof EnSyncError ? error : new EnSyncError('INTERNAL', `an event listener failed on event ${event.id}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    this.emit('error', failure);
  }

  private next(): Promise<IteratorResult<ReceivedEvent>> {
    const event = this.take();
    if (event !== undefined) return Promise.resolve({ done: false, value: event });
    if (this.state === 'closed') return this.failure === null ? Promise.resolve({ done: true, value: undefined }) : Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private take(): DeliveredEvent | undefined {
    const event = this.buffer.shift();
    if (event !== undefined) this.bufferedPerShard.set(event.shard, this.bufferedPerShard.get(event.shard)! - 1);
    return event;
  }

  private dispatch(event: DeliveredEvent): void {
    this.emit('event', event);
  }
}
