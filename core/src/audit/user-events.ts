import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { exec, iso, jsonParam, parseJson } from '../db/sql.ts';
import type { ExportColumn } from './export.ts';
import type { LogSpec } from './log-query.ts';

/**
 * State changes of a person's account, with who caused them: `admin:<account>`, `user` (the person), or
 * `system:<what>` (auto-authorisation, lockout, a status change arriving from the org directory).
 */
export interface UserEventRecord {
  userId: number;
  account: string | null;
  event: string;
  actor: string;
  detail?: Record<string, unknown> | null;
  at: Date;
}

export interface UserEventEntry extends Omit<UserEventRecord, 'at'> {
  id: number;
  at: string;
}

export async function recordUserEvent(db: Database, t: Transaction | undefined, r: UserEventRecord): Promise<void> {
  await exec(
    db,
    `INSERT INTO user_event_log (user_id, account, event, actor, detail, created_at) VALUES (?, ?, ?, ?, ${jsonParam(db)}, ?)`,
    [r.userId, r.account, r.event, r.actor.slice(0, 100), r.detail ? JSON.stringify(r.detail) : null, r.at],
    t,
  );
}

export const USER_EVENTS: LogSpec<UserEventEntry> = {
  table: 'user_event_log',
  columns: 'id, user_id, account, event, actor, detail, created_at',
  userColumn: 'user_id',
  accountColumn: 'account',
  eventColumn: 'event',
  searchColumns: ['account', 'actor'],
  toEntry: (r) => ({
    id: Number(r.id),
    userId: Number(r.user_id),
    account: (r.account as string | null) ?? null,
    event: String(r.event),
    actor: String(r.actor ?? ''),
    detail: r.detail === null || r.detail === undefined ? null : parseJson<Record<string, unknown>>(r.detail),
    at: iso(r.created_at)!,
  }),
};

export const USER_EVENT_COLUMNS: ExportColumn<UserEventEntry>[] = [
  { header: 'time', value: (e) => e.at },
  { header: 'account', value: (e) => e.account },
  { header: 'userId', value: (e) => e.userId },
  { header: 'event', value: (e) => e.event },
  { header: 'actor', value: (e) => e.actor },
  { header: 'detail', value: (e) => e.detail },
];
