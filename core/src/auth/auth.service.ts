import type { Context, ServiceSchema } from 'moleculer';
import type { Transaction } from 'sequelize';
import { recordUserEvent } from '../audit/user-events.ts';
import { qiaoError } from '../errors.ts';
import { ACCOUNT_PATTERN } from '../org/fields.ts';
import { adminAction, type ServiceDeps } from '../services.ts';
import type { AuthCommit } from './auth-write.ts';
import { AuthEngine, type LoginParams } from './engine.ts';
import { parseCidr } from './ip.ts';
import { addExemptions, addRange, listIpRules, rangeCount, removeRule } from './ip-rules.ts';
import { generatePassword } from './password.ts';
import { listSessions, revokeSessions } from './sessions.ts';
import { DEVICE_TYPES, readSettings, writeSettings, ensureSettings, type AuthSettings } from './settings.ts';
import { exec, inList, likePattern, select } from '../db/sql.ts';
import { CREDENTIAL_COLUMNS, credentialsById, publicCredentials, toCredentials } from './users.ts';
import { aesKeyOf, verifyExternal } from './youdu-callback.ts';

const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
const text = (max: number, extra: object = {}) =>
  ({ type: 'string', max, pattern: NO_CONTROL, messages: { stringPattern: "The '{field}' field must not contain control characters." }, ...extra }) as const;
const idParam = { type: 'number', integer: true, positive: true, convert: true } as const;
const userIds = { type: 'array', items: idParam, min: 1, max: 5000 } as const;
const account = {
  type: 'string',
  min: 1,
  max: 64,
  pattern: ACCOUNT_PATTERN,
  messages: { stringPattern: "The 'account' field may hold only letters, digits and . _ @ -" },
} as const;
const password = { type: 'string', min: 1, max: 256 } as const;
const token = { type: 'string', min: 1, max: 512 } as const;
const device = {
  deviceType: { type: 'enum', values: [...DEVICE_TYPES] },
  deviceId: text(128, { min: 1 }),
  deviceName: text(128, { optional: true, nullable: true }),
} as const;
/** Where a client request came from: the gateway's socket peer and the X-Forwarded-For it received. */
const clientAddress = {
  ip: { type: 'string', min: 1, max: 64, optional: true },
  forwardedFor: { type: 'string', max: 2000, optional: true },
} as const;
const paging = {
  page: { type: 'number', integer: true, min: 1, max: 1_000_000, optional: true, convert: true },
  pageSize: { type: 'number', integer: true, min: 1, max: 500, optional: true, convert: true },
} as const;
const flag = { type: 'boolean', optional: true, convert: true } as const;
const int = (min: number, max: number) => ({ type: 'number', integer: true, min, max, optional: true, convert: true }) as const;

export const USER_LISTS = ['authorised', 'unauthorised', 'disabled', 'resigned', 'locked', 'all'] as const;
type UserList = (typeof USER_LISTS)[number];

type AdminMeta = { admin?: { id?: number; account?: string; role?: string } };
const actorOf = (ctx: Context<unknown, AdminMeta>) => (ctx.meta.admin?.account ? `admin:${ctx.meta.admin.account}` : 'system');

type SettingsPatch = Partial<Omit<AuthSettings, 'externalAuth'>> & { externalAuth?: Partial<AuthSettings['externalAuth']> };

/**
 * Accounts and login security: passwords, login with every rule the admin sets, device sessions and their
 * tokens, the authorised / disabled / resigned / locked lists, login IP rules, SMS two-step login and the
 * Youdu-compatible third-party authentication callback. The audit trails it writes are read through `audit`.
 */
export default function authService({ db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('auth service needs storage');
  let engine: AuthEngine;

  return {
    name: 'auth',

    actions: {
      // ---- clients (through the gateway) -------------------------------------------------------------------
      /**
       * `{ token, userId, sessionId, expiresAt, mustChangePassword }`, or `{ needSmsCode, challenge, … }` when
       * two-step login is on: call again with `{ challenge, smsCode }` and the same device.
       */
      login: {
        params: {
          account: { ...account, optional: true },
          password: { ...password, optional: true },
          ...device,
          ...clientAddress,
          ip: { type: 'string', min: 1, max: 64 },
          challenge: { type: 'string', min: 1, max: 100, optional: true },
          smsCode: { type: 'string', pattern: /^\d{4,8}$/, optional: true, messages: { stringPattern: "The 'smsCode' field must be the digits of the code" } },
        },
        handler(ctx: Context<LoginParams>) {
          return engine.login(ctx.params);
        },
      },
      /** Resolves a client token; the gateway and im call this on every connection and request. */
      authenticate: {
        params: { token },
        handler(ctx: Context<{ token: string }>) {
          return engine.authenticate(ctx.params.token);
        },
      },
      logout: {
        params: { token, ...clientAddress },
        async handler(ctx: Context<{ token: string; ip?: string; forwardedFor?: string }>) {
          return engine.logout(ctx.params.token, await engine.requestIp(ctx.params.ip, ctx.params.forwardedFor));
        },
      },
      changePassword: {
        params: { token, oldPassword: password, newPassword: password, ...clientAddress },
        async handler(ctx: Context<{ token: string; oldPassword: string; newPassword: string; ip?: string; forwardedFor?: string }>) {
          const ip = await engine.requestIp(ctx.params.ip, ctx.params.forwardedFor);
          return engine.changePassword(ctx.params.token, ctx.params.oldPassword, ctx.params.newPassword, ip);
        },
      },
      /** The caller's own live sessions (devices), the current one marked. */
      mySessions: {
        params: { token },
        async handler(ctx: Context<{ token: string }>) {
          const me = await engine.authenticate(ctx.params.token);
          const sessions = await listSessions(db, me.userId, engine.now(), false);
          return { sessions: sessions.map((s) => ({ ...s, current: s.id === me.sessionId })) };
        },
      },

      // ---- the lists --------------------------------------------------------------------------------------
      'users.list': adminAction({
        admin: true,
        rest: 'GET /auth/users',
        params: { list: { type: 'enum', values: [...USER_LISTS], optional: true }, search: text(100, { optional: true }), ...paging },
        async handler(ctx: Context<{ list?: UserList; search?: string; page?: number; pageSize?: number }>) {
          const list = ctx.params.list ?? 'authorised';
          const page = ctx.params.page ?? 1;
          const pageSize = ctx.params.pageSize ?? 50;
          const where: string[] = [];
          const args: unknown[] = [];
          if (list === 'authorised') (where.push('authorised = ?'), args.push(true));
          if (list === 'unauthorised') (where.push("authorised = ? AND status = 'active'"), args.push(false));
          if (list === 'disabled') where.push("status = 'disabled'");
          if (list === 'resigned') where.push("status = 'resigned'");
          if (list === 'locked') where.push('locked_at IS NOT NULL');
          if (ctx.params.search) {
            const pattern = likePattern(ctx.params.search.toLowerCase());
            where.push("(LOWER(account) LIKE ? ESCAPE '\\' OR LOWER(name) LIKE ? ESCAPE '\\')");
            args.push(pattern, pattern);
          }
          const w = where.length ? ` WHERE ${where.join(' AND ')}` : '';
          const [{ n }] = await select<{ n: number | string }>(db, `SELECT COUNT(*) AS n FROM users${w}`, args);
          const rows = await select<Record<string, unknown>>(db, `SELECT ${CREDENTIAL_COLUMNS} FROM users${w} ORDER BY account, id LIMIT ? OFFSET ?`, [...args, pageSize, (page - 1) * pageSize]);
          const settings = await readSettings(db);
          const now = engine.now();
          return { list, total: Number(n), page, pageSize, users: rows.map((r) => publicCredentials(toCredentials(r), now, settings.passwordExpiryDays)) };
        },
      }),
      'users.get': adminAction({
        admin: true,
        rest: 'GET /auth/users/:userId',
        params: { userId: idParam },
        async handler(ctx: Context<{ userId: number }>) {
          const settings = await readSettings(db);
          const now = engine.now();
          const user = publicCredentials(await credentialsById(db, ctx.params.userId), now, settings.passwordExpiryDays);
          const [exempt] = await select(db, "SELECT id FROM login_ip_rules WHERE kind = 'exempt' AND user_id = ?", [ctx.params.userId]);
          return { ...user, ipExempt: exempt !== undefined, sessions: await listSessions(db, ctx.params.userId, now, false) };
        },
      }),
      'users.authorise': adminAction({
        admin: true,
        rest: 'POST /auth/users/authorise',
        params: { userIds },
        async handler(ctx: Context<{ userIds: number[] }, AdminMeta>) {
          const seats = await engine.seatLimit();
          return engine.write(async (w) => {
            const users = await this.loadUsers(ctx.params.userIds, w.t);
            users.forEach((u: { status: string; account: string }, i: number) => {
              if (u.status === 'resigned') throw qiaoError('QIAO_CONFLICT', `userIds[${i}]: "${u.account}" has left the company; restore the person first`, { field: `userIds[${i}]` });
            });
            const todo = users.filter((u: { authorised: boolean }) => !u.authorised);
            await engine.authoriseInTx(w, todo, seats, actorOf(ctx));
            return { authorised: todo.map((u: { id: number }) => u.id), seats };
          });
        },
      }),
      'users.deauthorise': adminAction({
        admin: true,
        rest: 'POST /auth/users/deauthorise',
        params: { userIds },
        async handler(ctx: Context<{ userIds: number[] }, AdminMeta>) {
          return engine.write(async (w) => {
            const users = (await this.loadUsers(ctx.params.userIds, w.t)).filter((u: { authorised: boolean }) => u.authorised);
            if (!users.length) return { deauthorised: [] };
            const ids = users.map((u: { id: number }) => u.id);
            await exec(db, `UPDATE users SET authorised = ?, updated_at = ? WHERE id IN ${inList(ids.length)}`, [false, w.now, ...ids], w.t);
            await revokeSessions(db, w, { userIds: ids }, 'deauthorised');
            for (const u of users) {
              await recordUserEvent(db, w.t, { userId: u.id, account: u.account, event: 'deauthorised', actor: actorOf(ctx), at: w.now });
              w.events.push({ topic: 'auth.user.changed', subject: `user:${u.id}`, payload: { userId: u.id, change: 'deauthorised' } });
            }
            return { deauthorised: ids };
          });
        },
      }),
      'users.unlock': adminAction({
        admin: true,
        rest: 'POST /auth/users/unlock',
        params: { userIds },
        async handler(ctx: Context<{ userIds: number[] }, AdminMeta>) {
          return engine.write(async (w) => {
            const users = (await this.loadUsers(ctx.params.userIds, w.t)).filter((u: { locked: boolean; failedAttempts: number }) => u.locked || u.failedAttempts > 0);
            if (!users.length) return { unlocked: [] };
            const ids = users.map((u: { id: number }) => u.id);
            await exec(db, `UPDATE users SET locked_at = NULL, failed_attempts = 0, updated_at = ? WHERE id IN ${inList(ids.length)}`, [w.now, ...ids], w.t);
            for (const u of users.filter((x: { locked: boolean }) => x.locked)) {
              await recordUserEvent(db, w.t, { userId: u.id, account: u.account, event: 'unlocked', actor: actorOf(ctx), at: w.now });
              w.events.push({ topic: 'auth.user.changed', subject: `user:${u.id}`, payload: { userId: u.id, change: 'unlocked' } });
            }
            return { unlocked: users.filter((x: { locked: boolean }) => x.locked).map((u: { id: number }) => u.id) };
          });
        },
      }),
      'users.setPassword': adminAction({
        admin: true,
        rest: 'POST /auth/users/:userId/password',
        params: { userId: idParam, password: { ...password, optional: true }, mustChange: flag },
        async handler(ctx: Context<{ userId: number; password?: string; mustChange?: boolean }, AdminMeta>) {
          const generated = ctx.params.password === undefined;
          const pw = ctx.params.password ?? generatePassword();
          // A password an admin knows is the person's to replace, unless the admin says otherwise.
          await engine.setPassword(ctx.params.userId, pw, ctx.params.mustChange ?? true, actorOf(ctx));
          return { userId: ctx.params.userId, password: generated ? pw : undefined };
        },
      }),
      'users.requirePasswordChange': adminAction({
        admin: true,
        rest: 'POST /auth/users/require-password-change',
        params: { userIds, required: flag },
        async handler(ctx: Context<{ userIds: number[]; required?: boolean }, AdminMeta>) {
          const required = ctx.params.required ?? true;
          return engine.write(async (w) => {
            const users = await this.loadUsers(ctx.params.userIds, w.t);
            const ids = users.map((u: { id: number }) => u.id);
            await exec(db, `UPDATE users SET must_change_password = ?, updated_at = ? WHERE id IN ${inList(ids.length)}`, [required, w.now, ...ids], w.t);
            for (const u of users) {
              await recordUserEvent(db, w.t, { userId: u.id, account: u.account, event: required ? 'password.changeRequired' : 'password.changeWaived', actor: actorOf(ctx), at: w.now });
            }
            return { userIds: ids, required };
          });
        },
      }),

      // ---- sessions ---------------------------------------------------------------------------------------
      'sessions.list': adminAction({
        admin: true,
        rest: 'GET /auth/users/:userId/sessions',
        params: { userId: idParam, includeEnded: flag },
        async handler(ctx: Context<{ userId: number; includeEnded?: boolean }>) {
          await credentialsById(db, ctx.params.userId);
          return { sessions: await listSessions(db, ctx.params.userId, engine.now(), ctx.params.includeEnded ?? false) };
        },
      }),
      'sessions.revoke': adminAction({
        admin: true,
        rest: 'POST /auth/sessions/:sessionId/revoke',
        params: { sessionId: idParam },
        async handler(ctx: Context<{ sessionId: number }, AdminMeta>) {
          const [s] = await select(db, 'SELECT id FROM user_sessions WHERE id = ?', [ctx.params.sessionId]);
          if (!s) throw qiaoError('QIAO_NOT_FOUND', `session ${ctx.params.sessionId} does not exist`, { field: 'sessionId' });
          return { revoked: await engine.revokeUserSessions({ sessionId: ctx.params.sessionId }, 'forced-offline', actorOf(ctx)) };
        },
      }),
      /** Forces every device of the person offline. */
      'users.kick': adminAction({
        admin: true,
        rest: 'POST /auth/users/:userId/kick',
        params: { userId: idParam },
        async handler(ctx: Context<{ userId: number }, AdminMeta>) {
          await credentialsById(db, ctx.params.userId);
          return { revoked: await engine.revokeUserSessions({ userIds: [ctx.params.userId] }, 'forced-offline', actorOf(ctx)) };
        },
      }),
      /**
       * Orders the device to erase its local data. The session stays usable so the order reaches it
       * (`wipe: true` in every authenticate answer and in the session list, and in the refusal once the
       * session has ended); the device logs out when done, which ends the session as "wiped".
       */
      'sessions.wipe': adminAction({
        admin: true,
        rest: 'POST /auth/sessions/:sessionId/wipe',
        params: { sessionId: idParam },
        async handler(ctx: Context<{ sessionId: number }, AdminMeta>) {
          const [s] = await select<{ user_id: number; account: string }>(db, 'SELECT s.user_id, u.account FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?', [
            ctx.params.sessionId,
          ]);
          if (!s) throw qiaoError('QIAO_NOT_FOUND', `session ${ctx.params.sessionId} does not exist`, { field: 'sessionId' });
          const userId = Number(s.user_id);
          await engine.write(async (w) => {
            await exec(db, 'UPDATE user_sessions SET remote_wipe = ? WHERE id = ?', [true, ctx.params.sessionId], w.t);
            await recordUserEvent(db, w.t, { userId, account: s.account, event: 'session.wipe', actor: actorOf(ctx), detail: { sessionId: ctx.params.sessionId }, at: w.now });
            w.events.push({ topic: 'auth.session.wipe', subject: `user:${userId}`, payload: { sessionId: ctx.params.sessionId, userId } });
          });
          this.announce('auth.session.wipe', { sessionId: ctx.params.sessionId, userId });
          return { sessionId: ctx.params.sessionId, wipe: true };
        },
      }),

      // ---- settings and rules -----------------------------------------------------------------------------
      'settings.get': adminAction({
        admin: true,
        rest: 'GET /auth/settings',
        handler() {
          return readSettings(db);
        },
      }),
      'settings.set': adminAction({
        admin: 'super',
        rest: 'PUT /auth/settings',
        params: {
          strongPassword: flag,
          passwordExpiryDays: int(0, 3650),
          lockoutThreshold: int(0, 100),
          autoAuthorise: flag,
          allowedDeviceTypes: { type: 'array', items: { type: 'enum', values: [...DEVICE_TYPES] }, unique: true, max: DEVICE_TYPES.length, optional: true },
          onePerDeviceType: flag,
          ipRestriction: flag,
          smsTwoFactor: flag,
          smsCodeTtlSeconds: int(30, 3600),
          sessionDays: int(1, 365),
          trustedProxies: { type: 'array', items: { type: 'string', min: 1, max: 64 }, max: 100, optional: true },
          externalAuth: {
            type: 'object',
            optional: true,
            strict: true,
            props: {
              url: { type: 'string', max: 2000, optional: true, nullable: true },
              token: { type: 'string', pattern: /^[A-Za-z0-9]{1,64}$/, optional: true, messages: { stringPattern: "The 'externalAuth.token' field must be 1–64 letters and digits" } },
              appId: { type: 'string', pattern: /^[A-Za-z0-9_.-]{1,64}$/, optional: true, messages: { stringPattern: "The 'externalAuth.appId' field must be 1–64 letters, digits and _ . -" } },
              encodingAesKey: {
                type: 'string',
                pattern: /^[A-Za-z0-9+/]{43}=?$/,
                optional: true,
                messages: { stringPattern: "The 'externalAuth.encodingAesKey' field must be the base64 of 32 bytes (43 characters and an optional =)" },
              },
              timeoutMs: int(100, 60_000),
            },
          },
        },
        async handler(ctx: Context<SettingsPatch>) {
          const patch = ctx.params;
          for (const [i, c] of (patch.trustedProxies ?? []).entries()) {
            const p = parseCidr(c);
            if ('problem' in p) throw qiaoError('QIAO_VALIDATION', `trustedProxies[${i}]: ${p.problem}`, { field: `trustedProxies[${i}]` });
          }
          if (patch.externalAuth?.url) {
            let url: URL | null = null;
            try {
              url = new URL(patch.externalAuth.url);
            } catch {
              url = null;
            }
            if (!url || !['http:', 'https:'].includes(url.protocol)) {
              throw qiaoError('QIAO_VALIDATION', 'externalAuth.url must be an http:// or https:// URL', { field: 'externalAuth.url' });
            }
          }
          if (patch.externalAuth?.encodingAesKey !== undefined) aesKeyOf(patch.externalAuth.encodingAesKey);
          if (patch.allowedDeviceTypes && patch.allowedDeviceTypes.length === 0) {
            throw qiaoError('QIAO_VALIDATION', 'allowedDeviceTypes must name at least one device type, or nobody could log in', { field: 'allowedDeviceTypes' });
          }
          return db.transaction(async (t) => {
            const current = await readSettings(db, t);
            const next: AuthSettings = {
              ...current,
              ...Object.fromEntries(Object.entries(patch).filter(([k, v]) => v !== undefined && k !== 'externalAuth')),
              trustedProxies: patch.trustedProxies ? patch.trustedProxies.map((c) => (parseCidr(c) as { cidr: string }).cidr) : current.trustedProxies,
              externalAuth: { ...current.externalAuth, ...Object.fromEntries(Object.entries(patch.externalAuth ?? {}).filter(([, v]) => v !== undefined)) },
            };
            next.externalAuth.url = next.externalAuth.url || null;
            if (next.ipRestriction && !current.ipRestriction && (await rangeCount(db, t)) === 0) {
              throw qiaoError('QIAO_CONFLICT', 'add at least one internal range (POST /auth/ip-rules/ranges) before switching login IP restriction on, or nobody but exempt people could log in', {
                field: 'ipRestriction',
              });
            }
            await writeSettings(db, next, t);
            return next;
          });
        },
      }),
      'ipRules.list': adminAction({
        admin: true,
        rest: 'GET /auth/ip-rules',
        async handler() {
          const settings = await readSettings(db);
          return { enabled: settings.ipRestriction, ...(await listIpRules(db)) };
        },
      }),
      'ipRules.addRange': adminAction({
        admin: true,
        rest: 'POST /auth/ip-rules/ranges',
        params: { cidr: { type: 'string', min: 1, max: 64 }, note: text(200, { optional: true, nullable: true }) },
        handler(ctx: Context<{ cidr: string; note?: string | null }>) {
          return db.transaction((t) => addRange(db, t, ctx.params.cidr, ctx.params.note ?? null, engine.now()));
        },
      }),
      'ipRules.addExemptions': adminAction({
        admin: true,
        rest: 'POST /auth/ip-rules/exemptions',
        params: { userIds, note: text(200, { optional: true, nullable: true }) },
        async handler(ctx: Context<{ userIds: number[]; note?: string | null }, AdminMeta>) {
          return engine.write(async (w) => {
            const added = await addExemptions(db, w.t, ctx.params.userIds, ctx.params.note ?? null, w.now);
            for (const id of added) {
              const [u] = await select<{ account: string }>(db, 'SELECT account FROM users WHERE id = ?', [id], w.t);
              await recordUserEvent(db, w.t, { userId: id, account: u.account, event: 'ip.exempted', actor: actorOf(ctx), at: w.now });
            }
            return { added };
          });
        },
      }),
      'ipRules.remove': adminAction({
        admin: true,
        rest: 'DELETE /auth/ip-rules/:id',
        params: { id: idParam },
        async handler(ctx: Context<{ id: number }, AdminMeta>) {
          return engine.write(async (w) => {
            const settings = await readSettings(db, w.t);
            const removed = await removeRule(db, w.t, ctx.params.id, settings.ipRestriction);
            if (removed.userId !== null) {
              const [u] = await select<{ account: string }>(db, 'SELECT account FROM users WHERE id = ?', [removed.userId], w.t);
              await recordUserEvent(db, w.t, { userId: removed.userId, account: u?.account ?? null, event: 'ip.exemptionRemoved', actor: actorOf(ctx), at: w.now });
            }
            return { id: ctx.params.id, ...removed };
          });
        },
      }),
      /** Tries the third-party authentication callback with a test account, without logging anyone in. */
      'externalAuth.test': adminAction({
        admin: 'super',
        rest: 'POST /auth/external-auth/test',
        params: { account: { type: 'string', min: 1, max: 64 }, password },
        async handler(ctx: Context<{ account: string; password: string }>) {
          const settings = await readSettings(db);
          const ext = settings.externalAuth;
          if (!ext.url) throw qiaoError('QIAO_CONFLICT', 'no third-party authentication URL is configured (externalAuth.url)', { field: 'externalAuth.url' });
          const verdict = await verifyExternal({ ...ext, url: ext.url, buin: await engine.buin() }, ctx.params.account, ctx.params.password, engine.now());
          return { url: ext.url, verdict };
        },
      }),
    },

    events: {
      // Wake-up only: authenticate refuses disabled and resigned people anyway, and `started` catches up.
      async 'org.user.statusChanged'(ctx: Context<{ userId: number; status: string }>) {
        const { userId, status } = ctx.params ?? ({} as { userId: number; status: string });
        if (!Number.isInteger(userId) || typeof status !== 'string') return;
        try {
          await engine.statusChanged(userId, status);
        } catch (err) {
          this.logger.warn(`auth: reacting to the status change of user ${userId} failed: ${(err as Error).message}`);
        }
      },
    },

    methods: {
      /** The clock every expiry decision uses; tests replace it to travel in time. */
      now(): Date {
        return new Date();
      },
      /** The users named, in order, with their credential state; an unknown id is an error naming its index. */
      async loadUsers(ids: number[], t?: Transaction) {
        const unique = [...new Set(ids)];
        const rows = await select<Record<string, unknown>>(db, `SELECT ${CREDENTIAL_COLUMNS} FROM users WHERE id IN ${inList(unique.length)}`, unique, t);
        const byId = new Map(rows.map((r) => [Number(r.id), toCredentials(r)]));
        return unique.map((id) => {
          const u = byId.get(id);
          if (!u) throw qiaoError('QIAO_NOT_FOUND', `userIds[${ids.indexOf(id)}]: user ${id} does not exist`, { field: `userIds[${ids.indexOf(id)}]` });
          return { ...u, locked: u.lockedAt !== null };
        });
      },
      announce(name: string, payload: unknown) {
        Promise.resolve(this.broker.broadcast(name, payload)).catch((err: Error) => this.logger.warn(`broadcast ${name} failed: ${err.message}`));
      },
      publish(commit: AuthCommit<unknown>) {
        // Gateways close the sockets of ended sessions; a lost event costs nothing, as authenticate refuses them.
        for (const r of commit.revoked) this.announce('auth.session.revoked', r);
        for (const l of commit.logged) this.announce('eventlog.appended', l);
      },
    },

    created() {
      engine = new AuthEngine({ db, broker: this.broker, now: () => this.now(), publish: (c) => this.publish(c) });
    },

    async started() {
      await ensureSettings(db);
      await engine.dummyHash();
      await engine.reconcile();
    },
  };
}
