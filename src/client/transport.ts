/**
 * One WebSocket, whichever implementation the platform has: the browser's native WebSocket, or the
 * `ws` package in Node (loaded on first use with a dynamic import, so browser bundles never need
 * it). Both are driven through the standard WebSocket interface (binaryType, on* handlers).
 */
import { EnSyncError } from './errors.js';

/** The part of the standard WebSocket interface used here; `ws` implements it too. */
interface StandardWebSocket {
  binaryType: string;
  readonly bufferedAmount: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: { message?: unknown }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drop the connection without the closing handshake. */
  terminate?: () => void;
}
type WebSocketConstructor = new (url: string) => StandardWebSocket;

export interface TransportHandlers {
  /** A binary message (its bytes) or a text message (a string). */
  message(data: Uint8Array | string): void;
  /** The peer or the network closed the socket (never called after close() or abort()). */
  closed(code: number, reason: string): void;
}

export interface Transport {
  send(bytes: Uint8Array): void;
  readonly bufferedAmount: number;
  /** Orderly close; no `closed` callback follows. */
  close(code: number, reason: string): void;
  /** Drop at once (a peer that went silent must not hold us in a closing handshake). */
  abort(): void;
}

const NORMAL_CLOSURE = 1000;
let constructorPromise: Promise<WebSocketConstructor> | undefined;

/** Whether this runs in Node (or a runtime that presents itself as Node), where `ws` is used. */
function isNode(): boolean {
  const runtime = globalThis as { process?: { versions?: { node?: unknown } } };
  return typeof runtime.process?.versions?.node === 'string';
}

function webSocketConstructor(): Promise<WebSocketConstructor> {
  constructorPromise ??= (async () => {
    const native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (native !== undefined && !isNode()) return native;
    const ws = await import('ws');
    return ws.default as unknown as WebSocketConstructor;
  })();
  return constructorPromise;
}

/** Open a WebSocket to `url`; rejects with CONNECTION_FAILED when it does not open within `timeoutMs`. */
export async function openTransport(url: string, handlers: TransportHandlers, timeoutMs: number): Promise<Transport> {
  const Socket = await webSocketConstructor();
  return new Promise<Transport>((resolve, reject) => {
    let socket: StandardWebSocket;
    try {
      socket = new Socket(url);
    } catch (error) {
      reject(new EnSyncError('CONNECTION_FAILED', `cannot open ${url}: ${describeError(error)}`, { cause: error }));
      return;
    }
    socket.binaryType = 'arraybuffer';
    let opened = false;
    let detached = false;
    let lastError = '';
    const detach = (): void => {
      detached = true;
      socket.onopen = socket.onmessage = socket.onclose = null;
      // Keep a listener: `ws` throws an 'error' event that nobody listens to.
      socket.onerror = () => undefined;
    };
    const timer = setTimeout(() => {
      if (opened) return;
      detach();
      drop(socket);
      reject(new EnSyncError('CONNECTION_FAILED', `connecting to ${url} took over ${timeoutMs} ms`));
    }, timeoutMs);

    socket.onerror = (event) => {
      if (typeof event?.message === 'string') lastError = event.message;
    };
    socket.onopen = () => {
      opened = true;
      clearTimeout(timer);
      resolve({
        send: (bytes) => socket.send(bytes),
        get bufferedAmount() {
          return socket.bufferedAmount;
        },
        close: (code, reason) => {
          if (detached) return;
          detach();
          socket.close(code, reason);
        },
        abort: () => {
          if (detached) return;
          detach();
          drop(socket);
        },
      });
    };
    socket.onmessage = (event) => {
      if (detached) return;
      const data = event.data;
      if (data instanceof ArrayBuffer) handlers.message(new Uint8Array(data));
      else if (typeof data === 'string') handlers.message(data);
      else if (data instanceof Uint8Array) handlers.message(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      else handlers.message('');
    };
    socket.onclose = (event) => {
      if (detached) return;
      detach();
      clearTimeout(timer);
      if (!opened) {
        const why = lastError === '' ? `closed with code ${event.code}` : lastError;
        reject(new EnSyncError('CONNECTION_FAILED', `cannot connect to ${url}: ${why}`));
        return;
      }
      handlers.closed(event.code, event.reason);
    };
  });
}

function drop(socket: StandardWebSocket): void {
  try {
    if (socket.terminate) socket.terminate();
    else socket.close(NORMAL_CLOSURE, 'abandoned');
  } catch {
    // Closing a socket that never opened may throw in some implementations; it is gone either way.
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
