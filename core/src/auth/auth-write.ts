import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { appendEvent } from '../eventlog/event-log.ts';

/** A session ended by a write, announced after commit as `auth.session.revoked`. */
export interface RevokedSession {
  sessionId: number;
  userId: number;
  reason: string;
}

/** One auth write in progress: its transaction, its clock, what to announce and log once it commits. */
export interface AuthTx {
  t: Transaction;
  now: Date;
  revoked: RevokedSession[];
  events: Array<{ topic: string; subject: string | null; payload: Record<string, unknown> }>;
}

export interface AuthCommit<T> {
  result: T;
  revoked: RevokedSession[];
  logged: Array<{ seq: number; topic: string }>;
}

/**
 * Runs one auth change in a transaction. The durable event-log entries go in last, as event-log.ts asks;
 * the broker announcements are the caller's to send once this has resolved (after commit).
 */
export async function authWrite<T>(db: Database, now: Date, fn: (w: AuthTx) => Promise<T>): Promise<AuthCommit<T>> {
  let w: AuthTx | undefined;
  const logged: AuthCommit<T>['logged'] = [];
  const result = await db.transaction(async (t) => {
    w = { t, now, revoked: [], events: [] };
    const r = await fn(w);
    for (const e of w.events) logged.push({ seq: await appendEvent(db, t, e.topic, e.subject, e.payload), topic: e.topic });
    return r;
  });
  return { result, revoked: w!.revoked, logged };
}
