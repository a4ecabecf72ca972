import { randomBytes } from 'node:crypto';
import type { Context } from 'moleculer';
import { ORG_WRITE, type CgiRequest, type CgiRoute } from './cgi.ts';
import { userByAccount, type OrgUser } from './cgi-org.ts';
import { rows, run } from './app-store.ts';
import { cgiError, fromQiaoError } from './errcodes.ts';
import { reqString, stringArray } from './params.ts';

/**
 * Groups (docs/api/c01_00015.md) over the im service's fixed groups, and multi-person sessions
 * (c01_00008.md, c01_00009.md) over its discussion groups. Youdu creates a group with a name only and
 * adds members later, while im needs members to create one: such a group waits in `openapi_groups` and
 * becomes an im group with its first members.
 */

interface Conversation {
  id: string;
  type: string;
  name: string | null;
  createdBy?: number | null;
  members: Array<{ userId: number; role: string }>;
  version?: number;
  dissolvedAt?: string | null;
}

interface GroupRef {
  groupId: string;
  conversationId: string | null;
  name: string;
}

const groupName = (req: CgiRequest) => {
  const name = reqString(req.params, 'name', 'ERRCODE_MISS_GROUPNAME', 'ERRCODE_INVALID_FORMAT_GROUPNAME', 10_000);
  if ([...name].length > 32) throw cgiError('ERRCODE_OVERLIMIT_GROUPNAME', 'name is longer than 32 characters');
  if (!name.trim()) throw cgiError('ERRCODE_MISS_GROUPNAME', 'name is blank');
  return name;
};

async function conversation(ctx: Context, id: string): Promise<Conversation | null> {
  try {
    return await ctx.call<Conversation, object>('im.groups.get', { id });
  } catch (err) {
    if (['QIAO_CONVERSATION_NOT_FOUND', 'QIAO_NOT_FOUND', 'VALIDATION_ERROR'].includes((err as { type?: string }).type ?? '')) return null;
    throw err;
  }
}

async function resolveGroup(req: CgiRequest, field = 'id'): Promise<GroupRef> {
  const id = reqString(req.params, field, 'ERRCODE_MISS_GROUPID', 'ERRCODE_INVALID_FORMAT_GROUPID', 64);
  const [row] = await rows<{ group_id: string; conversation_id: string | null; name: string }>(req.db, 'SELECT * FROM openapi_groups WHERE group_id = ?', [id]);
  if (row) return { groupId: row.group_id, conversationId: row.conversation_id, name: row.name };
  const c = await conversation(req.ctx, id);
  if (!c || c.type !== 'group' || c.dissolvedAt) throw cgiError('ERRCODE_GROUP_NOTEXIST', `group "${id}" does not exist`);
  return { groupId: id, conversationId: id, name: c.name ?? '' };
}

async function memberIds(req: CgiRequest, accounts: string[]): Promise<number[]> {
  const ids: number[] = [];
  for (const a of accounts) {
    try {
      ids.push((await userByAccount(req.ctx, a)).id);
    } catch {
      throw cgiError('ERRCODE_INVALID_GROUP_USERID', `userList: "${a}" is not a current user`);
    }
  }
  return ids;
}

async function accountsOf(ctx: Context, userIds: number[]): Promise<OrgUser[]> {
  const out: OrgUser[] = [];
  for (const id of userIds) out.push(await ctx.call<OrgUser, object>('org.users.get', { id }));
  return out;
}

const imErr = (err: unknown) => {
  throw fromQiaoError(err, { notFound: 'ERRCODE_GROUP_NOTEXIST', invalid: 'ERRCODE_INVALID_GROUP_USERID', conflict: 'ERRCODE_GROUP_ACCESS_ERROR' });
};

export const groupRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/group/create'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const name = groupName(req);
      const id = `g:${randomBytes(10).toString('hex')}`;
      await run(req.db, 'INSERT INTO openapi_groups (group_id, conversation_id, name, created_at) VALUES (?, NULL, ?, ?)', [id, name, req.now]);
      return { id };
    },
  },
  {
    paths: ['/cgi/group/update'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const g = await resolveGroup(req);
      const name = groupName(req);
      if (g.conversationId) await req.ctx.call('im.groups.update', { id: g.conversationId, name }).catch(imErr);
      await run(req.db, 'UPDATE openapi_groups SET name = ? WHERE group_id = ?', [name, g.groupId]);
      return null;
    },
  },
  {
    paths: ['/cgi/group/delete'],
    methods: ['GET', 'POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const g = await resolveGroup(req);
      if (g.conversationId) await req.ctx.call('im.groups.dissolve', { id: g.conversationId }).catch(imErr);
      await run(req.db, 'DELETE FROM openapi_groups WHERE group_id = ?', [g.groupId]);
      return null;
    },
  },
  {
    paths: ['/cgi/group/info'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const g = await resolveGroup(req);
      const c = g.conversationId ? await conversation(req.ctx, g.conversationId) : null;
      const people = await accountsOf(req.ctx, (c?.members ?? []).map((m) => m.userId));
      return { id: g.groupId, name: c?.name ?? g.name, members: people.map((u) => ({ account: u.account, name: u.name, mobile: u.mobile ?? '' })) };
    },
  },
  {
    paths: ['/cgi/group/list'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const account = typeof req.params.userId === 'string' && req.params.userId ? req.params.userId : undefined;
      const mine = await rows<{ group_id: string; conversation_id: string | null; name: string }>(req.db, 'SELECT * FROM openapi_groups ORDER BY created_at, group_id');
      const alias = new Map(mine.filter((r) => r.conversation_id).map((r) => [r.conversation_id!, r.group_id]));
      const list: Array<{ id: string; name: string }> = [];
      if (account) {
        const user = await userByAccount(req.ctx, account);
        const r = await req.ctx.call<{ conversations: Conversation[] }, object>('im.conversations.list', { userId: user.id });
        for (const c of r.conversations) if (c.type === 'group' && !c.dissolvedAt) list.push({ id: alias.get(c.id) ?? c.id, name: c.name ?? '' });
        return { groupList: list };
      }
      for (const r of mine) if (!r.conversation_id) list.push({ id: r.group_id, name: r.name });
      for (let page = 1; ; page++) {
        const r = await req.ctx.call<{ groups?: Conversation[]; total: number }, object>('im.groups.list', { type: 'group', page, pageSize: 500 });
        const groups = r.groups ?? [];
        for (const c of groups) list.push({ id: alias.get(c.id) ?? c.id, name: c.name ?? '' });
        if (groups.length < 500) break;
      }
      return { groupList: list };
    },
  },
  {
    paths: ['/cgi/group/addmember'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const g = await resolveGroup(req);
      const ids = await memberIds(req, stringArray(req.params, 'userList', 'ERRCODE_MISS_USERLIST', 'ERRCODE_INVALID_FORMAT_USERLIST', 5000, 'ERRCODE_OVERLIMIT_USERLIST'));
      if (g.conversationId) {
        await req.ctx.call('im.groups.addMembers', { id: g.conversationId, userIds: ids }).catch(imErr);
        return null;
      }
      const c = await req.ctx.call<Conversation, object>('im.groups.create', { name: g.name, members: ids }).catch(imErr);
      await run(req.db, 'UPDATE openapi_groups SET conversation_id = ? WHERE group_id = ?', [c.id, g.groupId]);
      return null;
    },
  },
  {
    paths: ['/cgi/group/delmember'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const g = await resolveGroup(req);
      const ids = await memberIds(req, stringArray(req.params, 'userList', 'ERRCODE_MISS_USERLIST', 'ERRCODE_INVALID_FORMAT_USERLIST', 5000, 'ERRCODE_OVERLIMIT_USERLIST'));
      if (g.conversationId) await req.ctx.call('im.groups.removeMembers', { id: g.conversationId, userIds: ids }).catch(imErr);
      return null;
    },
  },
  {
    paths: ['/cgi/group/ismember'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const g = await resolveGroup(req);
      const user = await userByAccount(req.ctx, reqString(req.params, 'userId', 'ERRCODE_MISS_USERID', 'ERRCODE_INVALID_FORMAT_USERID', 64));
      const c = g.conversationId ? await conversation(req.ctx, g.conversationId) : null;
      return { belong: !!c?.members.some((m) => m.userId === user.id) };
    },
  },
];

// ---- sessions ----------------------------------------------------------------------------------------
async function sessionOut(req: CgiRequest, c: Conversation) {
  const people = await accountsOf(req.ctx, c.members.map((m) => m.userId));
  const owner = c.members.find((m) => m.role === 'owner')?.userId ?? c.createdBy ?? null;
  return {
    sessionId: c.id,
    title: c.name ?? '',
    owner: people.find((u) => u.id === owner)?.account ?? '',
    version: c.version ?? 0,
    type: 'multi',
    member: people.map((u) => u.account),
  };
}

async function session(req: CgiRequest): Promise<Conversation> {
  const id = reqString(req.params, 'sessionId', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 64);
  const c = await conversation(req.ctx, id);
  if (!c || c.type !== 'discussion' || c.dissolvedAt) throw cgiError('ERRCODE_INVALID_REQUEST', `session "${id}" does not exist`);
  return c;
}

const SESSION_APPS = ['app', 'sysMsgMonitor'] as const;

export const sessionRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/session/create'],
    methods: ['POST'],
    apps: [...SESSION_APPS],
    async handler(req) {
      const title = reqString(req.params, 'title', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 64);
      const creator = await userByAccount(req.ctx, reqString(req.params, 'creator', 'ERRCODE_MISS_USERID', 'ERRCODE_INVALID_FORMAT_USERID', 64), 'creator');
      const type = req.params.type;
      if (type !== undefined && type !== null && type !== '' && type !== 'multi') throw cgiError('ERRCODE_INVALID_REQUEST', 'type must be "multi"');
      const accounts = stringArray(req.params, 'member', 'ERRCODE_MISS_USERLIST', 'ERRCODE_INVALID_FORMAT_USERLIST', 5000, 'ERRCODE_OVERLIMIT_USERLIST');
      const ids = new Set([creator.id, ...(await memberIds(req, accounts))]);
      if (ids.size < 3) throw cgiError('ERRCODE_INVALID_REQUEST', 'a multi-person session needs at least 3 members, the creator included');
      const c = await req.ctx.call<Conversation, object>('im.conversations.create', { type: 'discussion', members: [...ids], name: title, createdBy: creator.id }).catch(imErr);
      return sessionOut(req, (await conversation(req.ctx, c.id)) ?? c);
    },
  },
  {
    paths: ['/cgi/session/get'],
    methods: ['GET', 'POST'],
    apps: [...SESSION_APPS],
    async handler(req) {
      return sessionOut(req, await session(req));
    },
  },
  {
    paths: ['/cgi/session/update'],
    methods: ['POST'],
    apps: [...SESSION_APPS],
    async handler(req) {
      const c = await session(req);
      const op = await userByAccount(req.ctx, reqString(req.params, 'opUser', 'ERRCODE_MISS_USERID', 'ERRCODE_INVALID_FORMAT_USERID', 64), 'opUser');
      const title = typeof req.params.title === 'string' && req.params.title ? req.params.title : undefined;
      const add = Array.isArray(req.params.addMember) && req.params.addMember.length ? await memberIds(req, req.params.addMember as string[]) : [];
      const del = Array.isArray(req.params.delMember) && req.params.delMember.length ? await memberIds(req, req.params.delMember as string[]) : [];
      if (title) await req.ctx.call('im.conversations.rename', { userId: op.id, conversationId: c.id, name: title }).catch(imErr);
      if (add.length) await req.ctx.call('im.conversations.invite', { userId: op.id, conversationId: c.id, userIds: add }).catch(imErr);
      if (del.length) await req.ctx.call('im.conversations.remove', { userId: op.id, conversationId: c.id, userIds: del }).catch(imErr);
      return sessionOut(req, (await conversation(req.ctx, c.id))!);
    },
  },
  {
    paths: ['/cgi/session/send'],
    methods: ['POST'],
    apps: [...SESSION_APPS],
    async handler(req) {
      const sender = await userByAccount(req.ctx, reqString(req.params, 'sender', 'ERRCODE_MISS_USERID', 'ERRCODE_INVALID_FORMAT_USERID', 64), 'sender');
      const msgType = reqString(req.params, 'msgType', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 32);
      if (msgType !== 'text') throw cgiError('ERRCODE_INVALID_REQUEST', `session messages of type "${msgType}" are not supported yet; text is`);
      const text = (req.params.text ?? {}) as Record<string, unknown>;
      const content = reqString(text, 'content', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 100_000);
      let conversationId: string;
      if (typeof req.params.sessionId === 'string' && req.params.sessionId) conversationId = (await session(req)).id;
      else {
        const receiver = await userByAccount(req.ctx, reqString(req.params, 'receiver', 'ERRCODE_INVALID_TOUSER', 'ERRCODE_INVALID_TOUSER', 64), 'receiver');
        const c = await req.ctx.call<Conversation, object>('im.conversations.create', { type: 'single', members: [sender.id, receiver.id], createdBy: sender.id }).catch(imErr);
        conversationId = c.id;
      }
      await req.ctx
        .call('im.send', { conversationId, senderId: sender.id, clientMsgId: `openapi-${randomBytes(12).toString('hex')}`, type: 'text', body: { text: content } })
        .catch((err) => {
          throw fromQiaoError(err, { notFound: 'ERRCODE_INVALID_REQUEST' });
        });
      return null;
    },
  },
];
