import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { bool, iso, select, toDate } from '../db/sql.ts';

/** What login and the admin lists need of a person: directory status plus the credential columns. */
export interface Credentials {
  id: number;
  account: string;
  name: string;
  status: 'active' | 'disabled' | 'resigned';
  authorised: boolean;
  authType: 'password' | 'external';
  mobile: string | null;
  email: string | null;
  passwordHash: string | null;
  passwordChangedAt: Date | null;
  mustChangePassword: boolean;
  failedAttempts: number;
  lockedAt: Date | null;
  lastLoginAt: Date | null;
}

export const CREDENTIAL_COLUMNS =
  'id, account, name, status, authorised, auth_type, mobile, email, password_hash, password_changed_at, must_change_password, failed_attempts, locked_at, last_login_at';

export function toCredentials(r: Record<string, unknown>): Credentials {
  return {
    id: Number(r.id),
    account: String(r.account),
    name: String(r.name),
    status: r.status as Credentials['status'],
    authorised: bool(r.authorised),
    authType: r.auth_type === 'external' ? 'external' : 'password',
    mobile: (r.mobile as string | null) ?? null,
    email: (r.email as string | null) ?? null,
    passwordHash: (r.password_hash as string | null) ?? null,
    passwordChangedAt: toDate(r.password_changed_at),
    mustChangePassword: bool(r.must_change_password),
    failedAttempts: Number(r.failed_attempts ?? 0),
    lockedAt: toDate(r.locked_at),
    lastLoginAt: toDate(r.last_login_at),
  };
}

export async function credentialsByAccount(db: Database, account: string, t?: Transaction): Promise<Credentials | null> {
  const [row] = await select<Record<string, unknown>>(db, `SELECT ${CREDENTIAL_COLUMNS} FROM users WHERE account = ?`, [account], t);
  return row ? toCredentials(row) : null;
}

export async function credentialsById(db: Database, id: number, t?: Transaction, field = 'userId'): Promise<Credentials> {
  const [row] = await select<Record<string, unknown>>(db, `SELECT ${CREDENTIAL_COLUMNS} FROM users WHERE id = ?`, [id], t);
  if (!row) throw qiaoError('QIAO_NOT_FOUND', `user ${id} does not exist`, { field });
  return toCredentials(row);
}

/** Locks the person's row to the end of the transaction (PostgreSQL), so two logins of one person queue. */
export async function lockUser(db: Database, id: number, t: Transaction): Promise<void> {
  if (db.dialect === 'postgres') await select(db, 'SELECT id FROM users WHERE id = ? FOR UPDATE', [id], t);
}

/** Whether the password is past the configured lifetime (external accounts have none here). */
export function passwordExpired(c: Credentials, expiryDays: number, now: Date): boolean {
  if (c.authType === 'external' || expiryDays <= 0 || !c.passwordChangedAt) return false;
  return now.getTime() - c.passwordChangedAt.getTime() >= expiryDays * 86_400_000;
}

/** The admin's view of a person's login state; never the hash. */
export function publicCredentials(c: Credentials, now: Date, expiryDays: number) {
  return {
    id: c.id,
    account: c.account,
    name: c.name,
    status: c.status,
    authorised: c.authorised,
    authType: c.authType,
    mobile: c.mobile,
    email: c.email,
    hasPassword: c.passwordHash !== null,
    passwordChangedAt: iso(c.passwordChangedAt),
    passwordExpired: passwordExpired(c, expiryDays, now),
    mustChangePassword: c.mustChangePassword,
    failedAttempts: c.failedAttempts,
    locked: c.lockedAt !== null,
    lockedAt: iso(c.lockedAt),
    lastLoginAt: iso(c.lastLoginAt),
  };
}
