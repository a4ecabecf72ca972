import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'moleculer';
import { ORG_WRITE, type CgiRequest, type CgiRoute } from './cgi.ts';
import { userByAccount, type OrgUser } from './cgi-org.ts';
import { exec } from '../db/sql.ts';
import { rows } from './app-store.ts';
import { cgiError, fromQiaoError } from './errcodes.ts';
import { readMedia } from './cgi-media.ts';
import { obj, reqString, stringArray } from './params.ts';

/**
 * Groups (docs/api/c01_00015.md) over the im service's fixed groups, and multi-person sessions
 * (c01_00008.md, c01_00009.md) over its discussion groups. A Youdu group id is the im group's id.
 *
 * `openapi_groups` is legacy: earlier versions kept groups created without members there (im could not
 * create an empty group then) under ids of their own. Those ids keep working: a row still waiting for
 * members becomes an empty im group the first time it is used, and its id stays an alias of that group.
 * Nothing new is written to the table.
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
  /** The id the caller named (a legacy alias or the im group's id). */
  groupId: string;
  conversationId: string;
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

type LegacyRow = { group_id: string; conversation_id: string | null; name: string };

/** Makes a legacy group that was still waiting for members an (empty) im group; answers its id. */
async function adopt(req: CgiRequest, row: LegacyRow): Promise<string> {
  if (row.conversation_id) return row.conversation_id;
  const c = await req.ctx.call<Conversation, object>('im.groups.create', { name: row.name }).catch(imErr);
  // Two requests adopting at once: the first one's group counts; the other's is dissolved again.
  const claimed = await exec(req.db, 'UPDATE openapi_groups SET conversation_id = ? WHERE group_id = ? AND conversation_id IS NULL', [c.id, row.group_id]);
  if (claimed > 0) return c.id;
  await req.ctx.call('im.groups.dissolve', { id: c.id }).catch(imErr);
  const [now] = await rows<LegacyRow>(req.db, 'SELECT * FROM openapi_groups WHERE group_id = ?', [row.group_id]);
  return now!.conversation_id!;
}

async function adoptAll(req: CgiRequest): Promise<Map<string, string>> {
  const legacy = await rows<LegacyRow>(req.db, 'SELECT * FROM openapi_groups ORDER BY created_at, group_id');
  const alias = new Map<string, string>();
  for (const r of legacy) alias.set(await adopt(req, r), r.group_id);
  return alias;
}

async function resolveGroup(req: CgiRequest, field = 'id'): Promise<GroupRef> {
  const id = reqString(req.params, field, 'ERRCODE_MISS_GROUPID', 'ERRCODE_INVALID_FORMAT_GROUPID', 64);
  const [row] = await rows<LegacyRow>(req.db, 'SELECT * FROM openapi_groups WHERE group_id = ?', [id]);
  const conversationId = row ? await adopt(req, row) : id;
  const c = await conversation(req.ctx, conversationId);
  if (!c || c.type !== 'group' || c.dissolvedAt) throw cgiError('ERRCODE_GROUP_NOTEXIST', `group "${id}" does not exist`);
  return { groupId: id, conversationId, name: c.name ?? '' };
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
  for (let i = 0; i < userIds.length; i += 5000) {
    out.push(...(await ctx.call<{ users: OrgUser[] }, object>('org.users.byIds', { ids: userIds.slice(i, i + 5000) })).users);
  }
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
      const c = await req.ctx.call<Conversation, object>('im.groups.create', { name: groupName(req) }).catch(imErr);
      return { id: c.id };
    },
  },
  {
    paths: ['/cgi/group/update'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const g = await resolveGroup(req);
      await req.ctx.call('im.groups.update', { id: g.conversationId, name: groupName(req) }).catch(imErr);
      return null;
    },
  },
  {
    paths: ['/cgi/group/delete'],
    methods: ['GET', 'POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const g = await resolveGroup(req);
      await req.ctx.call('im.groups.dissolve', { id: g.conversationId }).catch(imErr);
      // A legacy id would only point at a dissolved group now.
      if (g.groupId !== g.conversationId) await exec(req.db, 'DELETE FROM openapi_groups WHERE group_id = ?', [g.groupId]);
      return null;
    },
  },
  {
    paths: ['/cgi/group/info'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const g = await resolveGroup(req);
      const c = await conversation(req.ctx, g.conversationId);
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
      const alias = await adoptAll(req);
      const list: Array<{ id: string; name: string }> = [];
      if (account) {
        const user = await userByAccount(req.ctx, account);
        const r = await req.ctx.call<{ conversations: Conversation[] }, object>('im.conversations.list', { userId: user.id });
        for (const c of r.conversations) if (c.type === 'group' && !c.dissolvedAt) list.push({ id: alias.get(c.id) ?? c.id, name: c.name ?? '' });
        return { groupList: list };
      }
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
      await req.ctx.call('im.groups.addMembers', { id: g.conversationId, userIds: ids }).catch(imErr);
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
      await req.ctx.call('im.groups.removeMembers', { id: g.conversationId, userIds: ids }).catch(imErr);
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
      const c = await conversation(req.ctx, g.conversationId);
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
const SESSION_TYPES = ['text', 'image', 'file', 'voice', 'video'];
const CHUNK = 1024 * 1024;

interface ImFile {
  id: string;
  name: string;
  size: number;
  sha256: string;
}

/** Uploads bytes into a conversation as `userId` would from a client (im.files begin, append, complete). */
async function uploadAs(ctx: Context, userId: number, conversationId: string, name: string, kind: string, bytes: Buffer): Promise<ImFile> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const begun = await ctx.call<{ uploadId: string | null; received: number; file?: ImFile }, object>('im.files.begin', { userId, name, size: bytes.length, sha256, kind, conversationId });
  if (begun.file) return begun.file;
  for (let offset = begun.received; offset < bytes.length; offset += CHUNK) {
    await ctx.call('im.files.append', { userId, uploadId: begun.uploadId, offset, data: bytes.subarray(offset, offset + CHUNK).toString('base64') });
  }
  return ctx.call<ImFile, object>('im.files.complete', { userId, uploadId: begun.uploadId });
}

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
      if (!SESSION_TYPES.includes(msgType)) throw cgiError('ERRCODE_INVALID_REQUEST', `msgType must be one of ${SESSION_TYPES.join(', ')}`);
      const part = obj(req.params, msgType, 'ERRCODE_INVALID_REQUEST');
      if (!part) throw cgiError('ERRCODE_INVALID_REQUEST', `${msgType} is missing`);
      // Everything is read and checked before the conversation is touched.
      const content = msgType === 'text' ? reqString(part, 'content', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 100_000) : '';
      const media = msgType === 'text' ? null : await readMedia(req, reqString(part, 'media_id', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 64), `${msgType}.media_id`);
      let conversationId: string;
      if (typeof req.params.sessionId === 'string' && req.params.sessionId) conversationId = (await session(req)).id;
      else {
        const receiver = await userByAccount(req.ctx, reqString(req.params, 'receiver', 'ERRCODE_INVALID_TOUSER', 'ERRCODE_INVALID_TOUSER', 64), 'receiver');
        const c = await req.ctx.call<Conversation, object>('im.conversations.create', { type: 'single', members: [sender.id, receiver.id], createdBy: sender.id }).catch(imErr);
        conversationId = c.id;
      }
      const sendErr = (err: unknown) => {
        throw fromQiaoError(err, { notFound: 'ERRCODE_INVALID_REQUEST' });
      };
      let type = 'text';
      let body: Record<string, unknown> = { text: content };
      if (media) {
        // The sender shares the file into the conversation as if from their client. Qiao has no video
        // message and a voice message needs its length, which Youdu does not send: both go as files.
        const kind = msgType === 'image' && media.media.type === 'image' ? 'image' : msgType === 'voice' ? 'voice' : 'file';
        const f = await uploadAs(req.ctx, sender.id, conversationId, media.media.name, kind, media.bytes).catch(sendErr);
        type = kind === 'image' ? 'image' : 'file';
        body = { fileId: f.id, name: f.name, size: f.size, sha256: f.sha256 };
      }
      await req.ctx.call('im.send', { conversationId, senderId: sender.id, clientMsgId: `openapi-${randomBytes(12).toString('hex')}`, type, body }).catch(sendErr);
      return null;
    },
  },
];
