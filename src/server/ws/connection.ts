import type { Engine } from '../../engine/engine.js';
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
  type ErrorBody,
  type ServerFrame,
} from '../../protocol/index.js';
import type { ClientDirectory, KnownClient } from '../client-directory.js';
import type { ClientSessions } from '../client-sessions.js';
import { newChallenge, verifyChallenge, type AuthThrottle, type Challenge } from './client-auth.js';
import { ClientRequests, errorBody } from './client-requests.js';
import type { WsLimits } from './ws-limits.js';


/** What a connection needs of its socket (uWebSockets.js, or a test double). */
export interface SocketPort {
  /** false when the frame was dropped (the socket is closing). */
  send(frame: Uint8Array): boolean;
  bufferedAmount(): number;
  close(code: number, reason: string): void;
  readonly remoteAddress: string;
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
 * One client connection: the challenge-response handshake, heartbeats, then requests served by
 * ClientRequests under the authenticated client's identity, and deliveries pushed as they come.
 * Frames wait in a bounded queue while the socket's send buffer is over its bound (backpressure);
 * a consumer's deliveries are bounded by its credits, so a client that stops reading costs bounded
 * memory, and one that lets the queue pass its bound is disconnected.
 */
export class Connection {
  private state: State = 'challenged';
  private readonly challenge: Challenge;
  private client: KnownClient | null = null;
  private requests: ClientRequests | null = null;
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
    if (frame.t === 'ping') {
      this.send({ t: 'pong', id: frame.id });
      return;
    }
    if (frame.t === 'pong') {
      if (frame.id === this.pingOut) this.pingOut = -1;
      return;
    }
    this.requests!.handle(frame).catch((error: unknown) => this.sendError(error, frame.id));
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
    this.requests?.close();
    clearTimeout(this.authTimer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.queue.length = 0;
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
    const verified = client !== undefined && (await verifyChallenge(this.challenge, client.publicKey, frame.signature));
    if (this.state !== 'verifying') return; // closed meanwhile
    if (!client || !verified) {
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
    this.requests = new ClientRequests(this.context.engine, client, this.context.limits, (reply) => this.send(reply));
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
