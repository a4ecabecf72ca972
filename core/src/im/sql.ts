import { QueryTypes, type Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';

/**
 * Runs a statement that returns rows, `INSERT … RETURNING` included, on both dialects. Sequelize's SQLite
 * query runs anything whose text starts with "INSERT INTO" through sqlite3's `run()`, which drops the
 * RETURNING rows; the leading comment makes it take the row-returning path. PostgreSQL ignores it.
 */
export async function queryRows<T extends object>(db: Database, sql: string, replacements: unknown[], transaction?: Transaction): Promise<T[]> {
  return db.sequelize.query<T>(`/* rows */ ${sql}`, { replacements, type: QueryTypes.SELECT, transaction });
}

/** `?` placeholder for a JSON value passed as text: PostgreSQL needs the cast, SQLite stores the text. */
export function jsonParam(db: Database): string {
  return db.dialect === 'postgres' ? '?::json' : '?';
}

/** JSON columns come back parsed from PostgreSQL and as text from SQLite. */
export function parseJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

export function isoDate(value: string | Date): string {
  return new Date(value).toISOString();
}
