import type { Context, ServiceSchema } from 'moleculer';
import cron, { type ScheduledTask } from 'node-cron';
import { qiaoError } from '../errors.ts';
import { adminAction, type ServiceDeps } from '../services.ts';
import { BROADCAST_TYPES, checkBroadcast, listBroadcasts, platformSender, POPUP_RANGE, SENDER_NAME_MAX, sendBroadcast, type BroadcastInput } from './broadcasts.ts';
import {
  createConversation,
  getConversation,
  listConversations,
  memberAccess,
  USER_CONVERSATION_TYPES,
  type Actor,
  type CreateConversationInput,
} from './conversations.ts';
import { singleFlight } from '../eventlog/single-flight.ts';
import { createDepartmentGroup, followOrgBatch } from './department-groups.ts';
import { FileStore, SHA256_PATTERN, UPLOAD_ID_PATTERN } from './files/file-store.ts';
import {
  appendChunk,
  beginUpload,
  completeUpload,
  groupSpace,
  MAX_CHUNK_BYTES,
  openFile,
  purgeFiles,
  readRange,
  removeSpaceFile,
  statFile,
  storeAppFile,
  type BeginInput,
} from './files/files.ts';
import { APP_ID_PATTERN, openAppChat, sendAsApp, type AppSendInput } from './app-chats.ts';
import {
  adminAddMembers,
  adminDissolve,
  adminRemoveMembers,
  createFixedGroup,
  dissolveConversation,
  inviteMembers,
  leaveConversation,
  listGroups,
  removeMembers,
  renameConversation,
  setGroupRoles,
  transferOwner,
  updateGroup,
  type CreateGroupInput,
  type UpdateGroupInput,
} from './groups.ts';
import { FILE_ID_PATTERN } from './message-types/common.ts';
import { MESSAGE_TYPES } from './message-types/index.ts';
import { listMessages, type ListMessagesInput, type StoredMessage } from './messages.ts';
import { isPairChat, PERMISSIONS_PARAM } from './permissions.ts';
import { markRead, receiptCounts, receiptOf } from './read-state.ts';
import { recallMessage } from './recall.ts';
import { searchMessages, type SearchInput } from './search.ts';
import { sendMessage, type SendInput } from './send.ts';
import { applySensitiveWords } from './sensitive-words.ts';
import { FILE_KINDS, readSettings, SETTINGS_PATCH_PARAMS, updateSettings, type ImSettingsPatch } from './settings.ts';
import { queryRows } from '../db/sql.ts';
import { assertActiveUser, pruneSync, readSync, syncHead, syncHeads } from './sync.ts';
import type { ImCommit } from './write.ts';

const id = { type: 'number', integer: true, positive: true, convert: true } as const;
const userId = id;
const conversationId = { type: 'string', min: 1, max: 64 } as const;
const groupId = { type: 'string', min: 1, max: 64 } as const;
const userIds = { type: 'array', items: id, min: 1, max: 5000 } as const;
const name = { type: 'string', min: 1, max: 200 } as const;
const appIdParam = { type: 'string', pattern: APP_ID_PATTERN, messages: { stringPattern: "The '{field}' field must be an app id (letters, digits, _ and -)." } } as const;
const appName = { type: 'string', min: 1, max: 100 } as const;
const fileId = { type: 'string', pattern: FILE_ID_PATTERN, messages: { stringPattern: "The '{field}' field must be a file id (f + 24 hex digits)." } } as const;
const uploadId = { type: 'string', pattern: UPLOAD_ID_PATTERN, messages: { stringPattern: "The '{field}' field must be an upload id (u + 24 hex digits)." } } as const;
const page = { type: 'number', integer: true, min: 1, max: 1_000_000, optional: true, convert: true } as const;
const pageSize = { type: 'number', integer: true, min: 1, max: 500, optional: true, convert: true } as const;
const audience = {
  type: 'object',
  strict: true,
  props: {
    all: { type: 'boolean', optional: true },
    userIds: { type: 'array', items: id, optional: true, max: 100_000 },
    departmentIds: { type: 'array', items: id, optional: true, max: 10_000 },
    includeSubDepartments: { type: 'boolean', optional: true },
  },
} as const;
const broadcastParams = {
  audience,
  onlineOnly: { type: 'boolean', optional: true },
  type: { type: 'enum', values: [...BROADCAST_TYPES] },
  title: { type: 'string', max: 200, optional: true },
  body: { type: 'any' },
  popupSeconds: { type: 'number', integer: true, min: POPUP_RANGE.min, max: POPUP_RANGE.max, optional: true, nullable: true },
} as const;
/** Base64 of one chunk: 4 MiB of data. */
const MAX_CHUNK_BASE64 = Math.ceil(MAX_CHUNK_BYTES / 3) * 4;
/** Files and the sync inbox are tidied daily, at a quiet hour. */
const HOUSEKEEPING_CRON = '17 3 * * *';
/** A safety net for lost `eventlog.appended` wake-ups: department groups catch up at least this often. */
const ORG_POLL_MS = 30_000;

type AdminMeta = { admin?: { account?: string } };

function adminActor(ctx: Context<unknown, AdminMeta>): Actor {
  return { admin: ctx.meta.admin?.account ?? 'system' };
}


/**
 * Messaging: conversations and groups, the send pipeline, per-user sync, read state, recall, broadcasts,
 * files, history search. User actions take the acting user's id as a param (the gateway passes the
 * authenticated one); admin actions are marked for the admin API. Every write answers only after commit;
 * the broker events that follow (`im.sync.wake`, `eventlog.appended`, …) are wake-ups, never the record.
 */
export default function imService({ config, db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('im service needs storage');
  const store = new FileStore(config.filesDir);

  return {
    name: 'im',

    actions: {
      // ---- conversations --------------------------------------------------------------------------
      'conversations.create': {
        params: {
          type: { type: 'enum', values: [...USER_CONVERSATION_TYPES] },
          members: { type: 'array', items: { type: 'number', integer: true, positive: true }, min: 1, max: 5000 },
          name: { type: 'string', optional: true, max: 200 },
          createdBy: { type: 'number', integer: true, positive: true },
        },
        async handler(ctx: Context<CreateConversationInput>) {
          const commit = await createConversation(db, ctx.params);
          const { conversation, created } = commit.result;
          this.announce(commit, created ? [['im.conversation.created', conversation]] : []);
          return conversation;
        },
      },
      'conversations.get': {
        params: { userId, conversationId },
        async handler(ctx: Context<{ userId: number; conversationId: string }>) {
          await memberAccess(db, ctx.params.conversationId, ctx.params.userId, 'userId');
          return getConversation(db, ctx.params.conversationId);
        },
      },
      'conversations.list': {
        params: { userId },
        async handler(ctx: Context<{ userId: number }>) {
          await assertActiveUser(db, ctx.params.userId);
          return { conversations: await listConversations(db, ctx.params.userId) };
        },
      },
      'conversations.rename': {
        params: { userId, conversationId, name },
        async handler(ctx: Context<{ userId: number; conversationId: string; name: string }>) {
          return this.announce(await renameConversation(db, ctx.params));
        },
      },
      'conversations.invite': {
        params: { userId, conversationId, userIds },
        async handler(ctx: Context<{ userId: number; conversationId: string; userIds: number[] }>) {
          return this.announce(await inviteMembers(db, ctx.params));
        },
      },
      'conversations.remove': {
        params: { userId, conversationId, userIds },
        async handler(ctx: Context<{ userId: number; conversationId: string; userIds: number[] }>) {
          return this.announce(await removeMembers(db, ctx.params));
        },
      },
      'conversations.leave': {
        params: { userId, conversationId },
        async handler(ctx: Context<{ userId: number; conversationId: string }>) {
          return this.announce(await leaveConversation(db, ctx.params));
        },
      },
      'conversations.transfer': {
        params: { userId, conversationId, toUserId: id },
        async handler(ctx: Context<{ userId: number; conversationId: string; toUserId: number }>) {
          return this.announce(await transferOwner(db, ctx.params));
        },
      },
      'conversations.dissolve': {
        params: { userId, conversationId },
        async handler(ctx: Context<{ userId: number; conversationId: string }>) {
          return this.announce(await dissolveConversation(db, ctx.params));
        },
      },

      // ---- messages -------------------------------------------------------------------------------
      send: {
        params: {
          conversationId,
          senderId: { type: 'number', integer: true, positive: true },
          clientMsgId: { type: 'string', min: 1, max: 64 },
          type: { type: 'enum', values: [...MESSAGE_TYPES] },
          body: { type: 'any' },
          receipt: { type: 'boolean', optional: true },
        },
        async handler(ctx: Context<SendInput>): Promise<StoredMessage> {
          const { conversationId: conv, senderId, clientMsgId, type, body, receipt } = ctx.params;
          const result = await sendMessage(db, this.broker, ctx, { conversationId: conv, senderId, clientMsgId, type, body, receipt });
          if (result.logged) this.announce({ result: null, wake: result.wake, logged: [result.logged] }, [['im.message.stored', result.message]]);
          return result.message;
        },
      },
      'messages.list': {
        params: {
          conversationId,
          userId: { type: 'number', integer: true, positive: true },
          after: { type: 'number', integer: true, min: 0, optional: true, convert: true },
          before: { type: 'number', integer: true, min: 1, optional: true, convert: true },
          limit: { type: 'number', integer: true, min: 1, max: 500, optional: true, convert: true },
        },
        async handler(ctx: Context<ListMessagesInput>) {
          const messages = await listMessages(db, ctx.params);
          return { messages, last: messages.length ? messages[messages.length - 1].id : (ctx.params.after ?? 0) };
        },
      },
      'messages.recall': {
        params: { userId, messageId: id },
        async handler(ctx: Context<{ userId: number; messageId: number }>) {
          return this.announce(await recallMessage(db, ctx.params));
        },
      },
      'messages.search': {
        params: {
          userId,
          keyword: { type: 'string', max: 200, optional: true },
          conversationId: { ...conversationId, optional: true },
          senderId: { ...id, optional: true },
          from: { type: 'date', convert: true, optional: true },
          to: { type: 'date', convert: true, optional: true },
          before: { ...id, optional: true },
          limit: { type: 'number', integer: true, min: 1, max: 200, optional: true, convert: true },
        },
        handler(ctx: Context<SearchInput>) {
          const p = ctx.params as SearchInput & { from?: Date | string; to?: Date | string };
          const iso = (d: Date | string | undefined) => (d === undefined ? undefined : new Date(d).toISOString());
          return searchMessages(db, { ...p, from: iso(p.from), to: iso(p.to) });
        },
      },

      // ---- chats with apps (called by the apps service) ------------------------------------------------
      'apps.open': {
        params: { appId: appIdParam, appName, userId },
        async handler(ctx: Context<{ appId: string; appName: string; userId: number }>) {
          const { conversation, wake, logged } = await openAppChat(db, { appId: ctx.params.appId, name: ctx.params.appName }, ctx.params.userId);
          return this.announce({ result: conversation, wake, logged });
        },
      },
      'apps.send': {
        params: {
          appId: appIdParam,
          appName,
          audience,
          type: { type: 'enum', values: [...MESSAGE_TYPES] },
          body: { type: 'object' },
        },
        async handler(ctx: Context<{ appId: string; appName: string; audience: AppSendInput['audience']; type: AppSendInput['type']; body: AppSendInput['body'] }>) {
          const { appId, appName: name, audience: to, type, body } = ctx.params;
          const { messages, wake, logged } = await sendAsApp(db, { app: { appId, name }, audience: to, type, body });
          return this.announce({ result: { messages }, wake, logged });
        },
      },
      /** Stores the bytes of a picture or file an app sends; the answer's `id` goes into `apps.send`'s body. */
      'apps.file': {
        params: {
          name: { type: 'string', min: 1, max: 1000 },
          kind: { type: 'enum', values: [...FILE_KINDS] },
          mime: { type: 'string', max: 100, optional: true, pattern: /^[\w.+-]+\/[\w.+-]+$/ },
          data: { type: 'string', max: 200_000_000 },
        },
        handler(ctx: Context<{ name: string; kind: (typeof FILE_KINDS)[number]; mime?: string; data: string }>) {
          return storeAppFile(db, store, { ...ctx.params, data: Buffer.from(ctx.params.data, 'base64') });
        },
      },

      // ---- read state -----------------------------------------------------------------------------
      read: {
        params: { userId, conversationId, upTo: { type: 'number', integer: true, min: 0, convert: true } },
        async handler(ctx: Context<{ userId: number; conversationId: string; upTo: number }>) {
          return this.announce(await markRead(db, ctx.params));
        },
      },
      'receipts.get': {
        params: { userId, messageId: id },
        handler(ctx: Context<{ userId: number; messageId: number }>) {
          return receiptOf(db, ctx.params);
        },
      },
      'receipts.counts': {
        params: { userId, conversationId, messageIds: { type: 'array', items: id, min: 1, max: 500 } },
        handler(ctx: Context<{ userId: number; conversationId: string; messageIds: number[] }>) {
          return receiptCounts(db, ctx.params);
        },
      },

      // ---- sync -----------------------------------------------------------------------------------
      sync: {
        params: {
          userId,
          since: { type: 'number', integer: true, min: 0, convert: true },
          limit: { type: 'number', integer: true, min: 1, max: 1000, optional: true, convert: true },
        },
        handler(ctx: Context<{ userId: number; since: number; limit?: number }>) {
          return readSync(db, ctx.params.userId, ctx.params.since, ctx.params.limit ?? 200);
        },
      },
      'sync.head': {
        params: { userId },
        async handler(ctx: Context<{ userId: number }>) {
          await assertActiveUser(db, ctx.params.userId);
          return { head: await syncHead(db, ctx.params.userId) };
        },
      },
      /**
       * Many heads in one call, for gateways pushing a wake-up to a whole group: `{ heads: { [userId]: head } }`,
       * leaving out people who do not exist or are not active (where `sync.head` refuses).
       */
      'sync.heads': {
        params: { userIds: { type: 'array', items: id, max: 5000 } },
        async handler(ctx: Context<{ userIds: number[] }>) {
          return { heads: Object.fromEntries(await syncHeads(db, ctx.params.userIds)) };
        },
      },

      // ---- broadcasts -----------------------------------------------------------------------------
      'broadcasts.send': adminAction({
        admin: true,
        rest: 'POST /im/broadcasts',
        params: { ...broadcastParams, senderName: { type: 'string', trim: true, min: 1, max: SENDER_NAME_MAX, optional: true } },
        async handler(ctx: Context<BroadcastInput & { senderName?: string }, AdminMeta & { plugin?: string }>) {
          const { senderName, ...input } = ctx.params;
          const plugin = typeof ctx.meta.plugin === 'string' && ctx.meta.plugin ? ctx.meta.plugin : undefined;
          const pluginName = plugin ? await this.pluginName(ctx, plugin) : null;
          const sender = platformSender({ plugin, pluginName, admin: ctx.meta.admin?.account }, senderName);
          return this.sendBroadcast(ctx, sender, input);
        },
      }),
      /** For the client API: a person with broadcast permission (广播权限) sends as themselves. */
      'broadcasts.sendAsUser': {
        params: { senderId: id, ...broadcastParams },
        async handler(ctx: Context<BroadcastInput & { senderId: number }>) {
          const { senderId, ...input } = ctx.params;
          await assertActiveUser(db, senderId, 'senderId');
          if (!(await readSettings(db)).broadcastSenders.includes(senderId)) {
            throw qiaoError('QIAO_FORBIDDEN', `user ${senderId} may not send broadcasts: an admin grants that permission`, { field: 'senderId' });
          }
          const [user] = await queryRows<{ name: string }>(db, 'SELECT name FROM users WHERE id = ?', [senderId]);
          // People's broadcasts go through the admin's word list like their messages; admins' do not.
          checkBroadcast(input);
          const body = applySensitiveWords((await readSettings(db)).sensitiveWords, input.type, input.body);
          return this.sendBroadcast(ctx, { kind: 'user', id: senderId, name: user?.name ?? String(senderId) }, { ...input, body });
        },
      },
      'broadcasts.list': adminAction({
        admin: true,
        rest: 'GET /im/broadcasts',
        params: { page, pageSize },
        handler(ctx: Context<{ page?: number; pageSize?: number }>) {
          return listBroadcasts(db, ctx.params);
        },
      }),

      // ---- groups (admin) -------------------------------------------------------------------------
      'groups.create': adminAction({
        admin: true,
        rest: 'POST /im/groups',
        params: {
          name,
          // A group may start empty (Youdu's group/create names it, members come later).
          members: { ...userIds, min: 0, optional: true },
          owner: { ...id, optional: true },
          admins: { type: 'array', items: id, max: 5000, optional: true },
          permissions: PERMISSIONS_PARAM,
        },
        async handler(ctx: Context<CreateGroupInput, AdminMeta>) {
          const commit = await createFixedGroup(db, adminActor(ctx), ctx.params);
          return this.announce(commit, [['im.conversation.created', commit.result]]);
        },
      }),
      'groups.createForDepartment': adminAction({
        admin: true,
        rest: 'POST /im/department-groups',
        params: { departmentId: id, includeSubDepartments: { type: 'boolean', optional: true, convert: true }, name: { ...name, optional: true } },
        async handler(ctx: Context<{ departmentId: number; includeSubDepartments?: boolean; name?: string }, AdminMeta>) {
          const commit = await createDepartmentGroup(db, adminActor(ctx), ctx.params);
          return this.announce(commit, [['im.conversation.created', commit.result]]);
        },
      }),
      'groups.list': adminAction({
        admin: true,
        rest: 'GET /im/groups',
        params: {
          type: { type: 'enum', values: ['group', 'department', 'discussion'], optional: true },
          search: { type: 'string', max: 200, optional: true },
          includeDissolved: { type: 'boolean', optional: true, convert: true },
          page,
          pageSize,
        },
        handler(ctx: Context<Parameters<typeof listGroups>[1]>) {
          return listGroups(db, ctx.params);
        },
      }),
      'groups.get': adminAction({
        admin: true,
        rest: 'GET /im/groups/:id',
        params: { id: groupId },
        async handler(ctx: Context<{ id: string }>) {
          const c = await getConversation(db, ctx.params.id);
          if (!c || isPairChat(c.type)) throw qiaoError('QIAO_CONVERSATION_NOT_FOUND', `there is no group ${ctx.params.id}`, { field: 'id' });
          return c;
        },
      }),
      'groups.update': adminAction({
        admin: true,
        rest: 'PATCH /im/groups/:id',
        params: {
          id: groupId,
          name: { ...name, optional: true },
          permissions: PERMISSIONS_PARAM,
          spaceQuota: { type: 'number', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, optional: true, nullable: true },
        },
        async handler(ctx: Context<UpdateGroupInput, AdminMeta>) {
          return this.announce(await updateGroup(db, adminActor(ctx), ctx.params));
        },
      }),
      'groups.addMembers': adminAction({
        admin: true,
        rest: 'POST /im/groups/:id/members',
        params: { id: groupId, userIds },
        async handler(ctx: Context<{ id: string; userIds: number[] }, AdminMeta>) {
          return this.announce(await adminAddMembers(db, adminActor(ctx), ctx.params));
        },
      }),
      'groups.removeMembers': adminAction({
        admin: true,
        rest: 'POST /im/groups/:id/members/remove',
        params: { id: groupId, userIds },
        async handler(ctx: Context<{ id: string; userIds: number[] }, AdminMeta>) {
          return this.announce(await adminRemoveMembers(db, adminActor(ctx), ctx.params));
        },
      }),
      'groups.setRoles': adminAction({
        admin: true,
        rest: 'PUT /im/groups/:id/roles',
        params: { id: groupId, owner: { ...id, optional: true, nullable: true }, admins: { type: 'array', items: id, max: 5000 } },
        async handler(ctx: Context<{ id: string; owner?: number | null; admins: number[] }, AdminMeta>) {
          return this.announce(await setGroupRoles(db, adminActor(ctx), ctx.params));
        },
      }),
      'groups.dissolve': adminAction({
        admin: true,
        rest: 'POST /im/groups/:id/dissolve',
        params: { id: groupId },
        async handler(ctx: Context<{ id: string }, AdminMeta>) {
          return this.announce(await adminDissolve(db, adminActor(ctx), ctx.params));
        },
      }),
      /** Applies pending directory changes to department groups now (they also follow on their own). */
      'departments.follow': {
        async handler() {
          await this.followOrg();
          return { ok: true };
        },
      },

      // ---- settings (admin) -----------------------------------------------------------------------
      'settings.get': adminAction({
        admin: true,
        rest: 'GET /im/settings',
        handler() {
          return readSettings(db);
        },
      }),
      'settings.update': adminAction({
        admin: true,
        rest: 'PATCH /im/settings',
        params: SETTINGS_PATCH_PARAMS,
        handler(ctx: Context<ImSettingsPatch>) {
          return updateSettings(db, ctx.params);
        },
      }),

      // ---- files ----------------------------------------------------------------------------------
      'files.begin': {
        params: {
          userId,
          name: { type: 'string', min: 1, max: 1000 },
          size: { type: 'number', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER },
          sha256: { type: 'string', pattern: SHA256_PATTERN, messages: { stringPattern: "The 'sha256' field must be 64 lower-case hex digits." } },
          kind: { type: 'enum', values: [...FILE_KINDS] },
          mime: { type: 'string', max: 100, optional: true, pattern: /^[\w.+-]+\/[\w.+-]+$/ },
          conversationId: { ...conversationId, optional: true },
          space: { type: 'boolean', optional: true },
        },
        handler(ctx: Context<BeginInput>) {
          return beginUpload(db, store, ctx.params);
        },
      },
      'files.append': {
        params: { userId, uploadId, offset: { type: 'number', integer: true, min: 0 }, data: { type: 'string', max: MAX_CHUNK_BASE64 } },
        handler(ctx: Context<{ userId: number; uploadId: string; offset: number; data: string }>) {
          return appendChunk(db, store, ctx.params);
        },
      },
      'files.complete': {
        params: { userId, uploadId },
        handler(ctx: Context<{ userId: number; uploadId: string }>) {
          return completeUpload(db, store, ctx.params);
        },
      },
      'files.stat': {
        params: { userId, fileId },
        handler(ctx: Context<{ userId: number; fileId: string }>) {
          return statFile(db, ctx.params);
        },
      },
      /** For a gateway on the same host: metadata and the path to stream byte ranges from. */
      'files.open': {
        params: { userId, fileId },
        handler(ctx: Context<{ userId: number; fileId: string }>) {
          return openFile(db, store, ctx.params);
        },
      },
      'files.read': {
        params: {
          userId,
          fileId,
          offset: { type: 'number', integer: true, min: 0, convert: true },
          length: { type: 'number', integer: true, min: 1, max: MAX_CHUNK_BYTES, optional: true, convert: true },
        },
        handler(ctx: Context<{ userId: number; fileId: string; offset: number; length?: number }>) {
          return readRange(db, store, ctx.params);
        },
      },
      'files.space': {
        params: { userId, conversationId },
        handler(ctx: Context<{ userId: number; conversationId: string }>) {
          return groupSpace(db, ctx.params);
        },
      },
      'files.remove': {
        params: { userId, fileId },
        handler(ctx: Context<{ userId: number; fileId: string }>) {
          return removeSpaceFile(db, ctx.params);
        },
      },
      'files.purge': adminAction({
        admin: true,
        rest: 'POST /im/files/purge',
        handler() {
          return this.housekeeping();
        },
      }),
    },

    events: {
      'eventlog.appended'(ctx: Context<{ topic?: string }>) {
        if (ctx.params?.topic?.startsWith('org.')) this.followOrg().catch(() => undefined);
      },
    },

    methods: {
      /**
       * After a commit: wakes the users whose inboxes grew and tells log readers where the log ends.
       * Broadcast, not emit: every gateway node has sockets to wake and every plugin process its own cursor,
       * and emit would reach only one instance per service. A lost event costs a delay, never data.
       */
      announce<T>(commit: ImCommit<T>, extra: Array<[string, unknown]> = []): T {
        const send = (event: string, data: unknown) =>
          Promise.resolve(this.broker.broadcast(event, data)).catch((err: Error) => this.logger.warn(`broadcast ${event} failed: ${err.message}`));
        for (const l of commit.logged) send('eventlog.appended', l);
        for (const [event, data] of extra) send(event, data);
        if (commit.wake.length) send('im.sync.wake', { userIds: commit.wake });
        return commit.result;
      },
      async sendBroadcast(ctx: Context, sender: Parameters<typeof sendBroadcast>[1], input: BroadcastInput) {
        const commit = await sendBroadcast(db, sender, input, input.onlineOnly ? await this.onlineUsers(ctx) : null);
        return this.announce(commit, [['im.broadcast.sent', commit.result]]);
      },
      /** A plugin's display name from the plugin host, or null when it cannot say (the id is used then). */
      async pluginName(ctx: Context, pluginId: string): Promise<string | null> {
        if (!this.broker.registry.actions.isAvailable('plugins.get')) return null;
        try {
          return (await ctx.call<{ name: string | null }, object>('plugins.get', { id: pluginId })).name ?? null;
        } catch {
          return null;
        }
      },
      /** Who is online, from the presence service when one runs; null (everyone counts) when none does. */
      async onlineUsers(ctx: Context): Promise<Set<number> | null> {
        if (!this.broker.registry.actions.isAvailable('presence.online')) return null;
        const { userIds: online } = await ctx.call<{ userIds: number[] }>('presence.online');
        return new Set(online);
      },
      async housekeeping() {
        const files = await purgeFiles(db, store);
        const syncPruned = await pruneSync(db, (await readSettings(db)).syncRetentionDays);
        return { ...files, syncPruned };
      },
    },

    created() {
      /** Brings department groups up to date with the log; calls while one runs make it go round again. */
      this.followOrg = singleFlight(
        async () => {
          let applied = 0;
          for (;;) {
            const commit = await followOrgBatch(db);
            this.announce(commit);
            if (commit.result.applied === 0) return applied;
            applied += commit.result.applied;
          }
        },
        (err) => this.logger.warn(`im: following org changes failed, retrying on the next wake-up: ${err.message}`),
      );
      this.task = null;
      this.poll = null;
    },

    async started() {
      await store.init();
      await this.followOrg();
      this.poll = setInterval(() => this.followOrg(), ORG_POLL_MS);
      this.poll.unref?.();
      const task: ScheduledTask = cron.schedule(
        HOUSEKEEPING_CRON,
        () =>
          this.housekeeping().catch((err: Error) => {
            this.logger.error(`im: housekeeping failed: ${err.message}`);
          }),
        { name: `im-housekeeping-${config.nodeId}`, noOverlap: true },
      );
      this.task = task;
    },

    async stopped() {
      if (this.poll) clearInterval(this.poll);
      const task = this.task as ScheduledTask | null;
      this.task = null;
      if (task) await task.destroy();
      await this.followOrg.running();
    },
  };
}
