import type { FastifyInstance } from 'fastify';
import { call, clientRoute } from './route.ts';
import { id, identity, idList, object, presence, seq } from './schemas.ts';
import { presenceFor, visibleIds } from './visible-presence.ts';

const byUser = object({ userId: id }, ['userId']);

/** Who you are, the directory as you may see it (visibility rules and secrecy applied), and presence. */
export default async function peopleRoutes(app: FastifyInstance): Promise<void> {
  clientRoute(app, { method: 'GET', url: '/v1/me', tag: 'me', summary: 'Who this token belongs to', response: identity }, (_req, _reply, me) => me);

  clientRoute(
    app,
    { method: 'GET', url: '/v1/org/snapshot', tag: 'org', summary: 'The whole directory as you may see it, with its version', description: 'Then follow it with /v1/org/changes.' },
    (_req, _reply, me) => call(app, 'org.client.snapshot', { viewer: me.userId }),
  );

  clientRoute(
    app,
    {
      method: 'GET',
      url: '/v1/org/changes',
      tag: 'org',
      summary: 'What changed in the directory since a version (or `reset: true`: download the snapshot again)',
      querystring: object({ since: seq }, ['since']),
    },
    (req, _reply, me) => call(app, 'org.client.changes', { viewer: me.userId, since: (req.query as { since: number }).since }),
  );

  clientRoute(
    app,
    { method: 'GET', url: '/v1/org/users/:userId', tag: 'org', summary: 'One person, if you may see them', params: byUser },
    (req, _reply, me) => call(app, 'org.client.user', { viewer: me.userId, userId: (req.params as { userId: number }).userId }),
  );

  clientRoute(
    app,
    {
      method: 'GET',
      url: '/v1/org/users/:userId/avatar',
      tag: 'org',
      summary: "A person's avatar image",
      params: byUser,
      produces: ['image/png', 'image/jpeg', 'image/gif', 'application/octet-stream'],
      response: { type: 'string', format: 'binary' },
    },
    async (req, reply, me) => {
      const a = await call<{ avatar: string; contentType: string; data: string }>(app, 'org.client.avatar', { viewer: me.userId, userId: (req.params as { userId: number }).userId });
      reply.header('content-type', a.contentType).header('cache-control', 'private, max-age=300').header('etag', `"${a.avatar}"`).header('x-content-type-options', 'nosniff');
      return Buffer.from(a.data, 'base64');
    },
  );

  clientRoute(
    app,
    {
      method: 'GET',
      url: '/v1/presence',
      tag: 'presence',
      summary: 'Online, away or offline, per device, of the people named',
      description:
        'To be told of changes, send `{ "type": "watch", "userIds": [...] }` on the WebSocket. People you may not see in the directory ' +
        'are answered like ids of nobody: offline, no devices. Another IM system beside Qiao (e.g. RTX) shows as a device ' +
        '`{ "deviceType": "external", "deviceId": "<source>", "source": "<source>" }`.',
      querystring: object({ userIds: idList(1000) }, ['userIds']),
      response: object({ users: { type: 'array', items: presence } }),
    },
    async (req, _reply, me) => {
      const userIds = (req.query as { userIds: string }).userIds.split(',').map(Number);
      return { users: await presenceFor(app.broker, userIds, await visibleIds(app.broker, me.userId, userIds)) };
    },
  );
}
