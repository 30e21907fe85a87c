/**
 * Admin HTTP endpoint (node:http): a small fixed route table (paths may have `:params`), JSON in
 * and out unless a route answers text, `{error:{code,message}}` for anything that is not a matched
 * route. Every route but the public ones (health) needs `Authorization: Bearer <admin token>`.
 */
import crypto from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.js';

export interface AdminResponse {
  status: number;
  /** JSON body; or `text` with its content type. */
  body?: unknown;
  text?: string;
  contentType?: string;
}

/** What a handler gets: the path's `:params`, the query, and a POST/PUT body (JSON). */
export interface AdminRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  /** Who made it (for the action log): the admin token's holder. */
  actor: string;
}

export interface AdminRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** `/admin/clients/:id`: segments starting with ':' match any one segment. */
  path: string;
  /** Served without the admin token (GET /health). */
  public?: boolean;
  handle(request: AdminRequest): AdminResponse | Promise<AdminResponse>;
}

export interface AdminServerOptions {
  host: string;
  /** 0 lets the OS choose; the bound port is in `address.port`. */
  port: number;
  /** Routes served from the start; `serve` adds the rest once what they need is open. */
  routes: readonly AdminRoute[];
  /** More routes come with `serve`: until then any other path answers 503 STARTING, not 404. */
  moreRoutesComing?: boolean;
  logger: Logger;
  /** The bearer token every non-public route requires; null: only public routes are served. */
  adminToken: string | null;
  /** How long close() lets requests already being received finish before cutting them off. */
  drainTimeoutMs?: number;
}

export interface AdminServer {
  readonly address: { host: string; port: number };
  /**
   * Add routes (the engine's, once it is open). Until the first call, a request for any other path
   * is answered 503 STARTING, so the admin port can report recovery progress in /health early.
   */
  serve(routes: readonly AdminRoute[]): void;
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
/** Request bodies (actions) are small JSON documents. */
const MAX_BODY_BYTES = 64 * 1024;

/** A request the route cannot serve: answered with `status` and `{error:{code,message}}`. */
export class AdminRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { logger } = options;
  const table: RouteTable = { routes: [...options.routes], started: !options.moreRoutesComing };
  const server = createServer(
    { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS },
    (req, res) => {
      handleRequest(options, table, req, res).catch((err: unknown) => {
        if (err instanceof AdminRequestError) {
          if (!res.headersSent) sendJson(res, err.status, errorBody(err.code, err.message));
          return;
        }
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
    serve: (routes) => {
      table.routes.push(...routes);
      table.started = true;
    },
    close: () => close(server, options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS),
  };
}

interface RouteTable {
  routes: AdminRoute[];
  /** Whether `serve` was called: before, unknown paths may be routes still to come. */
  started: boolean;
}

async function handleRequest(options: AdminServerOptions, table: RouteTable, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const url = urlOf(req.url ?? '/');
  if (url === undefined) {
    sendJson(res, 400, errorBody('BAD_REQUEST', 'malformed request target'));
    return;
  }
  const pathname = url.pathname;
  const matching = table.routes.map((route) => ({ route, params: matchPath(route.path, pathname) })).filter((m) => m.params !== null);
  if (matching.length === 0 && !table.started) {
    res.setHeader('Retry-After', '1');
    sendJson(res, 503, errorBody('STARTING', 'the engine is starting (GET /health shows its progress); retry shortly'));
    return;
  }
  if (matching.length === 0) {
    sendJson(res, 404, errorBody('NOT_FOUND', `no route for ${method} ${pathname}`));
    return;
  }
  const found = matching.find((m) => m.route.method === method || (method === 'HEAD' && m.route.method === 'GET'));
  if (found === undefined) {
    res.setHeader('Allow', [...new Set(matching.map((m) => m.route.method))].join(', '));
    sendJson(res, 405, errorBody('METHOD_NOT_ALLOWED', `${method} is not allowed on ${pathname}`));
    return;
  }
  // Nothing but 401 is revealed without the token: not even whether the path exists beyond this.
  if (!found.route.public && !authorized(req, options.adminToken)) {
    res.setHeader('WWW-Authenticate', 'Bearer');
    sendJson(res, 401, errorBody('UNAUTHORIZED', 'a valid admin token is required (Authorization: Bearer <token>)'));
    return;
  }
  const body = method === 'POST' || method === 'PUT' ? await readJsonBody(req) : undefined;
  const response = await found.route.handle({ params: found.params!, query: url.searchParams, body, actor: 'admin-token' });
  if (response.text !== undefined) sendText(res, response.status, response.text, response.contentType ?? 'text/plain; charset=utf-8');
  else sendJson(res, response.status, response.body);
}

/** The path's params when `pattern` matches `pathname`, else null. */
function matchPath(pattern: string, pathname: string): Record<string, string> | null {
  const want = pattern.split('/');
  const have = pathname.split('/');
  if (want.length !== have.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i]!.startsWith(':')) {
      if (have[i] === '') return null;
      try {
        params[want[i]!.slice(1)] = decodeURIComponent(have[i]!);
      } catch {
        return null;
      }
    } else if (want[i] !== have[i]) return null;
  }
  return params;
}

/** Constant-time comparison, so the token cannot be guessed byte by byte from response times. */
function authorized(req: IncomingMessage, token: string | null): boolean {
  if (token === null) return false;
  const header = req.headers.authorization ?? '';
  const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(token).digest();
  return given.length > 0 && crypto.timingSafeEqual(a, b);
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new AdminRequestError(413, 'BODY_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new AdminRequestError(400, 'BAD_REQUEST', 'request body must be JSON');
  }
}

/** Accepts origin-form (`/health`) and absolute-form (`http://host/health`) request targets. */
function urlOf(target: string): URL | undefined {
  try {
    return new URL(target, 'http://admin.invalid');
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

function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : text);
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
