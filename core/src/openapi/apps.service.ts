import path from 'node:path';
import type { Context, ServiceSchema } from 'moleculer';
import { appendEvent } from '../eventlog/event-log.ts';
import { qiaoError } from '../errors.ts';
import { adminAction, type ServiceDeps } from '../services.ts';
import {
  createApp,
  deleteApp,
  findApp,
  getApp,
  listApps,
  rows,
  regenerateKeys,
  seedSystemApps,
  updateApp,
  type App,
  type AppInput,
} from './app-store.ts';
import { callNow, enqueueCallback, listCallbacks, runDue } from './callbacks.ts';
import { dispatch, errorOutput, type CgiDeps, type CgiInput, type CgiOutput, type CgiRoute } from './cgi.ts';
import { groupRoutes, sessionRoutes } from './cgi-groups.ts';
import { mediaRoutes, storeMedia } from './cgi-media.ts';
import { messageRoutes } from './cgi-messages.ts';
import { orgRoutes, userByAccount, type OrgUser } from './cgi-org.ts';
import { singleFlight } from '../eventlog/single-flight.ts';
import { followAppChats } from './app-chat-follower.ts';
import { callbackMessage, canChat, findMenuItem, withToken } from './chat-partner.ts';
import { aesKey, decrypt, encrypt, prefixWasIv } from './crypto.ts';
import { cgiError } from './errcodes.ts';
import { followAudit } from './message-audit.ts';
import { jobRoutes, runJob, type Caller } from './replace-all.ts';
import { orgExtraRoutes } from './cgi-org-extra.ts';
import { exportSession, sessionExportRoutes } from './session-export.ts';
import { xmlSyncRoutes } from './xml-sync.ts';
import { checkSsoToken, issueAccessToken, issueSsoToken, pruneTokens, rememberEnvelope } from './tokens.ts';

const ROUTES: CgiRoute[] = [...orgRoutes, ...orgExtraRoutes, ...messageRoutes, ...mediaRoutes, ...groupRoutes, ...sessionRoutes, ...sessionExportRoutes, ...jobRoutes, ...xmlSyncRoutes];
/** How often the callback worker looks for due deliveries. */
const WORKER_MS = 5_000;
/** gettoken's timestamp may differ from the server clock by at most the time an envelope is remembered. */
const CLOCK_SKEW_S = 7200;

const text = (max: number, extra: object = {}) => ({ type: 'string', max, optional: true, nullable: true, ...extra }) as const;
const menuItem = {
  type: 'object',
  props: {
    name: { type: 'string', min: 1, max: 40 },
    type: { type: 'enum', values: ['url', 'click'] },
    url: text(2000),
    key: text(100),
    children: { type: 'array', optional: true, max: 5, items: { type: 'object', props: { name: { type: 'string', min: 1, max: 40 }, type: { type: 'enum', values: ['url', 'click'] }, url: text(2000), key: text(100) } } },
  },
} as const;
const appProps = {
  name: { type: 'string', min: 1, max: 100, optional: true },
  description: text(500),
  logo: text(200_000),
  visibleDesktop: { type: 'boolean', optional: true, convert: true },
  visibleMobile: { type: 'boolean', optional: true, convert: true },
  homeUrl: text(2000),
  callbackUrl: text(2000),
  callbackToken: text(64, { pattern: /^[A-Za-z0-9]*$/, messages: { stringPattern: "The 'callbackToken' field holds letters and digits only." } }),
  autoReply: {
    type: 'array',
    optional: true,
    max: 100,
    items: { type: 'object', props: { match: { type: 'enum', values: ['exact', 'contains', 'any'] }, keyword: text(100), reply: { type: 'string', min: 1, max: 2000 } } },
  },
  menus: { type: 'array', optional: true, max: 3, items: menuItem },
  enabled: { type: 'boolean', optional: true, convert: true },
} as const;
const appId = { type: 'string', min: 1, max: 64 } as const;
const userId = { type: 'number', integer: true, positive: true, convert: true } as const;

type AdminMeta = { admin?: { account?: string } };

/**
 * Open-API applications and the Youdu-compatible `/cgi/...` API (the gateway hands every request to
 * `apps.cgi`): app administration, access and SSO tokens, app messages, org and group sync, media, full
 * replace jobs, and callbacks to apps with their durable retry worker.
 */
export default function appsService({ config, db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('apps service needs storage');
  let timer: NodeJS.Timeout | null = null;
  let lastPrune = 0;
  let buin: number | null = null;
  const routes = new Map<string, CgiRoute>();
  for (const r of ROUTES) for (const p of r.paths) routes.set(p, r);
  const mediaDir = path.join(config.dataDir, 'openapi-media');

  return {
    name: 'apps',

    actions: {
      // ---- administration ---------------------------------------------------------------------------
      list: adminAction({
        admin: true,
        rest: 'GET /apps',
        async handler() {
          return { apps: await listApps(db) };
        },
      }),
      get: adminAction({
        admin: true,
        rest: 'GET /apps/:appId',
        params: { appId },
        handler(ctx: Context<{ appId: string }>) {
          return getApp(db, ctx.params.appId);
        },
      }),
      create: adminAction({
        admin: true,
        rest: 'POST /apps',
        params: { ...appProps, name: { type: 'string', min: 1, max: 100 } },
        handler(ctx: Context<AppInput & { name: string }, AdminMeta>) {
          return this.changeApp(ctx, 'created', (t: Parameters<typeof createApp>[1]) => createApp(db, t, ctx.params));
        },
      }),
      update: adminAction({
        admin: true,
        rest: 'PATCH /apps/:appId',
        params: { appId, ...appProps },
        handler(ctx: Context<AppInput & { appId: string }, AdminMeta>) {
          const { appId: id, ...input } = ctx.params;
          return this.changeApp(ctx, 'updated', (t: Parameters<typeof createApp>[1]) => updateApp(db, t, id, input));
        },
      }),
      regenerate: adminAction({
        admin: true,
        rest: 'POST /apps/:appId/regenerate',
        params: { appId, aesKey: { type: 'boolean', optional: true, convert: true }, callbackToken: { type: 'boolean', optional: true, convert: true } },
        handler(ctx: Context<{ appId: string; aesKey?: boolean; callbackToken?: boolean }, AdminMeta>) {
          return this.changeApp(ctx, 'keys-regenerated', (t: Parameters<typeof createApp>[1]) => regenerateKeys(db, t, ctx.params.appId, ctx.params));
        },
      }),
      delete: adminAction({
        admin: true,
        rest: 'DELETE /apps/:appId',
        params: { appId },
        async handler(ctx: Context<{ appId: string }, AdminMeta>) {
          await db.transaction(async (t) => {
            await deleteApp(db, t, ctx.params.appId);
            await appendEvent(db, t, 'apps.app.changed', `app:${ctx.params.appId}`, { change: 'deleted', appId: ctx.params.appId, by: ctx.meta.admin?.account ?? null });
          });
          return { appId: ctx.params.appId, deleted: true };
        },
      }),
      'callbacks.list': adminAction({
        admin: true,
        rest: 'GET /apps/callbacks',
        params: { appId: { ...appId, optional: true }, limit: { type: 'number', integer: true, min: 1, max: 500, optional: true, convert: true } },
        async handler(ctx: Context<{ appId?: string; limit?: number }>) {
          return { callbacks: await listCallbacks(db, ctx.params.appId, ctx.params.limit ?? 50) };
        },
      }),
      /** Queues message-audit callbacks for messages stored since the last run (also run on every wake-up). */
      'audit.follow': adminAction({
        admin: true,
        rest: 'POST /apps/audit/follow',
        async handler() {
          return { queued: await this.audit() };
        },
      }),
      /** Delivers the callbacks due as of `at` (default now): the worker's step, callable by admins and tests. */
      'callbacks.run': adminAction({
        admin: true,
        rest: 'POST /apps/callbacks/run',
        params: { at: { type: 'date', convert: true, optional: true } },
        async handler(ctx: Context<{ at?: Date }>) {
          return { tried: await runDue(db, await this.companyBuin(), ctx.params.at ? new Date(ctx.params.at) : new Date()) };
        },
      }),

      // ---- the gateway ------------------------------------------------------------------------------
      /** One `/cgi/...` request from the gateway; answers the JSON envelope or a file body. */
      cgi: {
        params: { method: { type: 'string' }, path: { type: 'string', max: 200 }, query: { type: 'object' }, body: { type: 'object' } },
        async handler(ctx: Context<CgiInput>): Promise<CgiOutput> {
          const now = new Date();
          if (ctx.params.path === '/cgi/gettoken') return this.getToken(ctx.params, now);
          if (ctx.params.path === '/cgi/identify') return this.identify(ctx, ctx.params.query.token, now);
          const deps: CgiDeps = {
            mediaDir,
            enqueueCallback: (id, message, target) => this.notify(id, message, target),
            startJob: (jobId) => this.startJob(jobId),
          };
          return dispatch({ routes, deps, companyBuin: () => this.companyBuin() }, db, ctx, ctx.params, now);
        },
      },

      // ---- clients ----------------------------------------------------------------------------------
      /** A three-minute identify token for `$TOKEN$`; with `appId`, the app's home URL with it filled in. */
      'sso.issue': {
        params: { userId, appId: { ...appId, optional: true } },
        async handler(ctx: Context<{ userId: number; appId?: string }>) {
          const user = await this.activeUser(ctx, ctx.params.userId);
          const app = ctx.params.appId ? await getApp(db, ctx.params.appId) : null;
          const issued = await issueSsoToken(db, user.id, app?.appId ?? null, new Date());
          return { ...issued, url: app?.homeUrl ? withToken(app.homeUrl, issued.token) : null };
        },
      },
      /** The apps a person sees in the client's app panel. */
      'client.list': {
        params: { userId, deviceType: { type: 'enum', values: ['desktop', 'mobile'], optional: true } },
        async handler(ctx: Context<{ userId: number; deviceType?: 'desktop' | 'mobile' }>) {
          const apps = (await listApps(db)).filter((a) => a.kind === 'app' && a.enabled && (ctx.params.deviceType === 'mobile' ? a.visibleMobile : a.visibleDesktop));
          return { apps: apps.map((a) => ({ appId: a.appId, name: a.name, description: a.description, logo: a.logo, hasHome: !!a.homeUrl, menus: a.menus })) };
        },
      },
      /** Opens the person's chat with the app: they write into it like any conversation (see app-chat-follower.ts). */
      'chat.open': {
        params: { appId, userId },
        async handler(ctx: Context<{ appId: string; userId: number }>) {
          const app = await this.chatApp(ctx.params.appId);
          return ctx.call('im.apps.open', { appId: app.appId, appName: app.name, userId: ctx.params.userId });
        },
      },
      /**
       * A click on the app's custom menu (自定义菜单): a `click` item is called back to the app as an event;
       * a `url` item answers its URL with `$TOKEN$` filled in for SSO.
       */
      'menu.click': {
        params: { appId, userId, key: { type: 'string', min: 1, max: 100 } },
        async handler(ctx: Context<{ appId: string; userId: number; key: string }>) {
          const app = await this.chatApp(ctx.params.appId);
          const item = findMenuItem(app.menus, ctx.params.key);
          if (!item) throw qiaoError('QIAO_NOT_FOUND', `app "${app.appId}" has no menu item "${ctx.params.key}"`, { field: 'key' });
          const user = await this.activeUser(ctx, ctx.params.userId);
          if (item.type === 'url') {
            const issued = await issueSsoToken(db, user.id, app.appId, new Date());
            return { url: withToken(item.url ?? '', issued.token) };
          }
          if (!app.callbackUrl) throw qiaoError('QIAO_UNAVAILABLE', `app "${app.appId}" has no callback URL to take menu clicks`, { field: 'appId' });
          const packageId = await this.notify(app.appId, callbackMessage({ fromUser: user.account, msgType: 'menu', menuKey: ctx.params.key }, new Date()));
          return { packageId };
        },
      },
      /**
       * 会话消息转出 (docs/api/c01_00011.md): the person picks messages in a conversation and one of the app's
       * menu items (or its home page); the messages become a zip kept for that app, and the answer is the
       * URL to open, with `token` (identify) and `file_id` (for `/cgi/session/msg/download.zip`) added.
       */
      'session.export': {
        params: {
          appId,
          userId,
          conversationId: { type: 'string', min: 1, max: 64 },
          messageIds: { type: 'array', items: { type: 'number', integer: true, positive: true, convert: true }, min: 1, max: 500 },
          key: { type: 'string', min: 1, max: 100, optional: true },
        },
        async handler(ctx: Context<{ appId: string; userId: number; conversationId: string; messageIds: number[]; key?: string }>) {
          const app = await this.chatApp(ctx.params.appId);
          const item = ctx.params.key ? findMenuItem(app.menus, ctx.params.key) : null;
          if (ctx.params.key && (!item || item.type !== 'url')) throw qiaoError('QIAO_NOT_FOUND', `app "${app.appId}" has no url menu item "${ctx.params.key}"`, { field: 'key' });
          const target = item?.url ?? app.homeUrl;
          if (!target) throw qiaoError('QIAO_VALIDATION', `app "${app.appId}" has no home URL or url menu item to send the messages to`, { field: 'key' });
          const { userId, conversationId, messageIds } = ctx.params;
          const { fileId, messages } = await exportSession(this.broker as unknown as Caller, { db, mediaDir }, { userId, conversationId, messageIds, appId: app.appId });
          const issued = await issueSsoToken(db, userId, app.appId, new Date());
          const url = new URL(withToken(target, issued.token));
          url.searchParams.set('token', issued.token);
          url.searchParams.set('file_id', fileId);
          return { fileId, messages, url: url.toString() };
        },
      },
      /** An SMS a person sends from the client, handed to the SMS gateway (sysSmsAssistant's callback). */
      'sms.send': {
        params: { userId, mobiles: { type: 'array', items: { type: 'string', min: 3, max: 32 }, min: 1, max: 1000 }, content: { type: 'string', min: 1, max: 1000 } },
        async handler(ctx: Context<{ userId: number; mobiles: string[]; content: string }>) {
          const app = await getApp(db, 'sysSmsAssistant');
          if (!app.enabled || !app.callbackUrl) throw qiaoError('QIAO_UNAVAILABLE', 'no SMS gateway is configured: set the callback URL of sysSmsAssistant', { field: 'mobiles' });
          const user = await ctx.call<OrgUser, object>('org.users.get', { id: ctx.params.userId });
          const now = new Date();
          const o = await callNow(db, app, await this.companyBuin(), { fromUser: user.account, createTime: Math.floor(now.getTime() / 1000), msgType: 'sms', sms: { mobiles: ctx.params.mobiles, content: ctx.params.content } }, now);
          if (!o.ok) throw qiaoError('QIAO_UNAVAILABLE', `the SMS gateway did not take the message: ${o.error}`, { field: 'mobiles' });
          let status: { success?: string[]; fail?: string[] } = {};
          try {
            if (o.answer) status = JSON.parse(o.answer.toString('utf8'));
          } catch {
            status = {};
          }
          return { success: status.success ?? null, fail: status.fail ?? null };
        },
      },
    },

    events: {
      'eventlog.appended'(ctx: Context<{ topic?: string }>) {
        if (ctx.params?.topic === 'message.stored') {
          void this.audit();
          void this.chats();
        }
      },
    },

    methods: {
      /** An app people can write to now; any other is refused naming `appId`. */
      async chatApp(id: string): Promise<App> {
        const app = await getApp(db, id);
        if (!canChat(app)) throw qiaoError('QIAO_FORBIDDEN', `app "${app.appId}" does not take messages`, { field: 'appId' });
        return app;
      },
      async activeUser(ctx: Context, id: number): Promise<OrgUser> {
        const user = await ctx.call<OrgUser, object>('org.users.get', { id });
        if (user.status !== 'active') throw qiaoError('QIAO_FORBIDDEN', `user ${user.id} is ${user.status}`, { field: 'userId' });
        return user;
      },
      async companyBuin(): Promise<number> {
        if (buin === null) buin = (await this.broker.call<{ company: { buin: number } }>('system.info')).company.buin;
        return buin;
      },
      async changeApp(ctx: Context<unknown, AdminMeta>, change: string, fn: (t: Parameters<typeof createApp>[1]) => Promise<App>): Promise<App> {
        return db.transaction(async (t) => {
          const app = await fn(t);
          await appendEvent(db, t, 'apps.app.changed', `app:${app.appId}`, { change, appId: app.appId, name: app.name, by: ctx.meta.admin?.account ?? null });
          return app;
        });
      },
      async getToken(input: CgiInput, now: Date): Promise<CgiOutput> {
        try {
          if (input.method !== 'POST') throw cgiError('ERRCODE_INVALID_REQUEST', '/cgi/gettoken is called with POST');
          if (input.body.kind === 'invalid') throw cgiError('ERRCODE_INVALID_FORMAT_JSON', `the request body is not JSON: ${input.body.reason}`);
          const fields = input.body.kind === 'none' ? {} : input.body.fields;
          const companyBuin = await this.companyBuin();
          let b = fields.buin;
          if (b === undefined || b === null || b === '') throw cgiError('ERRCODE_MISS_BUIN', 'buin is missing');
          if (input.body.kind !== 'json' && typeof b === 'string' && /^\d{1,10}$/.test(b)) b = Number(b);
          if (typeof b !== 'number' || !Number.isInteger(b)) throw cgiError('ERRCODE_INVALID_FORMAT_BUIN', 'buin must be an integer');
          if (b !== companyBuin) throw cgiError('ERRCODE_INVALID_BUIN', `buin ${b} is not this company's number`);
          const id = fields.appId ?? fields.app_id;
          if (id === undefined || id === null || id === '') throw cgiError('ERRCODE_MISS_APPID', 'appId is missing');
          if (typeof id !== 'string') throw cgiError('ERRCODE_INVALID_FORMAT_APPID', 'appId must be a string');
          const app = await findApp(db, id);
          if (!app || !app.enabled) throw cgiError('ERRCODE_INVALID_APPID', `appId "${id.slice(0, 64)}" is not an enabled app`);
          const enc = fields.encrypt;
          if (enc === undefined || enc === null || enc === '') throw cgiError('ERRCODE_MISS_ENCRYPT', 'encrypt is missing');
          if (typeof enc !== 'string') throw cgiError('ERRCODE_INVALID_FORMAT_ENCRYPT', 'encrypt must be a string');
          const key = aesKey(app.encodingAesKey);
          const stamp = decrypt(enc, key, app.appId).toString('utf8');
          if (!/^\d{1,12}$/.test(stamp)) throw cgiError('ERRCODE_INVALID_ENCRYPT', 'the decrypted encrypt of gettoken must be the current unix time in seconds');
          if (Math.abs(Number(stamp) - now.getTime() / 1000) > CLOCK_SKEW_S) {
            throw cgiError('ERRCODE_INVALID_REQUEST', `the timestamp ${stamp} is more than ${CLOCK_SKEW_S} s from the server's clock: check the caller's clock`);
          }
          // Senders whose ciphertext repeats for equal content (prefixWasIv) are held to the clock window alone.
          if (!prefixWasIv(enc, key)) await rememberEnvelope(db, app.appId, enc, now);
          const token = await issueAccessToken(db, app.appId, now);
          return { kind: 'json', body: { errcode: 0, errmsg: 'ok', encrypt: encrypt(JSON.stringify(token), key, app.appId) } };
        } catch (err) {
          return errorOutput(err);
        }
      },
      async identify(ctx: Context, token: string | undefined, now: Date): Promise<CgiOutput> {
        const createdAt = now.toISOString().replace('T', ' ').slice(0, 19);
        const status = (code: number, message: string) => ({ code, message, createdAt });
        if (!token) return { kind: 'identify', body: { status: status(2, 'token is missing') } };
        const found = await checkSsoToken(db, token, now);
        if (!found) return { kind: 'identify', body: { status: status(10, 'token is invalid or expired') } };
        let user: OrgUser;
        try {
          user = await ctx.call<OrgUser, object>('org.users.get', { id: found.userId });
        } catch {
          return { kind: 'identify', body: { status: status(10, 'token is invalid: the person no longer exists') } };
        }
        if (user.status !== 'active') return { kind: 'identify', body: { status: status(10, `token is invalid: the account is ${user.status}`) } };
        return {
          kind: 'identify',
          body: {
            status: status(0, 'Action completed successful'),
            userInfo: {
              gid: user.id,
              account: user.account,
              chsName: user.name,
              gender: user.gender === 'female' ? 1 : 0,
              mobile: user.mobile ?? '',
              phone: user.phone ?? '',
              email: user.email ?? '',
            },
          },
        };
      },
      async notify(id: string, message: Record<string, unknown>, target?: { url: string; token: string | null }): Promise<string> {
        const packageId = await enqueueCallback(db, id, message, new Date(), target);
        // The first attempt goes out now; the worker takes over the retries.
        setImmediate(() => this.deliverDue());
        return packageId;
      },
      startJob(jobId: string) {
        setImmediate(() => {
          runJob(this.broker as unknown as Caller, db, jobId, (id, msg, target) => this.notify(id, msg, target)).catch((err) => this.logger.error(`open API job ${jobId} failed`, err));
        });
      },
      async deliverDue() {
        if (this.delivering) return;
        this.delivering = true;
        try {
          await this.audit();
          await this.chats();
          await runDue(db, await this.companyBuin(), new Date());
          if (Date.now() - lastPrune > 3600_000) {
            lastPrune = Date.now();
            await pruneTokens(db, new Date());
          }
        } catch (err) {
          this.logger.warn(`open API callbacks: ${(err as Error).message}`);
        } finally {
          this.delivering = false;
        }
      },
    },

    created() {
      const caller = this.broker as unknown as Caller;
      const notify = (id: string, msg: Record<string, unknown>) => this.notify(id, msg);
      // Both follow `message.stored` in the durable log with their own cursors (message-audit.ts, app-chat-follower.ts).
      this.audit = singleFlight(
        () => followAudit(caller, db, notify),
        (err) => this.logger.warn(`open API message audit: ${err.message}`),
      );
      this.chats = singleFlight(
        () =>
          followAppChats(caller, db, {
            enqueue: notify,
            storeMedia: async (id, type, name, bytes) => (await storeMedia({ db, deps: { mediaDir } as CgiDeps, now: new Date() }, id, type, name, bytes)).mediaId,
            warn: (m) => this.logger.warn(`open API app chats: ${m}`),
          }),
        (err) => this.logger.warn(`open API app chats: ${err.message}`),
      );
    },

    async started() {
      await seedSystemApps(db);
      timer = setInterval(() => void this.deliverDue(), WORKER_MS);
      timer.unref();
      // Jobs a stopped server left running are run again: each step makes the directory match the request.
      for (const j of await rows<{ job_id: string }>(db, "SELECT job_id FROM openapi_jobs WHERE result = 1 AND payload IS NOT NULL")) this.startJob(j.job_id);
    },

    async stopped() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}

export { userByAccount };
