import { randomBytes } from 'node:crypto';
import { QueryTypes, type Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';

/**
 * Applications of the open API. Admin-created apps get `yd` + 32 upper-case hex digits; the built-in
 * system apps keep Youdu's fixed ids, so business systems configured for Youdu find them under the same name.
 */
export const SYSTEM_APPS = {
  sysOrgAssistant: { name: '组织架构', description: 'Org directory sync: departments, people, groups, full replace' },
  sysMsgAssistant: { name: '系统消息', description: 'System messages (pop-up notices) from business systems' },
  sysSmsAssistant: { name: '短信', description: 'SMS gateway: SMS sent from clients are handed to the gateway' },
  sysExmailAssistant: { name: '企业邮', description: 'Mail system: new-mail and unread-count notices' },
  sysMsgMonitor: { name: '消息审计', description: 'Message audit: conversation messages are called back to the audit system' },
} as const;
export type SystemAppId = keyof typeof SYSTEM_APPS;
export type AppKind = 'app' | SystemAppId;

export function isSystemApp(id: string): id is SystemAppId {
  return Object.hasOwn(SYSTEM_APPS, id);
}

export interface AutoReplyRule {
  /** Matches when the user's text equals (exact) or contains (contains) the keyword; `any` matches all text. */
  match: 'exact' | 'contains' | 'any';
  keyword?: string;
  reply: string;
}

export interface MenuItem {
  name: string;
  /** 'url' opens `url` (with `$TOKEN$` replaced); 'click' calls the app back with `key`. */
  type: 'url' | 'click';
  url?: string;
  key?: string;
  children?: MenuItem[];
}

export interface App {
  appId: string;
  kind: AppKind;
  name: string;
  description: string | null;
  logo: string | null;
  visibleDesktop: boolean;
  visibleMobile: boolean;
  homeUrl: string | null;
  encodingAesKey: string;
  callbackUrl: string | null;
  callbackToken: string | null;
  autoReply: AutoReplyRule[];
  menus: MenuItem[];
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
}

interface AppRow {
  app_id: string;
  kind: string;
  name: string;
  description: string | null;
  logo: string | null;
  visible_desktop: unknown;
  visible_mobile: unknown;
  home_url: string | null;
  aes_key: string;
  callback_url: string | null;
  callback_token: string | null;
  auto_reply: unknown;
  menus: unknown;
  enabled: unknown;
  created_at: string | Date;
  updated_at: string | Date;
}

const bool = (v: unknown) => v === true || v === 1 || v === '1' || v === 't';
const json = <T>(v: unknown, fallback: T): T => (v === null || v === undefined ? fallback : typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
const iso = (v: string | Date) => new Date(v).toISOString();

function toApp(r: AppRow): App {
  return {
    appId: r.app_id,
    kind: r.kind as AppKind,
    name: r.name,
    description: r.description,
    logo: r.logo,
    visibleDesktop: bool(r.visible_desktop),
    visibleMobile: bool(r.visible_mobile),
    homeUrl: r.home_url,
    encodingAesKey: r.aes_key,
    callbackUrl: r.callback_url,
    callbackToken: r.callback_token,
    autoReply: json<AutoReplyRule[]>(r.auto_reply, []),
    menus: json<MenuItem[]>(r.menus, []),
    enabled: bool(r.enabled),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

/** `yd` + 32 upper-case hex digits. */
export function newAppId(): string {
  return `yd${randomBytes(16).toString('hex').toUpperCase()}`;
}

/** 44 characters: the base64 of 32 random bytes, as Youdu's console shows it. */
export function newAesKey(): string {
  return randomBytes(32).toString('base64');
}

/** Letters and digits, what Youdu's console generates for a callback token. */
export function newCallbackToken(): string {
  return randomBytes(16).toString('hex');
}

/** Rows of a SELECT or of a write with RETURNING (see db/sql.ts for why the comment). */
export async function rows<T extends object>(db: Database, sql: string, replacements: unknown[] = [], transaction?: Transaction): Promise<T[]> {
  return db.sequelize.query<T>(`/* rows */ ${sql}`, { replacements, type: QueryTypes.SELECT, transaction });
}

export async function run(db: Database, sql: string, replacements: unknown[] = [], transaction?: Transaction): Promise<void> {
  await db.sequelize.query(sql, { replacements, transaction });
}

export const jsonCast = (db: Database) => (db.dialect === 'postgres' ? '?::json' : '?');

export async function findApp(db: Database, appId: string, transaction?: Transaction): Promise<App | null> {
  const [row] = await rows<AppRow>(db, 'SELECT * FROM openapi_apps WHERE app_id = ?', [appId], transaction);
  return row ? toApp(row) : null;
}

export async function getApp(db: Database, appId: string, transaction?: Transaction): Promise<App> {
  const app = await findApp(db, appId, transaction);
  if (!app) throw qiaoError('QIAO_NOT_FOUND', `app "${appId}" does not exist`, { field: 'appId' });
  return app;
}

export async function listApps(db: Database): Promise<App[]> {
  return (await rows<AppRow>(db, "SELECT * FROM openapi_apps ORDER BY CASE WHEN kind = 'app' THEN 1 ELSE 0 END, created_at, app_id")).map(toApp);
}

/** Creates the built-in system apps that are missing; run at every start, idempotent. */
export async function seedSystemApps(db: Database): Promise<void> {
  await db.transaction(async (t) => {
    for (const [id, def] of Object.entries(SYSTEM_APPS)) {
      const now = new Date();
      await run(
        db,
        `INSERT INTO openapi_apps (app_id, kind, name, description, visible_desktop, visible_mobile, aes_key, enabled, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app_id) DO NOTHING`,
        [id, id, def.name, def.description, false, false, newAesKey(), true, now, now],
        t,
      );
    }
  });
}

export interface AppInput {
  name?: string;
  description?: string | null;
  logo?: string | null;
  visibleDesktop?: boolean;
  visibleMobile?: boolean;
  homeUrl?: string | null;
  callbackUrl?: string | null;
  callbackToken?: string | null;
  autoReply?: AutoReplyRule[];
  menus?: MenuItem[];
  enabled?: boolean;
}

function checkUrl(value: string | null | undefined, field: string, allowToken = false): void {
  if (value === null || value === undefined || value === '') return;
  let u: URL;
  try {
    u = new URL(allowToken ? value.replaceAll('$TOKEN$', 'TOKEN') : value);
  } catch {
    throw qiaoError('QIAO_VALIDATION', `${field} is not a URL`, { field });
  }
  if (!['http:', 'https:'].includes(u.protocol)) throw qiaoError('QIAO_VALIDATION', `${field} must be an http:// or https:// URL`, { field });
}

function checkInput(input: AppInput): void {
  checkUrl(input.homeUrl, 'homeUrl', true);
  checkUrl(input.callbackUrl, 'callbackUrl');
  for (const [i, r] of (input.autoReply ?? []).entries()) {
    if (r.match !== 'any' && !r.keyword) throw qiaoError('QIAO_VALIDATION', `autoReply[${i}].keyword is required unless match is "any"`, { field: `autoReply[${i}].keyword` });
  }
  const walk = (items: MenuItem[], path: string) =>
    items.forEach((m, i) => {
      const f = `${path}[${i}]`;
      if (m.type === 'url') checkUrl(m.url ?? '', `${f}.url`, true);
      if (m.type === 'url' && !m.url) throw qiaoError('QIAO_VALIDATION', `${f}.url is required for a url menu`, { field: `${f}.url` });
      if (m.type === 'click' && !m.key) throw qiaoError('QIAO_VALIDATION', `${f}.key is required for a click menu`, { field: `${f}.key` });
      if (m.children) walk(m.children, `${f}.children`);
    });
  walk(input.menus ?? [], 'menus');
}

export async function createApp(db: Database, t: Transaction, input: AppInput & { name: string }): Promise<App> {
  checkInput(input);
  const appId = newAppId();
  const now = new Date();
  const j = jsonCast(db);
  await run(
    db,
    `INSERT INTO openapi_apps (app_id, kind, name, description, logo, visible_desktop, visible_mobile, home_url, aes_key, callback_url, callback_token, auto_reply, menus, enabled, created_at, updated_at)
     VALUES (?, 'app', ?, ?, ?, ?, ?, ?, ?, ?, ?, ${j}, ${j}, ?, ?, ?)`,
    [
      appId,
      input.name,
      input.description || null,
      input.logo || null,
      input.visibleDesktop ?? true,
      input.visibleMobile ?? true,
      input.homeUrl || null,
      newAesKey(),
      input.callbackUrl || null,
      input.callbackUrl ? input.callbackToken || newCallbackToken() : input.callbackToken || null,
      JSON.stringify(input.autoReply ?? []),
      JSON.stringify(input.menus ?? []),
      input.enabled ?? true,
      now,
      now,
    ],
    t,
  );
  return (await findApp(db, appId, t))!;
}

export async function updateApp(db: Database, t: Transaction, appId: string, input: AppInput): Promise<App> {
  const current = await getApp(db, appId, t);
  checkInput(input);
  if (current.kind !== 'app' && input.name !== undefined && input.name !== current.name) {
    throw qiaoError('QIAO_VALIDATION', `system app "${appId}" keeps its name`, { field: 'name' });
  }
  const sets: string[] = [];
  const values: unknown[] = [];
  const j = jsonCast(db);
  const col: Array<[keyof AppInput, string, (v: unknown) => unknown, boolean?]> = [
    ['name', 'name', (v) => v],
    ['description', 'description', (v) => v || null],
    ['logo', 'logo', (v) => v || null],
    ['visibleDesktop', 'visible_desktop', (v) => v],
    ['visibleMobile', 'visible_mobile', (v) => v],
    ['homeUrl', 'home_url', (v) => v || null],
    ['callbackUrl', 'callback_url', (v) => v || null],
    ['callbackToken', 'callback_token', (v) => v || null],
    ['autoReply', 'auto_reply', (v) => JSON.stringify(v), true],
    ['menus', 'menus', (v) => JSON.stringify(v), true],
    ['enabled', 'enabled', (v) => v],
  ];
  for (const [k, c, f, isJson] of col) {
    if (input[k] === undefined) continue;
    sets.push(`${c} = ${isJson ? j : '?'}`);
    values.push(f(input[k]));
  }
  // A callback URL needs a token to sign with: one is generated when the admin gives none.
  if (input.callbackUrl && !input.callbackToken && !current.callbackToken) {
    sets.push('callback_token = ?');
    values.push(newCallbackToken());
  }
  if (!sets.length) return current;
  await run(db, `UPDATE openapi_apps SET ${sets.join(', ')}, updated_at = ? WHERE app_id = ?`, [...values, new Date(), appId], t);
  return (await findApp(db, appId, t))!;
}

/** A new EncodingAESKey (and optionally a new callback token); tokens issued under the old key stay valid. */
export async function regenerateKeys(db: Database, t: Transaction, appId: string, what: { aesKey?: boolean; callbackToken?: boolean }): Promise<App> {
  await getApp(db, appId, t);
  if (what.aesKey !== false) await run(db, 'UPDATE openapi_apps SET aes_key = ?, updated_at = ? WHERE app_id = ?', [newAesKey(), new Date(), appId], t);
  if (what.callbackToken) await run(db, 'UPDATE openapi_apps SET callback_token = ?, updated_at = ? WHERE app_id = ?', [newCallbackToken(), new Date(), appId], t);
  return (await findApp(db, appId, t))!;
}

export async function deleteApp(db: Database, t: Transaction, appId: string): Promise<void> {
  const app = await getApp(db, appId, t);
  if (app.kind !== 'app') throw qiaoError('QIAO_FORBIDDEN', `"${appId}" is a built-in system app and cannot be deleted (disable it instead)`, { field: 'appId' });
  await run(db, 'DELETE FROM openapi_tokens WHERE app_id = ?', [appId], t);
  await run(db, 'DELETE FROM openapi_badges WHERE app_id = ?', [appId], t);
  await run(db, 'DELETE FROM openapi_apps WHERE app_id = ?', [appId], t);
}

/** What admins see: the key is shown (the admin pastes it into the business system), as Youdu's console does. */
export function publicApp(app: App): App {
  return app;
}
