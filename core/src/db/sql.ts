import { QueryTypes, type Transaction } from 'sequelize';
import type { Database } from './database.ts';

// Raw-SQL helpers that read the same on SQLite and PostgreSQL. Every service that writes SQL uses these,
// so each dialect quirk is handled once.

/** Rows of a SELECT. */
export async function select<T extends object>(db: Database, sql: string, replacements: unknown[] = [], transaction?: Transaction): Promise<T[]> {
  return db.sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT, transaction });
}

/**
 * Rows of any statement that returns rows, `INSERT … RETURNING` included. Sequelize's SQLite query runs
 * anything whose text starts with "INSERT INTO" through sqlite3's `run()`, which drops the RETURNING rows;
 * the leading comment makes it take the row-returning path. PostgreSQL ignores it.
 */
export async function queryRows<T extends object>(db: Database, sql: string, replacements: unknown[], transaction?: Transaction): Promise<T[]> {
  return db.sequelize.query<T>(`/* rows */ ${sql}`, { replacements, type: QueryTypes.SELECT, transaction });
}

/** Runs a write and returns how many rows it touched, on both dialects. */
export async function exec(db: Database, sql: string, replacements: unknown[], transaction?: Transaction): Promise<number> {
  // Sequelize's SQLite query runs a raw DELETE or UPDATE without collecting the change count; typed as a
  // bulk delete or an update, both dialects answer with it.
  if (/^\s*DELETE\b/i.test(sql)) return Number(await db.sequelize.query(sql, { replacements, transaction, type: QueryTypes.BULKDELETE }));
  if (/^\s*UPDATE\b/i.test(sql)) return Number((await db.sequelize.query(sql, { replacements, transaction, type: QueryTypes.UPDATE }))[1]);
  const [, meta] = (await db.sequelize.query(sql, { replacements, transaction })) as [unknown, unknown];
  if (db.dialect === 'postgres') return Number((meta as { rowCount?: number })?.rowCount ?? 0);
  return Number((meta as { changes?: number })?.changes ?? 0);
}

/** `?` placeholder for a JSON value passed as text: PostgreSQL needs the cast, SQLite stores the text. */
export function jsonParam(db: Database): string {
  return db.dialect === 'postgres' ? '?::json' : '?';
}

/** JSON columns come back parsed from PostgreSQL and as text from SQLite. */
export function parseJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

/** Dates come back as Date from PostgreSQL and as text from SQLite. */
export function toDate(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  const d = v instanceof Date ? v : new Date(String(v));
  return Number.isNaN(d.getTime()) ? null : d;
}

export const iso = (v: unknown): string | null => toDate(v)?.toISOString() ?? null;

export function isoDate(value: string | Date): string {
  return new Date(value).toISOString();
}

/** SQLite hands booleans back as 0/1, PostgreSQL as true/false. */
export const bool = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 't' || v === 'true';

/** `(?, ?, …)` for a list of `n` values; callers keep lists short with `chunked`. */
export function inList(n: number): string {
  return `(${new Array(n).fill('?').join(', ')})`;
}

/** `(?, ?, ?)` for `n` columns, each optionally cast. */
export function placeholders(n: number, cast: (i: number) => string = () => '?'): string {
  return `(${Array.from({ length: n }, (_, i) => cast(i)).join(', ')})`;
}

/**
 * Splits `items` into lists small enough for one statement. 1,000 keeps every statement far below
 * SQLite's 32,766 and PostgreSQL's 65,535 bound parameters, even with several values per row.
 */
export function chunked<T>(items: T[], size = 1000): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * A pattern for `LIKE ? ESCAPE '\'` matching `text` anywhere, literally: `%`, `_` and `\` are escaped.
 * The escape clause reads the same on SQLite and PostgreSQL.
 */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
