import type { Context } from 'moleculer';
import { CUSTOM, type CgiRequest, type CgiRoute } from './cgi.ts';
import { userByAccount, type OrgUser } from './cgi-org.ts';
import { findMedia, readMedia } from './cgi-media.ts';
import { jsonCast, rows, run, type AppKind } from './app-store.ts';
import { cgiError, fromQiaoError } from './errcodes.ts';
import { absent, obj, optBool, optInt, optString, pipeList, reqString } from './params.ts';

/**
 * App messages (docs/api/c01_00003.md, c01_00005.md, c01_00006.md). Each send is recorded in
 * `openapi_app_messages` (what the app sent, to whom). A custom app's messages land in each person's chat
 * with the app (im `apps.send`), where the person can answer; system apps' notices (sysMsg, SMS, mail,
 * pop-ups) are im broadcasts with the app's name as title. Both wait in the inbox of offline people.
 */

/** Which app kind may send which msgType; any other pairing is Youdu's "invalid appId". */
const SENDERS: Record<string, AppKind[]> = {
  text: CUSTOM,
  image: CUSTOM,
  file: CUSTOM,
  mpnews: CUSTOM,
  link: CUSTOM,
  exlink: CUSTOM,
  sysMsg: ['sysMsgAssistant'],
  sms: ['sysSmsAssistant'],
  mail: ['sysExmailAssistant'],
};

const MAX_USERS = 1000;
const MAX_DEPTS = 100;
const trim = (s: string | undefined, n: number) => (s === undefined ? undefined : [...s].slice(0, n).join(''));

interface Recipients {
  all: boolean;
  userIds: number[];
  departmentIds: number[];
  invalidUsers: string[];
}

async function resolveRecipients(req: CgiRequest, opts: { required: boolean }): Promise<Recipients> {
  const accounts = pipeList(req.params, 'toUser', 'ERRCODE_INVALID_TOUSER');
  const depts = pipeList(req.params, 'toDept', 'ERRCODE_INVALID_REQUEST');
  if (accounts.length > MAX_USERS) throw cgiError('ERRCODE_TOUSER_OVERLIMIT', `toUser lists ${accounts.length} people; at most ${MAX_USERS}`);
  if (depts.length > MAX_DEPTS) throw cgiError('ERRCODE_INVALID_REQUEST', `toDept lists ${depts.length} departments; at most ${MAX_DEPTS}`);
  const out: Recipients = { all: false, userIds: [], departmentIds: [], invalidUsers: [] };
  for (const a of new Set(accounts)) {
    try {
      out.userIds.push((await userByAccount(req.ctx, a)).id);
    } catch {
      out.invalidUsers.push(a);
    }
  }
  const known = new Set((await req.ctx.call<{ departments: Array<{ id: number }> }>('org.departments.list')).departments.map((d) => d.id));
  for (const d of depts) {
    if (!/^\d{1,10}$/.test(d)) throw cgiError('ERRCODE_INVALID_REQUEST', `toDept "${d}" is not a department id`);
    const id = Number(d);
    if (id === 0) out.all = true;
    else if (known.has(id)) out.departmentIds.push(id);
    else throw cgiError('ERRCODE_DEPT_NOT_EXIST', `toDept: department ${id} does not exist`);
  }
  if (opts.required && !out.all && !out.userIds.length && !out.departmentIds.length) {
    if (out.invalidUsers.length) throw cgiError('ERRCODE_INVALID_TOUSER', `invalid toUser: ${out.invalidUsers.join('|')}`);
    throw cgiError('ERRCODE_INVALID_TOUSER', 'toUser and toDept are both empty');
  }
  return out;
}

interface Delivery {
  /** Into each person's chat with the app, rather than as a broadcast. */
  chat?: boolean;
  type: 'system' | 'text' | 'link' | 'card' | 'image' | 'file';
  title?: string;
  body: Record<string, unknown>;
  popupSeconds?: number | null;
  onlineOnly?: boolean;
}

const httpUrl = (u: string | undefined, field: string): string => {
  if (!u) throw cgiError('ERRCODE_INVALID_REQUEST', `${field} is missing`);
  try {
    const p = new URL(u);
    if (p.protocol === 'http:' || p.protocol === 'https:') return u;
  } catch {
    /* fall through */
  }
  throw cgiError('ERRCODE_INVALID_REQUEST', `${field} is not an http(s) URL`);
};

async function mediaName(req: CgiRequest, id: unknown, field: string): Promise<string> {
  if (typeof id !== 'string' || !id) throw cgiError('ERRCODE_FILE_NOTEXIST', `${field} is missing`);
  const m = await findMedia(req, id);
  if (!m) throw cgiError('ERRCODE_FILE_NOTEXIST', `${field} "${id.slice(0, 64)}" does not exist`);
  return m.name;
}

/** Builds what people receive from Youdu's message JSON; every field is checked before anything is written. */
async function toDelivery(req: CgiRequest, msgType: string, appName: string): Promise<Delivery> {
  const p = req.params;
  const part = (name: string) => {
    const v = obj(p, name, 'ERRCODE_INVALID_REQUEST');
    if (!v) throw cgiError('ERRCODE_INVALID_REQUEST', `${name} is missing`);
    return v;
  };
  switch (msgType) {
    case 'text': {
      const content = trim(reqString(part('text'), 'content', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 100_000), 600)!;
      return { chat: true, type: 'text', title: appName, body: { text: content } };
    }
    case 'image':
    case 'file': {
      const id = part(msgType).media_id;
      await mediaName(req, id, `${msgType}.media_id`);
      const { media, bytes } = await readMedia(req, String(id), `${msgType}.media_id`);
      const kind = msgType === 'image' && media.type === 'image' ? 'image' : 'file';
      const f = await req.ctx
        .call<{ id: string; name: string; size: number; sha256: string }, object>('im.apps.file', { name: media.name, kind, data: bytes.toString('base64') })
        .catch((err) => {
          throw fromQiaoError(err, { notFound: 'ERRCODE_FILE_NOTEXIST' });
        });
      return { chat: true, type: msgType, body: { fileId: f.id, name: f.name, size: f.size, sha256: f.sha256 } };
    }
    case 'link': {
      const l = part('link');
      const title = trim(reqString(l, 'title', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 10_000), 64)!;
      const url = httpUrl(optString(l, 'url', 'ERRCODE_INVALID_REQUEST', 2048), 'link.url');
      const action = optInt(l, 'action', 'ERRCODE_INVALID_REQUEST', { min: 0, max: 1 }) ?? 0;
      return { chat: true, type: 'link', title: appName, body: { title, url, appendSsoToken: action === 1 } };
    }
    case 'mpnews':
    case 'exlink': {
      const list = p[msgType];
      if (!Array.isArray(list) || list.length === 0 || list.length > 5) throw cgiError('ERRCODE_INVALID_REQUEST', `${msgType} must list 1 to 5 articles`);
      const articles = [];
      for (const [i, a] of list.entries()) {
        if (typeof a !== 'object' || a === null) throw cgiError('ERRCODE_INVALID_REQUEST', `${msgType}[${i}] must be an object`);
        const art = a as Record<string, unknown>;
        const title = trim(reqString(art, 'title', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 10_000), 64)!;
        if (!absent(art.media_id)) await mediaName(req, art.media_id, `${msgType}[${i}].media_id`);
        const digest = trim(optString(art, 'digest', 'ERRCODE_INVALID_REQUEST', 10_000), 120);
        const content = trim(optString(art, 'content', 'ERRCODE_INVALID_REQUEST', 100_000), 500);
        const description = digest ?? (msgType === 'mpnews' ? content : undefined);
        const url = msgType === 'exlink' ? httpUrl(optString(art, 'url', 'ERRCODE_INVALID_REQUEST', 2048), `exlink[${i}].url`) : undefined;
        articles.push({ title, ...(description ? { description } : {}), ...(url ? { url } : {}) });
      }
      return { chat: true, type: 'card', title: appName, body: { articles } };
    }
    case 'sysMsg': {
      const s = part('sysMsg');
      const title = trim(optString(s, 'title', 'ERRCODE_INVALID_REQUEST', 10_000), 64);
      const msg = s.msg;
      if (!Array.isArray(msg) || msg.length === 0) throw cgiError('ERRCODE_INVALID_REQUEST', 'sysMsg.msg must list text and link items');
      const texts: string[] = [];
      const links: Array<{ title: string; url: string; appendSsoToken: boolean }> = [];
      for (const [i, item] of msg.entries()) {
        const it = (item ?? {}) as Record<string, unknown>;
        const t = obj(it, 'text', 'ERRCODE_INVALID_REQUEST');
        const l = obj(it, 'link', 'ERRCODE_INVALID_REQUEST');
        if (t) texts.push(trim(reqString(t, 'content', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 100_000), 600)!);
        else if (l) {
          links.push({
            title: trim(reqString(l, 'title', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 10_000), 64)!,
            url: httpUrl(optString(l, 'url', 'ERRCODE_INVALID_REQUEST', 2048), `sysMsg.msg[${i}].link.url`),
            appendSsoToken: optInt(l, 'action', 'ERRCODE_INVALID_REQUEST', { min: 0, max: 1 }) === 1,
          });
        } else throw cgiError('ERRCODE_INVALID_REQUEST', `sysMsg.msg[${i}] must hold text or link`);
      }
      const pop = optInt(s, 'popDuration', 'ERRCODE_INVALID_REQUEST');
      const toAll = obj(p, 'toAll', 'ERRCODE_INVALID_REQUEST');
      // Youdu's own docs spell it "onliyOnline"; both spellings are read.
      const onlineOnly = toAll ? (optBool(toAll, 'onlyOnline') ?? optBool(toAll, 'onliyOnline') ?? false) : false;
      return {
        type: 'system',
        title: title ?? appName,
        body: { ...(title ? { title } : {}), text: texts.join('\n') || title || appName, ...(links.length ? { links } : {}) },
        popupSeconds: pop === undefined || pop <= 0 ? null : Math.min(3600, Math.max(6, pop)),
        onlineOnly,
      };
    }
    case 'sms': {
      const s = part('sms');
      const from = reqString(s, 'from', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 64);
      const content = trim(reqString(s, 'content', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 100_000), 600)!;
      return { type: 'text', title: `短信 ${from}`, body: { text: `${from}: ${content}` } };
    }
    case 'mail': {
      const m = part('mail');
      const action = optString(m, 'action', 'ERRCODE_INVALID_REQUEST', 16) ?? 'new';
      if (action !== 'new' && action !== 'unread') throw cgiError('ERRCODE_INVALID_REQUEST', 'mail.action must be "new" or "unread"');
      if (action === 'unread') {
        const n = optInt(m, 'unreadCount', 'ERRCODE_INVALID_REQUEST', { min: 0 }) ?? 0;
        return { type: 'system', title: appName, body: { title: appName, text: `您有 ${n} 封未读邮件` } };
      }
      const subject = trim(optString(m, 'subject', 'ERRCODE_INVALID_REQUEST', 10_000), 200) ?? '';
      const sender = optString(m, 'fromUser', 'ERRCODE_INVALID_REQUEST', 200) ?? optString(m, 'fromEmail', 'ERRCODE_INVALID_REQUEST', 200) ?? '';
      const link = optString(m, 'link', 'ERRCODE_INVALID_REQUEST', 2048);
      return {
        type: 'system',
        title: appName,
        body: { title: `新邮件：${subject || '(无主题)'}`, text: sender ? `发件人：${sender}` : '新邮件', ...(link ? { links: [{ title: '打开邮件', url: httpUrl(link, 'mail.link') }] } : {}) },
      };
    }
    default:
      throw cgiError('ERRCODE_INVALID_REQUEST', `msgType "${msgType}" is not supported`);
  }
}

/** Mail recipients by address when no account is given (toEmail), looked up in the directory. */
async function usersByEmail(ctx: Context, emails: string[]): Promise<{ ids: number[]; invalid: string[] }> {
  const { users } = await ctx.call<{ users: OrgUser[] }, object>('org.users.byEmail', { emails });
  const found = new Set(users.map((u) => u.email?.toLowerCase()));
  return { ids: users.map((u) => u.id), invalid: emails.filter((e) => !found.has(e.trim().toLowerCase())) };
}

export async function deliver(req: CgiRequest, msgType: string, r: Recipients, d: Delivery): Promise<{ broadcastId?: number; recipientCount: number }> {
  const audience = {
    ...(r.all ? { all: true } : {}),
    ...(r.userIds.length ? { userIds: r.userIds } : {}),
    ...(r.departmentIds.length ? { departmentIds: r.departmentIds, includeSubDepartments: true } : {}),
  };
  const delivery = d.chat ? await toChats(req, audience, d) : await toBroadcast(req, audience, d);
  await run(req.db, `INSERT INTO openapi_app_messages (app_id, msg_type, recipients, message, delivery, created_at) VALUES (?, ?, ${jsonCast(req.db)}, ${jsonCast(req.db)}, ${jsonCast(req.db)}, ?)`, [
    req.app.appId,
    msgType,
    JSON.stringify({ all: r.all, userIds: r.userIds, departmentIds: r.departmentIds }),
    JSON.stringify(req.params),
    JSON.stringify(delivery),
    req.now,
  ]);
  return delivery;
}

async function toChats(req: CgiRequest, audience: object, d: Delivery): Promise<{ recipientCount: number }> {
  const sent = await req.ctx
    .call<{ messages: unknown[] }, object>('im.apps.send', { appId: req.app.appId, appName: req.app.name.slice(0, 100), audience, type: d.type, body: d.body }, { timeout: 600_000 })
    .catch((err) => {
      throw fromQiaoError(err, { notFound: 'ERRCODE_INVALID_TOUSER' });
    });
  return { recipientCount: sent.messages.length };
}

async function toBroadcast(req: CgiRequest, audience: object, d: Delivery): Promise<{ broadcastId: number; recipientCount: number }> {
  const b = await req.ctx
    .call<{ id: number; recipientCount: number }, object>('im.broadcasts.send', {
      audience,
      type: d.type,
      ...(d.title ? { title: d.title.slice(0, 200) } : {}),
      body: d.body,
      ...(d.popupSeconds !== undefined ? { popupSeconds: d.popupSeconds } : {}),
      ...(d.onlineOnly ? { onlineOnly: true } : {}),
    })
    .catch((err) => {
      throw fromQiaoError(err, { notFound: 'ERRCODE_INVALID_TOUSER' });
    });
  return { broadcastId: b.id, recipientCount: b.recipientCount };
}

export const messageRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/msg/send'],
    methods: ['POST'],
    apps: 'any',
    async handler(req) {
      const msgType = reqString(req.params, 'msgType', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 32);
      const allowed = SENDERS[msgType];
      if (!allowed) throw cgiError('ERRCODE_INVALID_REQUEST', `msgType "${msgType}" is not supported`);
      if (!allowed.includes(req.app.kind)) throw cgiError('ERRCODE_INVALID_APPID', `msgType "${msgType}" is sent by ${allowed.join(' or ')}, not by ${req.app.kind === 'app' ? 'a custom app' : req.app.kind}: invalid appId`);
      let recipients: Recipients;
      if (msgType === 'mail' && absent(req.params.toUser) && !absent(req.params.toEmail)) {
        const emails = pipeList(req.params, 'toEmail', 'ERRCODE_INVALID_TOUSER');
        if (emails.length > MAX_USERS) throw cgiError('ERRCODE_TOUSER_OVERLIMIT', `toEmail lists ${emails.length}; at most ${MAX_USERS}`);
        const found = await usersByEmail(req.ctx, emails);
        if (!found.ids.length) throw cgiError('ERRCODE_INVALID_TOUSER', `invalid toEmail: ${found.invalid.join('|')}`);
        recipients = { all: false, userIds: found.ids, departmentIds: [], invalidUsers: found.invalid };
      } else {
        const toAll = msgType === 'sysMsg' ? obj(req.params, 'toAll', 'ERRCODE_INVALID_REQUEST') : undefined;
        recipients = await resolveRecipients(req, { required: !toAll });
        if (toAll) recipients.all = true;
      }
      const delivery = await toDelivery(req, msgType, req.app.name);
      await deliver(req, msgType, recipients, delivery);
      // Youdu names the unknown receivers in errmsg and still delivers to the others.
      return recipients.invalidUsers.length ? { __errmsg: `invalid toUser: ${recipients.invalidUsers.join('|')}` } : null;
    },
  },
  {
    paths: ['/cgi/set.ent.notice'],
    methods: ['POST'],
    apps: CUSTOM,
    envelopeOnly: true,
    async handler(req) {
      const user = await userByAccount(req.ctx, reqString(req.params, 'account', 'ERRCODE_MISS_USERID', 'ERRCODE_INVALID_FORMAT_USERID', 64), 'account');
      const count = optInt(req.params, 'count', 'ERRCODE_INVALID_REQUEST', { min: 0, max: 1_000_000 });
      if (count === undefined) throw cgiError('ERRCODE_INVALID_REQUEST', 'count is missing');
      const tip = trim(optString(req.params, 'tip', 'ERRCODE_INVALID_REQUEST', 10_000), 200) ?? null;
      await run(
        req.db,
        `INSERT INTO openapi_badges (app_id, user_id, count, tip, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (app_id, user_id) DO UPDATE SET count = excluded.count, tip = excluded.tip, updated_at = excluded.updated_at`,
        [req.app.appId, user.id, count, tip, req.now],
      );
      req.broker.broadcast('apps.badge.changed', { appId: req.app.appId, userId: user.id, count, tip });
      return null;
    },
  },
  {
    paths: ['/cgi/popwindow'],
    methods: ['POST'],
    apps: CUSTOM,
    envelopeOnly: true,
    async handler(req) {
      const recipients = await resolveRecipients(req, { required: true });
      const w = obj(req.params, 'popWindow', 'ERRCODE_INVALID_REQUEST');
      if (!w) throw cgiError('ERRCODE_INVALID_REQUEST', 'popWindow is missing');
      const url = optString(w, 'url', 'ERRCODE_INVALID_REQUEST', 2048);
      const tip = optString(w, 'tip', 'ERRCODE_INVALID_REQUEST', 10_000);
      if (!url && !tip) throw cgiError('ERRCODE_INVALID_REQUEST', 'popWindow needs url or tip');
      const title = trim(optString(w, 'title', 'ERRCODE_INVALID_REQUEST', 10_000), 64) ?? req.app.name;
      const duration = optInt(w, 'duration', 'ERRCODE_INVALID_REQUEST');
      for (const k of ['width', 'height', 'position', 'pop_mode']) optInt(w, k, 'ERRCODE_INVALID_REQUEST');
      const d: Delivery = {
        type: 'system',
        title,
        body: { title, text: tip || title, ...(url ? { links: [{ title, url: httpUrl(url, 'popWindow.url') }] } : {}) },
        popupSeconds: duration === -1 ? null : Math.min(3600, Math.max(6, duration || 5)),
      };
      const noticeId = optString(w, 'notice_id', 'ERRCODE_INVALID_REQUEST', 64);
      if (noticeId) {
        // notice_id keeps one pop-up per notice: a repeat of the same id is acknowledged and not shown again.
        const seen = await rows(req.db, "SELECT id FROM openapi_app_messages WHERE app_id = ? AND msg_type = 'popwindow' AND CAST(message AS TEXT) LIKE ?", [req.app.appId, `%"notice_id":${JSON.stringify(noticeId)}%`]);
        if (seen.length) return null;
      }
      await deliver(req, 'popwindow', recipients, d);
      return null;
    },
  },
];
