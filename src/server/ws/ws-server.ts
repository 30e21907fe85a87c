import crypto from 'node:crypto';
import fs from 'node:fs';
import type { us_listen_socket, WebSocket } from 'uWebSockets.js';
import type { Engine } from '../../engine/engine.js';
import type { Logger } from '../../observability/logger.js';
import { CLOSE_CODES, WEBSOCKET_PATH } from '../../protocol/index.js';
import type { ClientDirectory } from '../client-directory.js';
import { ClientSessions } from '../client-sessions.js';
import { AuthThrottle } from './client-auth.js';
import { Connection } from './connection.js';
import type { WsLimits } from './ws-limits.js';
import { loadUws, type UwsBackend } from './uws-backend.js';

export interface WsServerOptions {
  host: string;
  /** 0 picks a free port (see `port` once started). */
  port: number;
  tls?: { certFile: string; keyFile: string };
  limits: WsLimits;
  engine: Engine;
  clients: ClientDirectory;
  logger: Logger | null;
}

export const DEFAULT_WS_LIMITS: Readonly<WsLimits> = Object.freeze({
  maxFrameBytes: 2 * 1024 * 1024,
  maxPayloadBytes: 1024 * 1024,
  maxEventsPerPublish: 1000,
  maxSubscriptionsPerConnection: 64,
  publishWindow: 1000,
  maxBufferedBytes: 1024 * 1024,
  maxQueuedBytes: 64 * 1024 * 1024,
  authTimeoutMs: 5000,
  heartbeatMs: 30_000,
  maxConnectionsPerClient: 100,
});

/** How far past maxFrameBytes a frame still gets an error frame rather than a closed socket. */
const OVERSIZE_ANSWERED_BYTES = 1024 * 1024;

interface SocketData {
  connection: Connection | null;
  remoteAddress: string;
  /** False once the socket closed: uWS must not be called on a closed socket. */
  open: boolean;
}

/**
 * The client-facing WebSocket endpoint (`/ws`) on uWebSockets.js: binary msgpack frames, one
 * Connection per socket. A layer over the engine's API: it holds no delivery state of its own.
 */
export class WsServer {
  private listenSocket: us_listen_socket | null = null;
  private readonly connections = new Set<Connection>();

  private constructor(
    readonly backend: UwsBackend,
    /** Every client's status (active, idle, disconnected), for the management interface. */
    readonly sessions: ClientSessions,
    readonly port: number,
    readonly tls: boolean,
  ) {}

  static async start(options: WsServerOptions): Promise<WsServer> {
    const backend = loadUws();
    const { uws } = backend;
    const app = options.tls
      ? uws.SSLApp({ cert_file_name: readable(options.tls.certFile), key_file_name: readable(options.tls.keyFile) })
      : uws.App();
    const sessions = new ClientSessions();
    const context = {
      engine: options.engine,
      sessions,
      clients: options.clients,
      throttle: new AuthThrottle(),
      limits: options.limits,
      serverId: crypto.randomUUID(),
      logger: options.logger,
    };
    let server: WsServer | null = null;
    app.ws<SocketData>(WEBSOCKET_PATH, {
      // Frames a little over maxFrameBytes reach the codec, which answers FRAME_TOO_LARGE and keeps
      // the connection; past this uWS closes the socket itself (1009) without buffering more.
      maxPayloadLength: options.limits.maxFrameBytes + OVERSIZE_ANSWERED_BYTES,
      // uWS closes a socket whose buffer passes this; our own bound (maxBufferedBytes) comes first.
      maxBackpressure: options.limits.maxQueuedBytes,
      closeOnBackpressureLimit: 0,
      idleTimeout: Math.max(8, Math.ceil((2 * options.limits.heartbeatMs) / 1000)),
      sendPingsAutomatically: true,
      upgrade: (res, req, socketContext) => {
        const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
        res.upgrade<SocketData>(
          { connection: null, remoteAddress, open: true },
          req.getHeader('sec-websocket-key'),
          req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'),
          socketContext,
        );
      },
      open: (ws: WebSocket<SocketData>) => {
        const data = ws.getUserData();
        const connection = new Connection(
          {
            send: (frame) => data.open && ws.send(frame, true) !== 2,
            bufferedAmount: () => (data.open ? ws.getBufferedAmount() : 0),
            close: (code, reason) => {
              if (!data.open) return;
              data.open = false;
              ws.end(code, reason);
            },
            remoteAddress: data.remoteAddress,
          },
          context,
        );
        data.connection = connection;
        server?.connections.add(connection);
      },
      message: (ws, message, isBinary) => {
        // uWS reuses `message` after this callback returns: decode from a copy.
        ws.getUserData().connection?.onMessage(new Uint8Array(message.slice(0)), isBinary);
      },
      drain: (ws) => ws.getUserData().connection?.onDrain(),
      close: (ws) => {
        const data = ws.getUserData();
        data.open = false;
        if (data.connection) {
          data.connection.onClose();
          server?.connections.delete(data.connection);
        }
      },
    });
    app.any('/*', (res) => {
      res.writeStatus('404 Not Found').end(`EnSync: WebSocket clients connect to ${WEBSOCKET_PATH}`);
    });
    const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
      app.listen(options.host, options.port, (socket) => (socket ? resolve(socket) : reject(new Error(`cannot listen on ${options.host}:${options.port}`))));
    });
    server = new WsServer(backend, sessions, uws.us_socket_local_port(listenSocket as never), options.tls !== undefined);
    server.listenSocket = listenSocket;
    return server;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stop accepting, then close every connection with going-away. */
  close(): void {
    if (this.listenSocket) {
      this.backend.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
    for (const connection of [...this.connections]) connection.close(CLOSE_CODES.GOING_AWAY, 'server shutting down');
    this.connections.clear();
  }
}

/** uWS takes file names and fails without saying why: check them first. */
function readable(file: string): string {
  fs.accessSync(file, fs.constants.R_OK);
  return file;
}
