import { QueryTypes, type Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { appendEvent } from '../eventlog/event-log.ts';
import { queryRows } from '../db/sql.ts';
import type { UserStatus } from './fields.ts';

export interface OrgEvent {
  topic: string;
  subject: string | null;
  payload: Record<string, unknown>;
}

/** One org write in progress: its transaction, the version every row it touches gets, what to log. */
export interface OrgTx {
  t: Transaction;
  version: number;
  events: OrgEvent[];
  statusChanges: Array<{ userId: number; status: UserStatus }>;
  /** Set when the change alters views as a whole (rules, display, field set): clients behind it reset. */
  viewChanged: boolean;
}

export interface OrgCommit<T> {
  result: T;
  version: number;
  logged: Array<{ seq: number; topic: string }>;
  statusChanges: OrgTx['statusChanges'];
}

export type MetaKey = 'version' | 'floor' | 'view_version';

export async function readMeta(db: Database, transaction?: Transaction): Promise<Record<MetaKey, number>> {
  const rows = await db.sequelize.query<{ key: MetaKey; value: number | string }>('SELECT key, value FROM org_meta', { type: QueryTypes.SELECT, transaction });
  const out = { version: 0, floor: 0, view_version: 0 };
  for (const r of rows) out[r.key] = Number(r.value);
  return out;
}

export async function setMeta(db: Database, t: Transaction, key: MetaKey, value: number): Promise<void> {
  await db.sequelize.query('UPDATE org_meta SET value = ? WHERE key = ?', { replacements: [value, key], transaction: t });
}

/**
 * Runs one org change. The version is taken first, by incrementing the counter row: on PostgreSQL that row
 * lock is held to commit, so org writers run one at a time (a move's cycle check cannot race another move)
 * and versions become visible in order; a delta reader can never step past a version that commits later.
 * The event-log entries are appended last, as event-log.ts requires.
 */
export async function orgWrite<T>(db: Database, fn: (w: OrgTx) => Promise<T>): Promise<OrgCommit<T>> {
  const logged: OrgCommit<T>['logged'] = [];
  let w: OrgTx | undefined;
  const result = await db.transaction(async (t) => {
    const [row] = await queryRows<{ value: number | string }>(db, "UPDATE org_meta SET value = value + 1 WHERE key = 'version' RETURNING value", [], t);
    w = { t, version: Number(row.value), events: [], statusChanges: [], viewChanged: false };
    const r = await fn(w);
    if (w.viewChanged) await setMeta(db, t, 'view_version', w.version);
    for (const e of w.events) {
      const seq = await appendEvent(db, t, e.topic, e.subject, { ...e.payload, version: w.version });
      logged.push({ seq, topic: e.topic });
    }
    return r;
  });
  return { result, version: w!.version, logged, statusChanges: w!.statusChanges };
}
