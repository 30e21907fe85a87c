/**
 * The management interface's routes over the engine: clients (with their session status),
 * streams, events by id with their trail, and the actions operators take (add or remove a client;
 * pause, resume, replay a subscription's dead letters; change retention; change compaction settings,
 * run a compaction round). Each action is logged
 * with who took it.
 */
import type { Engine } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import type { Logger } from '../observability/logger.js';
import type { ClientStore } from '../registry/client-store.js';
import { validateClientRecord } from '../registry/client-record.js';
import { AdminRequestError, type AdminRequest, type AdminResponse, type AdminRoute } from './admin-server.js';
import type { ClientDirectory } from './client-directory.js';
import type { ClientSessions } from './client-sessions.js';

export interface AdminContext {
  engine: Engine;
  store: ClientStore;
  clients: ClientDirectory;
  sessions: ClientSessions;
  logger: Logger;
}

const ok = (body: unknown, status = 200): AdminResponse => ({ status, body });

/** Engine errors as HTTP answers: the caller's mistakes are 4xx with the engine's code. */
function httpError(error: unknown): never {
  if (error instanceof EngineError) {
    const status = { NOT_FOUND: 404, FORBIDDEN: 403, INVALID_ARGUMENT: 400, INVALID_EVENT: 400, OVERLOADED: 503, SHARD_UNAVAILABLE: 503, ENGINE_CLOSED: 503 }[error.code as string];
    if (status !== undefined) throw new AdminRequestError(status, error.code, error.message);
  }
  throw error;
}

function guarded(handle: (request: AdminRequest) => AdminResponse | Promise<AdminResponse>): AdminRoute['handle'] {
  return async (request) => {
    try {
      return await handle(request);
    } catch (error) {
      return httpError(error);
    }
  };
}

export function adminRoutes(context: AdminContext): AdminRoute[] {
  const { engine, store, clients, sessions, logger } = context;
  const action = (request: AdminRequest, what: string, fields: Record<string, unknown>) => logger.info(`admin action: ${what}`, { actor: request.actor, ...fields });
  const subscriptionAction = (verb: 'pause' | 'resume' | 'replay-dead-letters'): AdminRoute => ({
    method: 'POST',
    path: `/admin/subscriptions/:client/:name/${verb}`,
    handle: guarded(async (request) => {
      const { client, name } = request.params as { client: string; name: string };
      let replayed: number | undefined;
      if (verb === 'pause') await engine.pause(client, name);
      else if (verb === 'resume') await engine.resume(client, name);
      else replayed = await engine.replayDeadLetters(client, name, 'all');
      action(request, `${verb} subscription`, { subscription: `${client}/${name}`, ...(replayed === undefined ? {} : { replayed }) });
      return ok({ subscription: `${client}/${name}`, done: verb, ...(replayed === undefined ? {} : { replayed }) });
    }),
  });
  return [
    {
      method: 'GET',
      path: '/admin/clients',
      handle: () => {
        const now = Date.now();
        return ok(
          store.list().map((record) => {
            const session = sessions.get(record.id, now);
            const activity = engine.activity.view(record.id, now);
            return {
              id: record.id,
              publish: record.publish,
              subscribe: record.subscribe,
              requireSignatures: record.requireSignatures,
              addedAt: record.addedAt,
              status: session?.status ?? 'disconnected',
              connections: session?.connections ?? 0,
              lastSeenAt: session?.lastSeenAt ?? null,
              disconnectedAt: session?.disconnectedAt ?? null,
              ...activity,
            };
          }),
        );
      },
    },
    {
      method: 'POST',
      path: '/admin/clients',
      handle: guarded((request) => {
        const input = request.body as Record<string, unknown> | undefined;
        if (typeof input !== 'object' || input === null) throw new AdminRequestError(400, 'BAD_REQUEST', 'the body must be a client: { id, publicKey, publish, subscribe, requireSignatures }');
        const record = validateClientRecord({ publish: [], subscribe: [], requireSignatures: false, ...input, addedAt: Date.now() });
        const stored = store.add(record);
        clients.reload();
        action(request, 'add client', { client: record.id });
        return ok(stored, 201);
      }),
    },
    {
      method: 'DELETE',
      path: '/admin/clients/:id',
      handle: guarded((request) => {
        store.remove(request.params.id!);
        clients.reload();
        action(request, 'remove client', { client: request.params.id });
        return ok({ removed: request.params.id });
      }),
    },
    {
      method: 'GET',
      path: '/admin/streams',
      handle: guarded(async () => ok(await engine.shardStats())),
    },
    {
      method: 'GET',
      path: '/admin/events/:id',
      handle: guarded(async (request) => {
        const type = request.query.get('type');
        if (!type) throw new AdminRequestError(400, 'BAD_REQUEST', 'give the event type: /admin/events/<id>?type=<type> (ids are unique per type)');
        const found = await engine.eventTrail(type, request.params.id!);
        const { payload, signature, ...event } = found.event;
        return ok({
          shard: found.shard,
          offset: found.offset,
          event: { ...event, payloadBase64: Buffer.from(payload).toString('base64'), signature: signature ? Buffer.from(signature).toString('base64') : null },
          trail: found.trail,
        });
      }),
    },
    {
      method: 'GET',
      path: '/admin/retention',
      handle: () => ok(engine.retention),
    },
    {
      method: 'PUT',
      path: '/admin/retention',
      handle: guarded(async (request) => {
        const deleted = await engine.setRetention(request.body);
        action(request, 'change retention', { ...engine.retention, ...deleted });
        return ok({ ...engine.retention, ...deleted });
      }),
    },
    {
      method: 'GET',
      path: '/admin/compaction',
      handle: () => ok({ settings: engine.compactionSettings, running: engine.compaction.running, totals: engine.compaction.totals, recent: engine.compaction.recent }),
    },
    {
      method: 'PUT',
      path: '/admin/compaction',
      handle: guarded((request) => {
        const settings = engine.setCompactionSettings(request.body);
        action(request, 'change compaction settings', { settings });
        return ok({ settings });
      }),
    },
    {
      method: 'POST',
      path: '/admin/compaction/run',
      handle: guarded(async (request) => {
        action(request, 'run compaction', {});
        const reports = await engine.compactNow(true);
        return ok({ compactions: reports, bytesReclaimed: reports.reduce((sum, r) => sum + r.bytesBefore - r.bytesAfter, 0) });
      }),
    },
    subscriptionAction('pause'),
    subscriptionAction('resume'),
    subscriptionAction('replay-dead-letters'),
  ];
}
