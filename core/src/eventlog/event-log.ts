import { QueryTypes, type Transaction } from 'sequelize';
import type { LoggedEvent } from '@qiao/plugin-api';
import type { Database } from '../db/database.ts';

// One committed domain change as consumers read it; plugins see the same type through the plugin API.
export type { LoggedEvent } from '@qiao/plugin-api';

/**
 * Appends to the durable log inside the caller's transaction, so the change and its log entry commit
 * together or not at all. Callers emit `eventlog.appended` after commit as a wake-up only.
 *
 * Call it as the last statement before commit. On PostgreSQL it takes a transaction-scoped advisory lock
 * first: sequence values are handed out at INSERT, and without the lock a reader could see seq 11 commit
 * before seq 10 and step past 10 for good. The lock makes seq order equal commit order; taking it last keeps
 * it held only for the insert and the commit. SQLite has a single writer and needs nothing.
 */
export async function appendEvent(db: Database, t: Transaction, topic: string, subject: string | null, payload: unknown): Promise<number> {
  await lockEventLog(db, t);
  const cast = db.dialect === 'postgres' ? '?::json' : '?';
  const sql = `INSERT INTO event_log (topic, subject, payload, created_at) VALUES (?, ?, ${cast}, ?)`;
  const replacements = [topic, subject, JSON.stringify(payload), new Date()];
  if (db.dialect === 'postgres') {
    const rows = await db.sequelize.query<{ seq: number }>(`${sql} RETURNING seq`, { replacements, transaction: t, type: QueryTypes.SELECT });
    return Number(rows[0].seq);
  }
  // Sequelize runs SQLite INSERTs without returning rows; the same connection knows the new rowid.
  await db.sequelize.query(sql, { replacements, transaction: t });
  const rows = await db.sequelize.query<{ seq: number }>('SELECT last_insert_rowid() AS seq', { transaction: t, type: QueryTypes.SELECT });
  return Number(rows[0].seq);
}

/**
 * Takes the event log's write lock for the rest of the transaction (PostgreSQL only; SQLite has one writer).
 * Transaction-scoped advisory locks are re-entrant, so a writer whose own rows carry ids that readers page
 * by (messages.id) takes it first: those ids then follow commit order too.
 */
export async function lockEventLog(db: Database, transaction: Transaction): Promise<void> {
  if (db.dialect === 'postgres') await db.sequelize.query('SELECT pg_advisory_xact_lock(7080001)', { transaction });
}

/** Topics match exactly or by a trailing `*` (`message.*`). */
function topicClause(topics: string[] | undefined, replacements: unknown[]): string {
  if (!topics || topics.length === 0) return '';
  const parts = topics.map((t) => {
    if (t.endsWith('*')) {
      replacements.push(`${t.slice(0, -1)}%`);
      return 'topic LIKE ?';
    }
    replacements.push(t);
    return 'topic = ?';
  });
  return ` AND (${parts.join(' OR ')})`;
}

export async function readEvents(db: Database, after: number, limit: number, topics?: string[]): Promise<LoggedEvent[]> {
  const replacements: unknown[] = [after];
  const where = topicClause(topics, replacements);
  replacements.push(limit);
  const rows = await db.sequelize.query<{ seq: number; topic: string; subject: string | null; payload: unknown; created_at: string | Date }>(
    `SELECT seq, topic, subject, payload, created_at FROM event_log WHERE seq > ?${where} ORDER BY seq LIMIT ?`,
    { replacements, type: QueryTypes.SELECT },
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    topic: r.topic,
    subject: r.subject,
    payload: typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload,
    createdAt: new Date(r.created_at).toISOString(),
  }));
}

export async function headSeq(db: Database): Promise<number> {
  const [row] = await db.sequelize.query<{ head: number | null }>('SELECT MAX(seq) AS head FROM event_log', { type: QueryTypes.SELECT });
  return Number(row?.head ?? 0);
}

export async function getCursor(db: Database, consumer: string, stream: string): Promise<number> {
  const [row] = await db.sequelize.query<{ position: number }>(
    'SELECT position FROM plugin_cursors WHERE plugin_id = ? AND stream = ?',
    { replacements: [consumer, stream], type: QueryTypes.SELECT },
  );
  return Number(row?.position ?? 0);
}

/** Moves a consumer's cursor forward; a stale commit (lower than the stored one) is ignored, never rewinds. */
export async function commitCursor(db: Database, consumer: string, stream: string, position: number): Promise<number> {
  await db.sequelize.query(
    `INSERT INTO plugin_cursors (plugin_id, stream, position, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (plugin_id, stream) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
     WHERE plugin_cursors.position < excluded.position`,
    { replacements: [consumer, stream, position, new Date()] },
  );
  return getCursor(db, consumer, stream);
}
