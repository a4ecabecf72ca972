import { QueryTypes, type Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';

export { jsonParam, parseJson, queryRows } from '../im/sql.ts';

export async function select<T extends object>(db: Database, sql: string, replacements: unknown[] = [], transaction?: Transaction): Promise<T[]> {
  return db.sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT, transaction });
}

/** Runs a write and returns how many rows it touched, on both dialects. */
export async function exec(db: Database, sql: string, replacements: unknown[], transaction: Transaction): Promise<number> {
  // Sequelize's SQLite driver runs a raw DELETE without collecting the change count; as BULKDELETE it does.
  if (/^\s*DELETE\b/i.test(sql)) return Number(await db.sequelize.query(sql, { replacements, transaction, type: QueryTypes.BULKDELETE }));
  const [, meta] = (await db.sequelize.query(sql, { replacements, transaction })) as [unknown, unknown];
  if (db.dialect === 'postgres') return Number((meta as { rowCount?: number })?.rowCount ?? 0);
  return Number((meta as { changes?: number })?.changes ?? 0);
}

/** `(?, ?, ?)` for `n` columns. */
export function placeholders(n: number, cast: (i: number) => string = () => '?'): string {
  return `(${Array.from({ length: n }, (_, i) => cast(i)).join(', ')})`;
}

/** Splits `items` into chunks small enough for one statement. */
export function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** `IN (?, ?, …)` for a list of ids; callers chunk long lists. */
export function inList(n: number): string {
  return `(${new Array(n).fill('?').join(', ')})`;
}

export const bool = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 't';
