import { createHash, randomBytes } from 'node:crypto';
import type { Context, ServiceSchema } from 'moleculer';
import { QueryTypes, type Transaction } from 'sequelize';
import { generatePassword, hashPassword, verifyPassword } from '../auth/password.ts';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { adminAction, type ServiceDeps } from '../services.ts';

export interface AdminIdentity {
  id: number;
  account: string;
  role: 'super' | 'admin';
}

export interface BootstrapResult {
  created: boolean;
  company: { name: string; buin: number };
  /** Only on the very first start: the generated super-admin password, printed once and never stored. */
  superAdmin?: { account: string; password: string };
}

const ADMIN_SESSION_HOURS = 12;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

async function getSetting<T>(db: Database, key: string, transaction?: Transaction): Promise<T | undefined> {
  const rows = await db.sequelize.query<{ value: unknown }>('SELECT value FROM system_settings WHERE key = ?', {
    replacements: [key],
    type: QueryTypes.SELECT,
    transaction,
  });
  if (rows.length === 0) return undefined;
  const v = rows[0].value;
  // SQLite hands JSON columns back as text when read through raw queries.
  return (typeof v === 'string' && db.dialect === 'sqlite' ? JSON.parse(v) : v) as T;
}

async function setSetting(db: Database, key: string, value: unknown, transaction?: Transaction): Promise<void> {
  const json = JSON.stringify(value);
  const cast = db.dialect === 'postgres' ? '?::json' : '?';
  await db.sequelize.query(
    `INSERT INTO system_settings (key, value, updated_at) VALUES (?, ${cast}, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    { replacements: [key, json, new Date()], transaction },
  );
}

/**
 * Company identity, first-start bootstrap, system settings and the admin accounts that the admin API and
 * the CLI authenticate against.
 */
export default function systemService({ config, db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('system service needs storage');
  return {
    name: 'system',

    actions: {
      bootstrap: {
        visibility: 'public',
        async handler(): Promise<BootstrapResult> {
          return this.bootstrap();
        },
      },
      info: adminAction({
        admin: true,
        rest: 'GET /system/info',
        async handler() {
          const company = await getSetting<{ name: string; buin: number }>(db, 'company');
          const installedAt = await getSetting<string>(db, 'installed_at');
          return { company, installedAt, dialect: db.dialect, nodeId: config.nodeId };
        },
      }),
      'settings.get': {
        params: { key: { type: 'string', min: 1, max: 100 } },
        async handler(ctx: Context<{ key: string }>) {
          return (await getSetting(db, ctx.params.key)) ?? null;
        },
      },
      'settings.set': {
        params: { key: { type: 'string', min: 1, max: 100 }, value: { type: 'any' } },
        async handler(ctx: Context<{ key: string; value: unknown }>) {
          await setSetting(db, ctx.params.key, ctx.params.value);
          return { key: ctx.params.key };
        },
      },
      'admins.create': adminAction({
        admin: 'super',
        rest: 'POST /admins',
        params: {
          account: { type: 'string', min: 1, max: 64, pattern: /^[A-Za-z0-9._@-]+$/ },
          password: { type: 'string', min: 8, max: 128 },
          displayName: { type: 'string', optional: true, max: 100 },
          role: { type: 'enum', values: ['super', 'admin'], optional: true },
          mustChangePassword: { type: 'boolean', optional: true },
        },
        async handler(ctx: Context<{ account: string; password: string; displayName?: string; role?: 'super' | 'admin'; mustChangePassword?: boolean }>) {
          const { account, password, displayName, role = 'admin', mustChangePassword = false } = ctx.params;
          const [existing] = await db.sequelize.query<{ id: number }>('SELECT id FROM admins WHERE account = ?', {
            replacements: [account],
            type: QueryTypes.SELECT,
          });
          if (existing) throw qiaoError('QIAO_CONFLICT', `admin account "${account}" already exists`, { field: 'account' });
          await this.insertAdmin(account, displayName ?? account, password, role, mustChangePassword);
          return { account, role };
        },
      }),
      'admins.resetPassword': adminAction({
        admin: 'super',
        rest: 'POST /admins/:account/reset-password',
        params: { account: { type: 'string', min: 1, max: 64 }, password: { type: 'string', optional: true, min: 8, max: 128 } },
        async handler(ctx: Context<{ account: string; password?: string }>) {
          const password = ctx.params.password ?? generatePassword();
          // UPDATE type: both dialects then report the affected-row count.
          const [, changed] = await db.sequelize.query(
            'UPDATE admins SET password_hash = ?, must_change_password = ?, enabled = ?, updated_at = ? WHERE account = ?',
            { replacements: [await hashPassword(password), !ctx.params.password, true, new Date(), ctx.params.account], type: QueryTypes.UPDATE },
          );
          if (!changed) throw qiaoError('QIAO_NOT_FOUND', `admin account "${ctx.params.account}" does not exist`, { field: 'account' });
          // A reset signs the account out everywhere.
          await db.sequelize.query('DELETE FROM admin_sessions WHERE admin_id IN (SELECT id FROM admins WHERE account = ?)', {
            replacements: [ctx.params.account],
          });
          return { account: ctx.params.account, password: ctx.params.password ? undefined : password };
        },
      }),
      'admins.list': adminAction({
        admin: 'super',
        rest: 'GET /admins',
        async handler() {
          return db.sequelize.query(
            'SELECT account, display_name AS "displayName", role, enabled, must_change_password AS "mustChangePassword" FROM admins ORDER BY id',
            { type: QueryTypes.SELECT },
          );
        },
      }),
      'admins.login': {
        params: { account: { type: 'string', min: 1, max: 64 }, password: { type: 'string', min: 1, max: 256 } },
        async handler(ctx: Context<{ account: string; password: string }>) {
          const [admin] = await db.sequelize.query<{ id: number; password_hash: string; role: 'super' | 'admin'; enabled: boolean | number; must_change_password: boolean | number }>(
            'SELECT id, password_hash, role, enabled, must_change_password FROM admins WHERE account = ?',
            { replacements: [ctx.params.account], type: QueryTypes.SELECT },
          );
          // Same answer for unknown account and wrong password, so accounts cannot be probed.
          if (!admin || !(await verifyPassword(ctx.params.password, admin.password_hash))) {
            throw qiaoError('QIAO_ADMIN_BAD_CREDENTIALS', 'wrong admin account or password');
          }
          if (!admin.enabled) throw qiaoError('QIAO_ADMIN_DISABLED', `admin account "${ctx.params.account}" is disabled`);
          const token = randomBytes(32).toString('base64url');
          const expiresAt = new Date(Date.now() + ADMIN_SESSION_HOURS * 3600_000);
          await db.sequelize.query('INSERT INTO admin_sessions (token_hash, admin_id, created_at, expires_at) VALUES (?, ?, ?, ?)', {
            replacements: [sha256(token), admin.id, new Date(), expiresAt],
          });
          return { token, expiresAt, mustChangePassword: Boolean(admin.must_change_password) };
        },
      },
      'admins.logout': {
        params: { token: { type: 'string', min: 1 } },
        async handler(ctx: Context<{ token: string }>) {
          await db.sequelize.query('DELETE FROM admin_sessions WHERE token_hash = ?', { replacements: [sha256(ctx.params.token)] });
          return { ok: true };
        },
      },
      /** Resolves a bearer token to the admin behind it; the admin API calls this on every request. */
      'admins.authenticate': {
        params: { token: { type: 'string', min: 1, max: 512 } },
        async handler(ctx: Context<{ token: string }>): Promise<AdminIdentity> {
          const [row] = await db.sequelize.query<{ id: number; account: string; role: 'super' | 'admin'; enabled: boolean | number; expires_at: string | Date }>(
            `SELECT a.id, a.account, a.role, a.enabled, s.expires_at FROM admin_sessions s JOIN admins a ON a.id = s.admin_id
             WHERE s.token_hash = ?`,
            { replacements: [sha256(ctx.params.token)], type: QueryTypes.SELECT },
          );
          if (!row || new Date(row.expires_at).getTime() < Date.now() || !row.enabled) {
            throw qiaoError('QIAO_UNAUTHENTICATED', 'admin token is missing, expired or revoked');
          }
          return { id: row.id, account: row.account, role: row.role };
        },
      },
    },

    methods: {
      async insertAdmin(account: string, displayName: string, password: string, role: string, mustChange: boolean, transaction?: Transaction) {
        const now = new Date();
        const hash = await hashPassword(password);
        await db.sequelize.query(
          `INSERT INTO admins (account, display_name, password_hash, role, enabled, must_change_password, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          { replacements: [account, displayName, hash, role, true, mustChange, now, now], transaction },
        );
      },
      /** Idempotent: creates the company and the super-admin only when there is no admin yet. */
      async bootstrap(): Promise<BootstrapResult> {
        return db.transaction(async (t) => {
          let company = await getSetting<{ name: string; buin: number }>(db, 'company', t);
          if (!company) {
            // buin: the company number the Youdu-compatible open API carries in every envelope.
            company = { name: config.companyName, buin: 100000 + (randomBytes(3).readUIntBE(0, 3) % 900000) };
            await setSetting(db, 'company', company, t);
            await setSetting(db, 'installed_at', new Date().toISOString(), t);
          }
          const [{ n }] = await db.sequelize.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM admins', { type: QueryTypes.SELECT, transaction: t });
          if (Number(n) > 0) return { created: false, company };
          const password = generatePassword();
          await this.insertAdmin('admin', 'Super administrator', password, 'super', true, t);
          return { created: true, company, superAdmin: { account: 'admin', password } };
        });
      },
    }
  };
}
