/**
 * Admin HTTP endpoint (node:http): a small fixed route table, JSON in every response,
 * `{error:{code,message}}` for anything that is not a matched route.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.js';

export interface AdminResponse {
  status: number;
  body: unknown;
}

export interface AdminRoute {
  method: 'GET';
  path: string;
  handle(): AdminResponse | Promise<AdminResponse>;
}

export interface AdminServerOptions {
  host: string;
  /** 0 lets the OS choose; the bound port is in `address.port`. */
  port: number;
  routes: readonly AdminRoute[];
  logger: Logger;
  /** How long close() lets requests already being received finish before cutting them off. */
  drainTimeoutMs?: number;
}

export interface AdminServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export class AdminServerError extends Error {
  override readonly name = 'AdminServerError';
  readonly code: 'ADMIN_LISTEN_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = 'ADMIN_LISTEN_FAILED';
  }
}

/** Admin requests are tiny; node:http refuses larger headers and slow requests with these bounds. */
const MAX_HEADER_BYTES = 16 * 1024;
const REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_DRAIN_TIMEOUT_MS = 2_000;

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { logger } = options;
  const server = createServer(
    { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS },
    (req, res) => {
      handleRequest(options.routes, req, res).catch((err: unknown) => {
        logger.error('admin request failed', { path: req.url, error: err instanceof Error ? err : String(err) });
        if (!res.headersSent) sendJson(res, 500, errorBody('INTERNAL', 'internal error'));
        else res.destroy();
      });
    },
  );

  await listen(server, options.host, options.port);
  const bound = server.address() as AddressInfo;

  return {
    address: { host: bound.address, port: bound.port },
    close: () => close(server, options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS),
  };
}

async function handleRequest(
  routes: readonly AdminRoute[],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const method = req.method ?? 'GET';
  const pathname = pathOf(req.url ?? '/');
  if (pathname === undefined) {
    sendJson(res, 400, errorBody('BAD_REQUEST', 'malformed request target'));
    return;
  }
  const matching = routes.filter((r) => r.path === pathname);
  if (matching.length === 0) {
    sendJson(res, 404, errorBody('NOT_FOUND', `no route for ${method} ${pathname}`));
    return;
  }
  const route = matching.find((r) => r.method === method || (method === 'HEAD' && r.method === 'GET'));
  if (route === undefined) {
    res.setHeader('Allow', [...new Set(matching.map((r) => r.method))].join(', '));
    sendJson(res, 405, errorBody('METHOD_NOT_ALLOWED', `${method} is not allowed on ${pathname}`));
    return;
  }
  const response = await route.handle();
  sendJson(res, response.status, response.body);
}

/** Accepts origin-form (`/health`) and absolute-form (`http://host/health`) request targets. */
function pathOf(target: string): string | undefined {
  try {
    return new URL(target, 'http://admin.invalid').pathname;
  } catch {
    return undefined;
  }
}

export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : payload);
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new AdminServerError(`admin server cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Stops accepting, closes idle keep-alive connections at once, lets requests that are already
 * arriving finish, and cuts off whatever is still open after `drainTimeoutMs`.
 */
function close(server: Server, drainTimeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const cutOff = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
    server.close((err) => {
      clearTimeout(cutOff);
      if (err) reject(err);
      else resolve();
    });
    server.closeIdleConnections();
  });
}
