import { QueryTypes, type Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';

/**
 * Dialect-neutral column kinds. A backup records each column's kind so a value can be written back
 * faithfully into the other dialect (SQLite keeps booleans as 0/1, dates as text, JSON as text).
 */
export type ColumnKind = 'integer' | 'number' | 'boolean' | 'datetime' | 'date' | 'json' | 'binary' | 'array' | 'string';

export const COLUMN_KINDS: ReadonlySet<string> = new Set(['integer', 'number', 'boolean', 'datetime', 'date', 'json', 'binary', 'array', 'string']);

export interface ColumnInfo {
  name: string;
  kind: ColumnKind;
}

export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  /** Primary-key columns in key order; empty when the table has none. */
  primaryKey: string[];
}

/** Double-quoted identifiers are standard SQL and read the same on SQLite and PostgreSQL. */
export function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

export function kindOf(declaredType: string): ColumnKind {
  const t = declaredType.toUpperCase();
  if (/BOOL|TINYINT\(1\)/.test(t)) return 'boolean';
  if (/TIMESTAMP|DATETIME/.test(t)) return 'datetime';
  if (t === 'DATE') return 'date';
  if (/JSON/.test(t)) return 'json';
  if (/BLOB|BYTEA/.test(t)) return 'binary';
  if (t === 'ARRAY' || t.endsWith('[]')) return 'array';
  if (/INT/.test(t)) return 'integer';
  if (/REAL|FLOA|DOUB|NUMERIC|DECIMAL/.test(t)) return 'number';
  return 'string';
}

/** Every table of the database (core and plugin), except the engine's own bookkeeping tables. */
export async function listTables(db: Database, transaction?: Transaction): Promise<string[]> {
  const sql =
    db.dialect === 'sqlite'
      ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
      : 'SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename';
  const rows = await db.sequelize.query<{ name: string }>(sql, { type: QueryTypes.SELECT, transaction });
  return rows.map((r) => r.name);
}

export async function describeTable(db: Database, table: string, transaction?: Transaction): Promise<TableInfo> {
  if (db.dialect === 'sqlite') {
    const rows = await db.sequelize.query<{ name: string; type: string; pk: number }>(`PRAGMA table_info(${quote(table)})`, {
      type: QueryTypes.SELECT,
      transaction,
    });
    return {
      name: table,
      columns: rows.map((r) => ({ name: r.name, kind: kindOf(r.type) })),
      primaryKey: rows.filter((r) => r.pk > 0).sort((a, b) => a.pk - b.pk).map((r) => r.name),
    };
  }
  const columns = await db.sequelize.query<{ name: string; type: string }>(
    `SELECT column_name AS name, data_type AS type FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`,
    { replacements: [table], type: QueryTypes.SELECT, transaction },
  );
  const pk = await db.sequelize.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_index i
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
     WHERE i.indrelid = (quote_ident(current_schema()) || '.' || quote_ident(?))::regclass AND i.indisprimary
     ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    { replacements: [table], type: QueryTypes.SELECT, transaction },
  );
  return { name: table, columns: columns.map((c) => ({ name: c.name, kind: kindOf(c.type) })), primaryKey: pk.map((p) => p.name) };
}
