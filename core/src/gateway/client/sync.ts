import type { FastifyInstance } from 'fastify';
import { call, clientRoute } from './route.ts';
import { broadcast, object, seq, syncPage } from './schemas.ts';

/** The per-user inbox every device reads, and broadcasts by people the admin lets send them. */
export default async function syncRoutes(app: FastifyInstance): Promise<void> {
  clientRoute(
    app,
    {
      method: 'GET',
      url: '/v1/sync',
      tag: 'sync',
      summary: 'Everything you have to receive after `since`, in order, paged',
      description:
        'Your inbox: messages, recalls, read receipts, membership changes, broadcasts and org changes about you, numbered 1, 2, 3… ' +
        'with no holes. Keep the `last` of each page and ask again while `hasMore`; after a reconnect ask from the last one you kept. ' +
        'WebSocket pushes only say that this grew.',
      querystring: object({ since: seq, limit: { type: 'integer', minimum: 1, maximum: 1000 } }, ['since']),
      response: syncPage,
    },
    (req, _reply, me) => call(app, 'im.sync', { ...(req.query as object), userId: me.userId }),
  );

  clientRoute(
    app,
    { method: 'GET', url: '/v1/sync/head', tag: 'sync', summary: 'The newest sequence number of your inbox', response: object({ head: seq }) },
    (_req, _reply, me) => call(app, 'im.sync.head', { userId: me.userId }),
  );

  clientRoute(
    app,
    {
      method: 'POST',
      url: '/v1/broadcasts',
      tag: 'broadcasts',
      summary: 'Send a broadcast as yourself (only people the admin gave broadcast permission)',
      description: 'To everyone, departments (with sub-departments) and/or people, optionally only those online now; offline people get it on their next sync.',
      body: broadcast,
    },
    (req, _reply, me) => call(app, 'im.broadcasts.sendAsUser', { ...(req.body as object), senderId: me.userId }),
  );
}
