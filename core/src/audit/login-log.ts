import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { exec, iso } from '../db/sql.ts';
import type { ExportColumn } from './export.ts';
import type { LogSpec } from './log-query.ts';

/** `kicked`: a session ended by someone or something else (replaced, forced offline, disabled, …). */
export const LOGIN_EVENTS = ['login', 'logout', 'kicked', 'failed'] as const;
export type LoginEvent = (typeof LOGIN_EVENTS)[number];

export interface LoginRecord {
  userId: number | null;
  account: string;
  event: LoginEvent;
  reason?: string | null;
  ip?: string | null;
  deviceType?: string | null;
  deviceId?: string | null;
  deviceName?: string | null;
  sessionId?: number | null;
  at: Date;
}

export interface LoginLogEntry extends Omit<LoginRecord, 'at'> {
  id: number;
  at: string;
}

const clip = (v: string | null | undefined, max: number) => (v === null || v === undefined ? null : [...v].slice(0, max).join(''));

/** Appends one entry, inside the caller's transaction when there is one. */
export async function recordLogin(db: Database, t: Transaction | undefined, r: LoginRecord): Promise<void> {
  await exec(
    db,
    `INSERT INTO login_log (user_id, account, event, reason, ip, device_type, device_id, device_name, session_id, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      r.userId,
      clip(r.account, 64),
      r.event,
      clip(r.reason, 200),
      clip(r.ip, 64),
      clip(r.deviceType, 16),
      clip(r.deviceId, 128),
      clip(r.deviceName, 128),
      r.sessionId ?? null,
      r.at,
    ],
    t,
  );
}

export const LOGIN_LOG: LogSpec<LoginLogEntry> = {
  table: 'login_log',
  columns: 'id, user_id, account, event, reason, ip, device_type, device_id, device_name, session_id, created_at',
  userColumn: 'user_id',
  accountColumn: 'account',
  eventColumn: 'event',
  searchColumns: ['account', 'ip', 'device_name'],
  toEntry: (r) => ({
    id: Number(r.id),
    userId: r.user_id === null ? null : Number(r.user_id),
    account: String(r.account),
    event: r.event as LoginEvent,
    reason: (r.reason as string | null) ?? null,
    ip: (r.ip as string | null) ?? null,
    deviceType: (r.device_type as string | null) ?? null,
    deviceId: (r.device_id as string | null) ?? null,
    deviceName: (r.device_name as string | null) ?? null,
    sessionId: r.session_id === null ? null : Number(r.session_id),
    at: iso(r.created_at)!,
  }),
};

export const LOGIN_LOG_COLUMNS: ExportColumn<LoginLogEntry>[] = [
  { header: 'time', value: (e) => e.at },
  { header: 'account', value: (e) => e.account },
  { header: 'userId', value: (e) => e.userId },
  { header: 'event', value: (e) => e.event },
  { header: 'reason', value: (e) => e.reason },
  { header: 'ip', value: (e) => e.ip },
  { header: 'deviceType', value: (e) => e.deviceType },
  { header: 'deviceId', value: (e) => e.deviceId },
  { header: 'deviceName', value: (e) => e.deviceName },
  { header: 'sessionId', value: (e) => e.sessionId },
];
