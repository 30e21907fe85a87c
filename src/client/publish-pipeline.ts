/**
 * The way of published events to the engine. Events published in the same tick share one `publish`
 * frame (up to maxEventsPerPublish and maxFrameBytes); at most publishWindow events are unconfirmed
 * at a time, the rest wait here in publish order, at most 10 × publishWindow of them. Events that
 * were sent but not confirmed when a connection dropped are sent again, first, on the next one:
 * each carries its client-made id, so the engine stores it once (a resend answers duplicate: true).
 */
import type { ConnectionLimits, PublishEvent, PublishResult, PublishReceipt } from '../protocol/index.js';
import { EnSyncError } from './errors.js';
import { Fifo } from './fifo.js';
import type { Session } from './session.js';

/** What a durable publish resolves with: the protocol's receipt, as the server sent it. */
export type { PublishReceipt } from '../protocol/index.js';

/** Events waiting (not yet sent) at most, as a multiple of publishWindow. */
export const WAITING_EVENTS_PER_WINDOW = 10;

type EntryState = 'signing' | 'waiting' | 'sent' | 'done';

interface Entry {
  seq: number;
  event: PublishEvent;
  /** An upper bound of the event's encoded size, for packing frames under maxFrameBytes. */
  estimate: number;
  state: EntryState;
  resolve(receipt: PublishReceipt): void;
  reject(error: EnSyncError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Upper bound of a publish frame's bytes besides its events (map header, `t`, `id`, array header). */
const FRAME_OVERHEAD = 64;

export class PublishPipeline {
  private session: Session | null = null;
  private readonly queue = new Fifo<Entry>();
  /** Entries in `queue` still to send (the queue may also hold timed-out ones until they are passed). */
  private waiting = 0;
  private readonly inFlight = new Set<Entry[]>();
  private inFlightCount = 0;
  private seq = 0;
  private pumpScheduled = false;
  private closedWith: EnSyncError | null = null;

  constructor(
    private limits: ConnectionLimits,
    private readonly timeoutMs: number,
  ) {}

  /** Events waiting to be sent and events awaiting their result. */
  get pendingCount(): number {
    return this.waiting + this.inFlightCount;
  }

  /**
   * Queue an event (its `id` already set). With `signature`, the event waits for it before it is
   * sent; events behind it wait too, so events go out in publish order.
   */
  publish(event: PublishEvent, signature: Promise<Uint8Array> | null): Promise<PublishReceipt> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    const bound = WAITING_EVENTS_PER_WINDOW * this.limits.publishWindow;
    if (this.waiting >= bound) {
      return Promise.reject(new EnSyncError('OVERLOADED', `${this.waiting} events are waiting to be published (at most ${bound}): wait for some to be confirmed`, { retryable: true }));
    }
    return new Promise<PublishReceipt>((resolve, reject) => {
      const entry: Entry = {
        seq: this.seq++,
        event,
        estimate: estimateBytes(event),
        state: signature === null ? 'waiting' : 'signing',
        resolve,
        reject,
        timer: setTimeout(() => this.expire(entry), this.timeoutMs),
      };
      this.queue.push(entry);
      this.waiting++;
      signature?.then(
        (bytes) => {
          if (entry.state !== 'signing') return;
          entry.event.signature = bytes;
          entry.state = 'waiting';
          this.schedulePump();
        },
        (error: unknown) => {
          if (entry.state !== 'signing') return;
          this.waiting--;
          this.finish(entry, new EnSyncError('INTERNAL', `signing the event failed: ${error instanceof Error ? error.message : String(error)}`));
        },
      );
      this.schedulePump();
    });
  }

  /** A session is ready: send what waits, unconfirmed events of the previous session first. */
  attach(session: Session): void {
    this.session = session;
    this.limits = session.welcome.limits;
    this.schedulePump();
  }

  /** The session dropped: what it did not confirm goes back to the front of the queue, in order. */
  detach(session: Session): void {
    if (this.session !== session) return;
    this.session = null;
    const unconfirmed: Entry[] = [];
    for (const batch of this.inFlight) {
      for (const entry of batch) {
        if (entry.state !== 'sent') continue;
        entry.state = 'waiting';
        unconfirmed.push(entry);
      }
    }
    this.inFlight.clear();
    this.inFlightCount = 0;
    unconfirmed.sort((a, b) => a.seq - b.seq);
    this.queue.prepend(unconfirmed);
    this.waiting += unconfirmed.length;
  }

  /** Fail everything still pending with `error`; later publishes fail with it too. */
  close(error: EnSyncError): void {
    if (this.closedWith !== null) return;
    this.closedWith = error;
    this.session = null;
    for (const entry of this.queue.drain()) this.finish(entry, error);
    for (const batch of this.inFlight) for (const entry of batch) this.finish(entry, error);
    this.inFlight.clear();
    this.inFlightCount = 0;
    this.waiting = 0;
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // A microtask: every publish of the current tick is queued by then and goes in the same frame.
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const session = this.session;
    if (session === null || !session.isOpen) return;
    const { publishWindow, maxEventsPerPublish, maxFrameBytes } = session.welcome.limits;
    while (this.inFlightCount < publishWindow) {
      const batch: Entry[] = [];
      let bytes = FRAME_OVERHEAD;
      while (batch.length < maxEventsPerPublish && this.inFlightCount + batch.length < publishWindow) {
        const head = this.queue.peek();
        if (head === undefined || head.state === 'signing') break;
        if (head.state === 'done') {
          this.queue.shift();
          continue;
        }
        if (batch.length > 0 && bytes + head.estimate > maxFrameBytes) break;
        this.queue.shift();
        this.waiting--;
        batch.push(head);
        bytes += head.estimate;
      }
      if (batch.length === 0) break;
      this.send(session, batch);
    }
  }

  private send(session: Session, batch: Entry[]): void {
    let prepared;
    try {
      prepared = session.prepare({ t: 'publish', events: batch.map((entry) => entry.event) });
    } catch (error) {
      const failure = error instanceof EnSyncError ? error : new EnSyncError('INTERNAL', String(error));
      if (failure.code === 'FRAME_TOO_LARGE' && batch.length > 1) {
        // Estimates are upper bounds, so this is unexpected; halving still gets every event out.
        const half = Math.ceil(batch.length / 2);
        this.send(session, batch.slice(0, half));
        this.send(session, batch.slice(half));
        return;
      }
      for (const entry of batch) this.finish(entry, failure);
      return;
    }
    for (const entry of batch) if (entry.state === 'waiting') entry.state = 'sent';
    this.inFlight.add(batch);
    this.inFlightCount += batch.length;
    session.dispatch(prepared, null).then(
      (reply) => {
        if (!this.inFlight.delete(batch)) return;
        this.inFlightCount -= batch.length;
        batch.forEach((entry, i) => this.finish(entry, outcomeOf(reply.results[i])));
        this.schedulePump();
      },
      (error: unknown) => {
        // Not in flight any more: the session dropped and the batch was queued again (detach).
        if (!this.inFlight.delete(batch)) return;
        this.inFlightCount -= batch.length;
        const failure = error instanceof EnSyncError ? error : new EnSyncError('INTERNAL', String(error));
        for (const entry of batch) this.finish(entry, failure);
        this.schedulePump();
      },
    );
  }

  private expire(entry: Entry): void {
    if (entry.state === 'done') return;
    if (entry.state === 'waiting' || entry.state === 'signing') {
      this.waiting--;
      // Timed-out entries stay in the queue until passed; drop them when they are the majority.
      if (this.queue.size > 1024 && this.queue.size > 2 * this.waiting) this.queue.retain((e) => e !== entry && e.state !== 'done');
    }
    const sent = entry.state === 'sent';
    this.finish(
      entry,
      new EnSyncError('TIMEOUT', sent ? `no result for event ${entry.event.id} within ${this.timeoutMs} ms; it may or may not be stored (publish it again with the same id to be sure)` : `event ${entry.event.id} could not be sent within ${this.timeoutMs} ms`),
    );
  }

  private finish(entry: Entry, outcome: PublishReceipt | EnSyncError): void {
    if (entry.state === 'done') return;
    entry.state = 'done';
    clearTimeout(entry.timer);
    if (outcome instanceof EnSyncError) entry.reject(outcome);
    else entry.resolve(outcome);
  }
}

function outcomeOf(result: PublishResult | undefined): PublishReceipt | EnSyncError {
  if (result === undefined) return new EnSyncError('PROTOCOL_ERROR', 'the server answered a publish with fewer results than events');
  if ('error' in result) return EnSyncError.fromBody(result.error);
  return { id: result.id, type: result.type, offset: result.offset, shard: result.shard, duplicate: result.duplicate };
}

/** An upper bound of the msgpack size of one event: UTF-16 length × 3 bounds UTF-8, plus headers of every field. */
function estimateBytes(event: PublishEvent): number {
  let bytes = 160 + event.payload.byteLength + 3 * (event.type.length + (event.id?.length ?? 0) + (event.key?.length ?? 0));
  if (event.headers !== undefined) {
    for (const name of Object.keys(event.headers)) bytes += 10 + 3 * (name.length + event.headers[name]!.length);
  }
  if (event.recipients !== undefined) for (const recipient of event.recipients) bytes += 5 + 3 * recipient.length;
  if (event.signature !== undefined) bytes += 4 + event.signature.byteLength;
  else bytes += 68; // a signature may still be added
  return bytes;
}
