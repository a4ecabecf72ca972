import type { Database } from '../db/database.ts';
import { likePattern, select } from '../db/sql.ts';

/** The filters every audit trail answers to: whose, what, and a time range (from inclusive, to exclusive). */
export interface LogFilter {
  userId?: number;
  account?: string;
  event?: string;
  from?: Date;
  to?: Date;
  search?: string;
}

/** How one trail maps the common filters onto its table. */
export interface LogSpec<T> {
  table: string;
  columns: string;
  userColumn?: string;
  accountColumn: string;
  eventColumn: string;
  /** Columns `search` matches (case-insensitively, anywhere in the text). */
  searchColumns: string[];
  toEntry(row: Record<string, unknown>): T;
}

function where<T>(spec: LogSpec<T>, f: LogFilter): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  if (f.userId !== undefined && spec.userColumn) {
    parts.push(`${spec.userColumn} = ?`);
    args.push(f.userId);
  }
  if (f.account !== undefined) {
    parts.push(`${spec.accountColumn} = ?`);
    args.push(f.account);
  }
  if (f.event !== undefined) {
    parts.push(`${spec.eventColumn} = ?`);
    args.push(f.event);
  }
  if (f.from) {
    parts.push('created_at >= ?');
    args.push(f.from);
  }
  if (f.to) {
    parts.push('created_at < ?');
    args.push(f.to);
  }
  if (f.search) {
    const pattern = likePattern(f.search.toLowerCase());
    parts.push(`(${spec.searchColumns.map((c) => `LOWER(${c}) LIKE ? ESCAPE '\\'`).join(' OR ')})`);
    args.push(...spec.searchColumns.map(() => pattern));
  }
  return { sql: parts.length ? ` WHERE ${parts.join(' AND ')}` : '', args };
}

export interface LogPage<T> {
  total: number;
  page: number;
  pageSize: number;
  entries: T[];
}

/** Newest first, paged. */
export async function pageLog<T>(db: Database, spec: LogSpec<T>, filter: LogFilter, page: number, pageSize: number): Promise<LogPage<T>> {
  const w = where(spec, filter);
  const [{ n }] = await select<{ n: number | string }>(db, `SELECT COUNT(*) AS n FROM ${spec.table}${w.sql}`, w.args);
  const rows = await select<Record<string, unknown>>(db, `SELECT ${spec.columns} FROM ${spec.table}${w.sql} ORDER BY id DESC LIMIT ? OFFSET ?`, [
    ...w.args,
    pageSize,
    (page - 1) * pageSize,
  ]);
  return { total: Number(n), page, pageSize, entries: rows.map((r) => spec.toEntry(r)) };
}

/**
 * Every matching entry, newest first, read in chunked by id so a large export neither holds one huge
 * result set nor skips or repeats rows appended while it runs.
 */
export async function* scanLog<T>(db: Database, spec: LogSpec<T>, filter: LogFilter, limit: number, chunk = 1000): AsyncGenerator<T> {
  let before: number | null = null;
  let left = limit;
  while (left > 0) {
    const w = where(spec, filter);
    const cursor = before === null ? '' : `${w.sql ? ' AND' : ' WHERE'} id < ?`;
    const size = Math.min(chunk, left);
    const rows: Array<Record<string, unknown>> = await select<Record<string, unknown>>(
      db,
      `SELECT ${spec.columns} FROM ${spec.table}${w.sql}${cursor} ORDER BY id DESC LIMIT ?`,
      [...w.args, ...(before === null ? [] : [before]), size],
    );
    for (const r of rows) yield spec.toEntry(r);
    if (rows.length < size) return;
    before = Number(rows[rows.length - 1].id);
    left -= rows.length;
  }
}
