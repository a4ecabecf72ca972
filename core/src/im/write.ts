import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { appendEvent, lockEventLog } from '../eventlog/event-log.ts';

/** One im write in progress: its transaction, whose inboxes it touched, and what to log at the end. */
export interface ImTx {
  t: Transaction;
  /** Users with new sync entries: woken after commit. */
  wake: Set<number>;
  events: Array<{ topic: string; subject: string | null; payload: unknown }>;
}

export interface ImCommit<T> {
  result: T;
  wake: number[];
  logged: Array<{ seq: number; topic: string }>;
}

/**
 * Runs one im write. Every im write takes the event log's lock FIRST, before any row lock:
 *
 * - the sync inboxes (sync.ts) are written by many kinds of change that each touch several users' heads
 *   and other rows (read cursors, members); with the one lock taken first by all of them, two writers can
 *   never hold rows the other waits for, so there are no deadlocks;
 * - message ids and log sequence numbers are then handed out in commit order, which the conversation
 *   history (`after` paging) and the plugins' cursors rely on.
 *
 * The cost is that im writes commit one at a time on PostgreSQL, as they always do on SQLite. Each is a
 * handful of indexed statements, so this is thousands of sends a second, above what a 5,000-person
 * company produces at peak; the sync design itself does not depend on it (see sync.ts).
 */
export async function imWrite<T>(db: Database, fn: (w: ImTx) => Promise<T>): Promise<ImCommit<T>> {
  const logged: ImCommit<T>['logged'] = [];
  const w: ImTx = { t: undefined as unknown as Transaction, wake: new Set(), events: [] };
  const result = await db.transaction(async (t) => {
    w.t = t;
    w.wake.clear();
    w.events.length = 0;
    await lockEventLog(db, t);
    const r = await fn(w);
    for (const e of w.events) logged.push({ seq: await appendEvent(db, t, e.topic, e.subject, e.payload), topic: e.topic });
    return r;
  });
  return { result, wake: [...w.wake].sort((a, b) => a - b), logged };
}
