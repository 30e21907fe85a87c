import type { ConnectionLimits } from '../../protocol/index.js';

/** The bounds of the WebSocket front end: those the protocol announces, and the server's own. */
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
