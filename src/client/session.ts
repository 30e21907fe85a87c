/**
 * One authenticated connection to the engine: the challenge-response handshake, requests matched
 * to their replies by id (replies may come in any order), answers to the server's pings, and a
 * watch on silence (nothing heard for 2 × heartbeatMs means the server or the path is gone).
 * A session never reconnects; the client replaces a lost session with a new one.
 */
import {
  CLOSE_CODES,
  PROTOCOL_VERSION,
  ProtocolError,
  authMessage,
  decodeServerFrame,
  encodeFrame,
  type ChallengeFrame,
  type DeliverFrame,
  type ServerFrame,
  type WelcomeFrame,
} from '../protocol/index.js';
import { EnSyncError } from './errors.js';
import { sign } from './keys.js';
import { REPLY_TYPE, type ReplyTo, type RequestFrame } from './request-frames.js';
import { SettlementBatcher, type Settlement } from './settlement-batcher.js';
import { openTransport, type Transport } from './transport.js';

export interface SessionOptions {
  url: string;
  clientId: string;
  secretKey: Uint8Array;
  /** Connecting and the handshake together, and each request (unless it says otherwise). */
  timeoutMs: number;
  /** Request ids: increasing across the client's sessions. */
  nextRequestId(): number;
}

export interface SessionEvents {
  deliver(session: Session, frame: DeliverFrame): void;
  /** An `error` frame that answers no request (a frame the server could not read). */
  error(session: Session, error: EnSyncError): void;
  /** Called once, when the session ends for any reason after its handshake. */
  closed(session: Session, error: EnSyncError): void;
}

interface Pending {
  expect: ServerFrame['t'];
  resolve(frame: ServerFrame): void;
  reject(error: EnSyncError): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A request encoded and ready to go: its frame size is known to be within the limit. */
export interface PreparedRequest<T extends RequestFrame['t']> {
  id: number;
  type: T;
  bytes: Uint8Array;
}

type State = 'handshake' | 'open' | 'closed';

const NORMAL_CLOSURE = 1000;

export class Session {
  private state: State = 'handshake';
  private transport: Transport | null = null;
  /** The socket being opened; the challenge may be read before this settles. */
  private opening!: Promise<Transport>;
  private welcomeFrame: WelcomeFrame | null = null;
  private readonly pending = new Map<number, Pending>();
  private lastHeardAt = Date.now();
  private watchTimer: ReturnType<typeof setInterval> | undefined;
  private handshake!: { resolve(session: Session): void; reject(error: EnSyncError): void; timer: ReturnType<typeof setTimeout> };
  readonly settlements: SettlementBatcher;

  private constructor(
    private readonly options: SessionOptions,
    private readonly events: SessionEvents,
  ) {
    this.settlements = new SettlementBatcher(
      (frame) => this.request(frame),
      () => this.state === 'open',
    );
  }

  /** Connect, authenticate and resolve once `welcome` arrived; AUTH_FAILED and others reject. */
  static open(options: SessionOptions, events: SessionEvents): Promise<Session> {
    const session = new Session(options, events);
    return new Promise<Session>((resolve, reject) => {
      const timer = setTimeout(() => session.failHandshake(new EnSyncError('CONNECTION_FAILED', `no welcome from ${options.url} within ${options.timeoutMs} ms`)), options.timeoutMs);
      session.handshake = { resolve, reject, timer };
      session.opening = openTransport(options.url, { message: (data) => session.onMessage(data), closed: (code, reason) => session.onTransportClosed(code, reason) }, options.timeoutMs);
      session.opening.then(
        (transport) => {
          if (session.state === 'closed') transport.abort();
          else session.transport = transport;
        },
        (error: unknown) => session.failHandshake(error instanceof EnSyncError ? error : new EnSyncError('CONNECTION_FAILED', String(error))),
      );
    });
  }

  get welcome(): WelcomeFrame {
    return this.welcomeFrame!;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Send a request and resolve with its reply; an `error` reply rejects with its EnSyncError. */
  request<F extends RequestFrame>(frame: F, timeoutMs: number | null = this.options.timeoutMs): Promise<ReplyTo<F['t']>> {
    try {
      return this.dispatch(this.prepare(frame), timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Encode a request; throws FRAME_TOO_LARGE (nothing sent) when it is over maxFrameBytes. */
  prepare<F extends RequestFrame>(frame: F): PreparedRequest<F['t']> {
    if (this.state !== 'open') throw this.notOpen();
    const id = this.options.nextRequestId();
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame({ ...frame, id } as never);
    } catch (error) {
      // A value msgpack frames cannot hold (caught by the codec, which names the field).
      if (!(error instanceof ProtocolError)) throw error;
      throw new EnSyncError('INVALID_ARGUMENT', error.message, error.field === undefined ? {} : { field: error.field });
    }
    const max = this.welcome.limits.maxFrameBytes;
    if (bytes.byteLength > max) {
      throw new EnSyncError('FRAME_TOO_LARGE', `a ${frame.t} frame of ${bytes.byteLength} bytes is over the server's limit of ${max} bytes`);
    }
    return { id, type: frame.t, bytes };
  }

  /** Send a prepared request. `timeoutMs` null: wait as long as the session lives. */
  dispatch<T extends RequestFrame['t']>(prepared: PreparedRequest<T>, timeoutMs: number | null = this.options.timeoutMs): Promise<ReplyTo<T>> {
    if (this.state !== 'open') return Promise.reject(this.notOpen());
    return new Promise<ReplyTo<T>>((resolve, reject) => {
      const pending: Pending = { expect: REPLY_TYPE[prepared.type], resolve: resolve as (frame: ServerFrame) => void, reject, timer: undefined };
      if (timeoutMs !== null) {
        pending.timer = setTimeout(() => {
          this.pending.delete(prepared.id);
          reject(new EnSyncError('TIMEOUT', `no reply to ${prepared.type} within ${timeoutMs} ms; its outcome is unknown`));
        }, timeoutMs);
      }
      this.pending.set(prepared.id, pending);
      this.transport!.send(prepared.bytes);
    });
  }

  /** Settle a delivery that came on this session (batched with others of the same tick). */
  settle(settlement: Settlement): Promise<void> {
    // Acks for deliveries of a dropped connection are dropped: the server redelivers those events.
    if (this.state !== 'open') return Promise.resolve();
    return this.settlements.add(settlement);
  }

  /** End the session from this side; pending requests fail with `error`. */
  close(error: EnSyncError): void {
    if (this.state === 'closed') return;
    this.transport?.close(NORMAL_CLOSURE, 'client closing');
    this.fail(error);
  }

  private onMessage(data: Uint8Array | string): void {
    if (this.state === 'closed') return;
    this.lastHeardAt = Date.now();
    let frame: ServerFrame;
    try {
      if (typeof data === 'string') throw new ProtocolError('PROTOCOL_ERROR', 'the server sent a text message; frames are binary');
      frame = decodeServerFrame(data);
    } catch (error) {
      // A server we cannot understand: close with protocol error (docs/protocol.md section 8).
      const message = error instanceof Error ? error.message : String(error);
      this.transport?.close(CLOSE_CODES.PROTOCOL_ERROR, 'undecodable frame');
      this.fail(new EnSyncError('PROTOCOL_ERROR', `cannot decode a server frame: ${message}`, { retryable: true }));
      return;
    }
    if (this.state === 'handshake') {
      this.onHandshakeFrame(frame);
      return;
    }
    switch (frame.t) {
      case 'deliver':
        this.events.deliver(this, frame);
        return;
      case 'ping':
        this.sendRaw({ t: 'pong', id: frame.id });
        return;
      case 'error':
        if (frame.id === undefined) this.events.error(this, EnSyncError.fromBody(frame));
        else this.settleReply(frame.id, frame);
        return;
      case 'challenge':
      case 'welcome':
        return;
      default:
        this.settleReply(frame.id, frame);
    }
  }

  private settleReply(id: number, frame: ServerFrame): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return; // timed out already
    this.pending.delete(id);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    if (frame.t === 'error') pending.reject(EnSyncError.fromBody(frame));
    else if (frame.t !== pending.expect) pending.reject(new EnSyncError('PROTOCOL_ERROR', `expected a ${pending.expect} reply to request ${id}, got ${frame.t}`));
    else pending.resolve(frame);
  }

  private onHandshakeFrame(frame: ServerFrame): void {
    if (frame.t === 'challenge') {
      this.answer(frame).catch((error: unknown) => {
        this.failHandshake(error instanceof EnSyncError ? error : new EnSyncError('CONNECTION_FAILED', `cannot answer the challenge: ${error instanceof Error ? error.message : String(error)}`));
      });
    } else if (frame.t === 'welcome') {
      this.welcomeFrame = frame;
      this.state = 'open';
      clearTimeout(this.handshake.timer);
      this.startWatch(frame.heartbeatMs);
      this.handshake.resolve(this);
    } else if (frame.t === 'error') {
      this.transport?.abort();
      this.failHandshake(EnSyncError.fromBody(frame));
    }
  }

  private async answer(challenge: ChallengeFrame): Promise<void> {
    if (!challenge.versions.includes(PROTOCOL_VERSION)) {
      this.transport?.close(CLOSE_CODES.PROTOCOL_ERROR, 'no common protocol version');
      this.failHandshake(new EnSyncError('UNSUPPORTED_VERSION', `the server speaks protocol versions ${challenge.versions.join(', ')}; this client speaks ${PROTOCOL_VERSION}`));
      return;
    }
    const [signature, transport] = await Promise.all([sign(authMessage(challenge.serverId, challenge.connectionId, challenge.nonce), this.options.secretKey), this.opening]);
    if (this.state !== 'handshake') return;
    transport.send(encodeFrame({ t: 'hello', id: this.options.nextRequestId(), version: PROTOCOL_VERSION, clientId: this.options.clientId, signature }));
  }

  private sendRaw(frame: Parameters<typeof encodeFrame>[0]): void {
    this.transport?.send(encodeFrame(frame));
  }

  /**
   * Nothing heard for twice the heartbeat: the connection is dead even if no close arrived. After
   * one quiet heartbeat the client pings (allowed at any time), so an idle but healthy connection
   * always has something to hear, whether or not the server pings on its own.
   */
  private startWatch(heartbeatMs: number): void {
    if (heartbeatMs <= 0) return;
    const silenceMs = 2 * heartbeatMs;
    let pingedAt = 0;
    this.watchTimer = setInterval(() => {
      const now = Date.now();
      const quietMs = now - this.lastHeardAt;
      if (quietMs > silenceMs) {
        this.transport?.abort();
        this.fail(new EnSyncError('CONNECTION_LOST', `nothing heard from the server for ${quietMs} ms (limit ${silenceMs} ms)`));
      } else if (quietMs >= heartbeatMs && pingedAt <= this.lastHeardAt) {
        pingedAt = now;
        // Its pong needs no pending entry: hearing anything at all is what counts.
        this.sendRaw({ t: 'ping', id: this.options.nextRequestId() });
      }
    }, Math.max(20, Math.floor(heartbeatMs / 4)));
  }

  private onTransportClosed(code: number, reason: string): void {
    const why = `the connection closed (code ${code}${reason === '' ? '' : `: ${reason}`})`;
    this.fail(new EnSyncError(this.state === 'handshake' ? 'CONNECTION_FAILED' : 'CONNECTION_LOST', why));
  }

  private fail(error: EnSyncError): void {
    if (this.state === 'handshake') this.failHandshake(error);
    else this.end(error);
  }

  private failHandshake(error: EnSyncError): void {
    if (this.state !== 'handshake') return;
    this.state = 'closed';
    clearTimeout(this.handshake.timer);
    this.transport?.abort();
    this.handshake.reject(error);
  }

  private end(error: EnSyncError): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    if (this.watchTimer !== undefined) clearInterval(this.watchTimer);
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(error);
    }
    if (wasOpen) this.events.closed(this, error);
  }

  private notOpen(): EnSyncError {
    return new EnSyncError('CONNECTION_LOST', 'the connection is not open');
  }
}
