import type { FastifyInstance } from 'fastify';
import { call, clientRoute } from './route.ts';
import { conversation, conversationId, conversationSummary, id, object } from './schemas.ts';

const byId = object({ conversationId }, ['conversationId']);
const userIds = { type: 'array', items: id, minItems: 1, maxItems: 5000 } as const;
type ById = { conversationId: string };

/** 1:1 chats and discussion groups: what a user may do with their own conversations. */
export default async function conversationRoutes(app: FastifyInstance): Promise<void> {
  const tag = 'conversations';

  clientRoute(
    app,
    { method: 'GET', url: '/v1/conversations', tag, summary: 'Your conversations, most recently active first, with unread counts', response: object({ conversations: { type: 'array', items: conversationSummary } }) },
    (_req, _reply, me) => call(app, 'im.conversations.list', { userId: me.userId }),
  );

  clientRoute(
    app,
    {
      method: 'POST',
      url: '/v1/conversations',
      tag,
      summary: 'Open a 1:1 chat (the same one every time) or create a discussion group',
      description: 'You are always a member (and the owner of a discussion group). Groups (固定群) are created by admins.',
      body: object(
        {
          type: { type: 'string', enum: ['single', 'discussion'] },
          members: { ...userIds, description: 'the other people' },
          name: { type: 'string', maxLength: 200 },
        },
        ['type', 'members'],
      ),
      response: conversation,
    },
    (req, _reply, me) => call(app, 'im.conversations.create', { ...(req.body as object), createdBy: me.userId }),
  );

  clientRoute(
    app,
    { method: 'GET', url: '/v1/conversations/:conversationId', tag, summary: 'One of your conversations, with its members', params: byId, response: conversation },
    (req, _reply, me) => call(app, 'im.conversations.get', { userId: me.userId, conversationId: (req.params as ById).conversationId }),
  );

  clientRoute(
    app,
    { method: 'PATCH', url: '/v1/conversations/:conversationId', tag, summary: 'Rename a group (if its permissions let you)', params: byId, body: object({ name: { type: 'string', minLength: 1, maxLength: 200 } }, ['name']) },
    (req, _reply, me) => call(app, 'im.conversations.rename', { userId: me.userId, conversationId: (req.params as ById).conversationId, name: (req.body as { name: string }).name }),
  );

  clientRoute(
    app,
    { method: 'POST', url: '/v1/conversations/:conversationId/members', tag, summary: 'Invite people into a group', params: byId, body: object({ userIds }, ['userIds']) },
    (req, _reply, me) => call(app, 'im.conversations.invite', { userId: me.userId, conversationId: (req.params as ById).conversationId, userIds: (req.body as { userIds: number[] }).userIds }),
  );

  clientRoute(
    app,
    { method: 'POST', url: '/v1/conversations/:conversationId/members/remove', tag, summary: 'Remove people from a group (owner and admins)', params: byId, body: object({ userIds }, ['userIds']) },
    (req, _reply, me) => call(app, 'im.conversations.remove', { userId: me.userId, conversationId: (req.params as ById).conversationId, userIds: (req.body as { userIds: number[] }).userIds }),
  );

  clientRoute(
    app,
    { method: 'POST', url: '/v1/conversations/:conversationId/leave', tag, summary: 'Leave a group', params: byId },
    (req, _reply, me) => call(app, 'im.conversations.leave', { userId: me.userId, conversationId: (req.params as ById).conversationId }),
  );

  clientRoute(
    app,
    { method: 'POST', url: '/v1/conversations/:conversationId/transfer', tag, summary: 'Hand a discussion group to another member', params: byId, body: object({ toUserId: id }, ['toUserId']) },
    (req, _reply, me) => call(app, 'im.conversations.transfer', { userId: me.userId, conversationId: (req.params as ById).conversationId, toUserId: (req.body as { toUserId: number }).toUserId }),
  );

  clientRoute(
    app,
    { method: 'POST', url: '/v1/conversations/:conversationId/dissolve', tag, summary: 'Dissolve a discussion group you own (its history stays readable)', params: byId },
    (req, _reply, me) => call(app, 'im.conversations.dissolve', { userId: me.userId, conversationId: (req.params as ById).conversationId }),
  );
}
