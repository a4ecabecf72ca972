import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { QueryTypes, Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { BACKUP_FORMAT, BACKUP_VERSION, type BackupHeader } from './backup-file.ts';
import { encodeValue } from './codec.ts';
import { describeTable, listTables, quote, type TableInfo } from './schema.ts';

export interface BackupSummary {
  file: string;
  tables: number;
  rows: number;
}

const PAGE = 1000;
/** Stand-in key for tables without a primary key: the engine's own row address, stable within a snapshot. */
const ROW_ADDRESS = '__qiao_row_address';

/** One page after `after` (the last row of the previous page), in key order, so no table is read whole. */
async function readPage(db: Database, t: Transaction, table: TableInfo, after: Record<string, unknown> | null): Promise<Record<string, unknown>[]> {
  const keys = table.primaryKey.length > 0 ? table.primaryKey : [ROW_ADDRESS];
  const address = table.primaryKey.length > 0 ? '' : db.dialect === 'sqlite' ? `, rowid AS ${quote(ROW_ADDRESS)}` : `, ctid AS ${quote(ROW_ADDRESS)}`;
  const keyExpr = (k: string) => (k !== ROW_ADDRESS ? quote(k) : db.dialect === 'sqlite' ? 'rowid' : 'ctid');
  let where = '';
  const replacements: unknown[] = [];
  if (after) {
    const lhs = keys.map(keyExpr);
    const rhs = keys.map((k) => (k === ROW_ADDRESS && db.dialect === 'postgres' ? '?::tid' : '?'));
    where = keys.length === 1 ? `WHERE ${lhs[0]} > ${rhs[0]}` : `WHERE (${lhs.join(', ')}) > (${rhs.join(', ')})`;
    replacements.push(...keys.map((k) => after[k]));
  }
  const columns = table.columns.map((c) => quote(c.name)).join(', ');
  return db.sequelize.query<Record<string, unknown>>(
    `SELECT ${columns}${address} FROM ${quote(table.name)} ${where} ORDER BY ${keys.map(keyExpr).join(', ')} LIMIT ${PAGE}`,
    { replacements, type: QueryTypes.SELECT, transaction: t },
  );
}

async function* backupLines(db: Database, t: Transaction, counts: { tables: number; rows: number }): AsyncGenerator<string> {
  const tables = await listTables(db, t);
  let migrations: string[] = [];
  if (tables.includes('qiao_migrations')) {
    const rows = await db.sequelize.query<{ owner: string; name: string }>('SELECT owner, name FROM qiao_migrations ORDER BY owner, name', {
      type: QueryTypes.SELECT,
      transaction: t,
    });
    migrations = rows.map((r) => `${r.owner}/${r.name}`);
  }
  const header: BackupHeader = {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    createdAt: new Date().toISOString(),
    dialect: db.dialect,
    migrations,
    tables,
  };
  yield `${JSON.stringify(header)}\n`;
  for (const name of tables) {
    const table = await describeTable(db, name, t);
    yield `${JSON.stringify({ table: name, columns: table.columns, primaryKey: table.primaryKey })}\n`;
    counts.tables++;
    let after: Record<string, unknown> | null = null;
    for (;;) {
      const page = await readPage(db, t, table, after);
      if (page.length === 0) break;
      let chunk = '';
      for (const row of page) chunk += `${JSON.stringify(table.columns.map((c) => encodeValue(c.kind, row[c.name], db.dialect)))}\n`;
      counts.rows += page.length;
      yield chunk;
      if (page.length < PAGE) break;
      after = page[page.length - 1];
    }
  }
  yield `${JSON.stringify({ end: true, tables: counts.tables, rows: counts.rows })}\n`;
}

/**
 * Writes every table of the database to `file` as a gzip'd JSON-lines stream, one page at a time, from a
 * single read snapshot so a running server can keep writing meanwhile. The file appears under its name
 * only once complete.
 */
export async function createBackup(db: Database, file: string): Promise<BackupSummary> {
  const out = path.resolve(file);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.partial-${process.pid}`;
  const counts = { tables: 0, rows: 0 };
  try {
    // Deliberately not db.transaction(): on SQLite that takes the write lock; a deferred read transaction
    // sees one snapshot (WAL) without blocking the server's writers.
    const options =
      db.dialect === 'sqlite'
        ? { type: Transaction.TYPES.DEFERRED }
        : { isolationLevel: Transaction.ISOLATION_LEVELS.REPEATABLE_READ };
    await db.sequelize.transaction(options, async (t) => {
      await pipeline(Readable.from(backupLines(db, t, counts)), createGzip(), fs.createWriteStream(tmp, { mode: 0o600 }));
    });
    fs.renameSync(tmp, out);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { file: out, ...counts };
}
