import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QueryTypes, type Transaction } from 'sequelize';
import { openDatabase, type Database } from '../db/database.ts';
import { migrate } from '../db/migrator.ts';
import { describeError, qiaoError } from '../errors.ts';
import { inspectBackup, readBackup, type TableSection } from './backup-file.ts';
import { decodeValue } from './codec.ts';
import { describeTable, listTables, quote, type ColumnKind, type TableInfo } from './schema.ts';

export interface RestoreOptions {
  /** The core migrations folder (CORE_MIGRATIONS in app.ts). */
  coreMigrations: string;
  /** Allow replacing a database that already holds data (`qiao restore --yes`). */
  replace?: boolean;
  /** Who restores (e.g. the OS user behind `qiao restore`): the restore itself is then written to the admin operation log. */
  by?: string;
}

/**
 * Append-only audit tables (the admin operation log): a restore must not be a way to erase them. Their rows
 * stay; the backup's rows are added, those already here (same id, time and action) once only, and a backup
 * row whose id is taken by a different row here gets a new id.
 */
const APPEND_ONLY = new Set(['admin_operation_log']);

export interface RestoreSummary {
  tables: number;
  rows: number;
  /** Tables in the backup with no table of that name here (a plugin not installed in this database). */
  skippedTables: string[];
  /** `table.column` in the backup that this schema no longer has. */
  skippedColumns: string[];
}

/** Rebuilt by the migrator, not copied: it must describe the schema actually present here. */
const MIGRATIONS_TABLE = 'qiao_migrations';
const BATCH_ROWS = 500;
/** Keeps one INSERT statement to a sane size when rows are large. */
const BATCH_CHARS = 4 * 1024 * 1024;

interface ForeignKey {
  tbl: string;
  name: string;
  def: string;
}

function migrationNames(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d{4}[-_].+\.(ts|js|mjs)$/.test(f) && !f.endsWith('.d.ts')).map((f) => f.replace(/\.(ts|js|mjs)$/, '')) : [];
}

async function rowCount(db: Database, table: string): Promise<number> {
  const [row] = await db.sequelize.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${quote(table)}`, { type: QueryTypes.SELECT });
  return Number(row.n);
}

/**
 * Rows the core migrations write themselves (counters, defaults), per table, found by migrating a scratch
 * SQLite file: a database holding only those holds nobody's data.
 */
export async function seededRows(coreMigrations: string): Promise<Map<string, number>> {
  const file = path.join(os.tmpdir(), `qiao-restore-probe-${process.pid}-${randomBytes(4).toString('hex')}.sqlite`);
  const scratch = openDatabase(`sqlite:${file}`);
  try {
    await migrate(scratch, 'core', coreMigrations);
    const seeded = new Map<string, number>();
    for (const table of await listTables(scratch)) {
      if (table === MIGRATIONS_TABLE) continue;
      const n = await rowCount(scratch, table);
      if (n > 0) seeded.set(table, n);
    }
    return seeded;
  } finally {
    await scratch.close();
    for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(file + suffix, { force: true });
  }
}

async function tablesWithData(db: Database, seeded: Map<string, number>): Promise<string[]> {
  const out: string[] = [];
  for (const table of await listTables(db)) {
    if (table === MIGRATIONS_TABLE) continue;
    const seed = seeded.get(table);
    if (seed !== undefined) {
      if ((await rowCount(db, table)) > seed) out.push(table);
      continue;
    }
    const rows = await db.sequelize.query(`SELECT 1 AS x FROM ${quote(table)} LIMIT 1`, { type: QueryTypes.SELECT });
    if (rows.length > 0) out.push(table);
  }
  return out;
}

/**
 * PostgreSQL checks foreign keys row by row and they are not deferrable, so inside the restore transaction
 * they are dropped and re-created afterwards (which validates every row at once). SQLite defers them to
 * COMMIT instead.
 */
async function suspendForeignKeys(db: Database, t: Transaction): Promise<ForeignKey[]> {
  if (db.dialect === 'sqlite') {
    await db.sequelize.query('PRAGMA defer_foreign_keys = ON', { transaction: t });
    return [];
  }
  const fks = await db.sequelize.query<ForeignKey>(
    `SELECT format('%I.%I', n.nspname, r.relname) AS tbl, c.conname AS name, pg_get_constraintdef(c.oid) AS def
     FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
     WHERE c.contype = 'f' AND n.nspname = current_schema()`,
    { type: QueryTypes.SELECT, transaction: t },
  );
  for (const fk of fks) await db.sequelize.query(`ALTER TABLE ${fk.tbl} DROP CONSTRAINT ${quote(fk.name)}`, { transaction: t });
  return fks;
}

async function restoreForeignKeys(db: Database, t: Transaction, fks: ForeignKey[]): Promise<void> {
  if (db.dialect === 'sqlite') {
    const broken = await db.sequelize.query<{ table: string; parent: string }>('PRAGMA foreign_key_check', { type: QueryTypes.SELECT, transaction: t });
    if (broken.length > 0) {
      throw qiaoError('QIAO_BACKUP_INVALID', `backup rows break ${broken.length} foreign key(s), e.g. table "${broken[0].table}" → "${broken[0].parent}"`);
    }
    return;
  }
  for (const fk of fks) {
    try {
      await db.sequelize.query(`ALTER TABLE ${fk.tbl} ADD CONSTRAINT ${quote(fk.name)} ${fk.def}`, { transaction: t });
    } catch (err) {
      throw qiaoError('QIAO_BACKUP_INVALID', `backup rows break foreign key ${fk.name} on ${fk.tbl}: ${describeError(err).message}`);
    }
  }
}

/** Serial/identity columns must continue after the restored ids, or the next insert collides. */
async function resetSequences(db: Database, t: Transaction, tables: Iterable<TableInfo>): Promise<void> {
  if (db.dialect !== 'postgres') return;
  for (const table of tables) {
    for (const col of table.columns.filter((c) => c.kind === 'integer')) {
      const [row] = await db.sequelize.query<{ seq: string | null }>(
        "SELECT pg_get_serial_sequence(quote_ident(current_schema()) || '.' || quote_ident(?), ?) AS seq",
        { replacements: [table.name, col.name], type: QueryTypes.SELECT, transaction: t },
      );
      if (!row?.seq) continue;
      await db.sequelize.query(`SELECT setval(?::regclass, COALESCE((SELECT MAX(${quote(col.name)}) FROM ${quote(table.name)}), 0) + 1, false)`, {
        replacements: [row.seq],
        transaction: t,
      });
    }
  }
}

class Inserter {
  #db: Database;
  #t: Transaction;
  #table: TableInfo;
  #picks: Array<{ index: number; name: string; from: ColumnKind; to: ColumnKind }>;
  #rows: unknown[][] = [];
  #chars = 0;
  #firstLine = 0;
  #lastLine = 0;
  rows = 0;

  constructor(db: Database, t: Transaction, section: TableSection, target: TableInfo, skippedColumns: string[]) {
    this.#db = db;
    this.#t = t;
    this.#table = target;
    const kinds = new Map(target.columns.map((c) => [c.name, c.kind]));
    this.#picks = [];
    section.columns.forEach((c, index) => {
      const to = kinds.get(c.name);
      if (to) this.#picks.push({ index, name: c.name, from: c.kind, to });
      else skippedColumns.push(`${section.table}.${c.name}`);
    });
  }

  async add(values: unknown[], line: number, size: number): Promise<void> {
    if (this.#rows.length === 0) this.#firstLine = line;
    this.#lastLine = line;
    this.#rows.push(this.#picks.map((p) => decodeValue(p.from, p.to, values[p.index], this.#db.dialect)));
    this.#chars += size;
    if (this.#rows.length >= BATCH_ROWS || this.#chars >= BATCH_CHARS) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#rows.length === 0 || this.#picks.length === 0) return;
    if (APPEND_ONLY.has(this.#table.name)) return this.#append();
    const placeholders = `(${this.#picks.map(() => '?').join(', ')})`;
    const sql = `INSERT INTO ${quote(this.#table.name)} (${this.#picks.map((p) => quote(p.name)).join(', ')}) VALUES ${this.#rows.map(() => placeholders).join(', ')}`;
    try {
      await this.#db.sequelize.query(sql, { replacements: this.#rows.flat(), transaction: this.#t });
    } catch (err) {
      throw qiaoError('QIAO_BACKUP_INVALID', `backup lines ${this.#firstLine}–${this.#lastLine} do not fit table "${this.#table.name}": ${describeError(err).message}`, {
        field: 'file',
        line: this.#firstLine,
      });
    }
    this.rows += this.#rows.length;
    this.#rows = [];
    this.#chars = 0;
  }

  /** One row at a time into an append-only table whose current rows stay (see APPEND_ONLY). */
  async #append(): Promise<void> {
    const col = (name: string) => this.#picks.findIndex((p) => p.name === name);
    const [id, at, action] = [col('id'), col('created_at'), col('action')];
    const table = quote(this.#table.name);
    const picks = this.#picks;
    for (const row of this.#rows) {
      let values = row;
      if (id >= 0) {
        const [here] = await this.#db.sequelize.query<{ created_at: unknown; action: unknown }>(`SELECT created_at, action FROM ${table} WHERE id = ?`, {
          replacements: [row[id]],
          type: QueryTypes.SELECT,
          transaction: this.#t,
        });
        if (here) {
          const same = at >= 0 && action >= 0 && new Date(here.created_at as string).getTime() === new Date(row[at] as string).getTime() && here.action === row[action];
          if (same) continue;
          // Past every id here (not the sequence's next value: the sequences are only set right at the end).
          const [{ next }] = await this.#db.sequelize.query<{ next: number | string }>(`SELECT COALESCE(MAX(id), 0) + 1 AS next FROM ${table}`, {
            type: QueryTypes.SELECT,
            transaction: this.#t,
          });
          values = row.map((v, i) => (i === id ? Number(next) : v));
        }
      }
      await this.#db.sequelize.query(`INSERT INTO ${table} (${picks.map((p) => quote(p.name)).join(', ')}) VALUES (${picks.map(() => '?').join(', ')})`, {
        replacements: values,
        transaction: this.#t,
      });
      this.rows++;
    }
    this.#rows = [];
    this.#chars = 0;
  }
}

/**
 * Replaces the data of the database with a backup's, whichever dialect either side uses.
 *
 * The file is read through once and checked before anything changes. The schema then comes from this
 * version's migrations (never from the file): pending core migrations are applied, and plugin tables are
 * the ones already here. Then, in one transaction, every table (but the append-only admin operation log,
which keeps its rows and gains the backup's and a line for the restore) is emptied and refilled from the backup
 * (matching columns by name), foreign keys are re-checked and PostgreSQL sequences moved past the restored
 * ids; any failure rolls all of it back. Tables the backup predates keep the rows their core migration
 * seeded; the migrations table itself is never copied, as it must describe the schema actually present.
 *
 * Limitation: a plugin's migrations live in its package, which a restore does not load. A backup table
 * with no table of that name here is reported in `skippedTables` (install and start the plugin once so it
 * creates its tables, then restore again); its rows are never half-applied. A newer core migration that
 * transforms existing rows does not see the restored ones (they arrive after it ran).
 */
export async function restoreBackup(db: Database, file: string, options: RestoreOptions): Promise<RestoreSummary> {
  const { header } = await inspectBackup(file);

  const known = new Set(migrationNames(options.coreMigrations));
  const unknown = header.migrations.filter((m) => m.startsWith('core/') && !known.has(m.slice('core/'.length)));
  if (unknown.length > 0) {
    throw qiaoError('QIAO_BACKUP_INVALID', `backup ${file} was made by a newer Qiao: core migration(s) ${unknown.join(', ')} are unknown here`, { field: 'file' });
  }
  await migrate(db, 'core', options.coreMigrations);

  const seeded = await seededRows(options.coreMigrations);
  const occupied = await tablesWithData(db, seeded);
  if (occupied.length > 0 && !options.replace) {
    throw qiaoError('QIAO_CONFLICT', `the database already holds data (${occupied.slice(0, 5).join(', ')}${occupied.length > 5 ? ', …' : ''}); pass --yes to replace it with the backup`, { field: 'yes' });
  }

  return db.transaction(async (t) => {
    const fks = await suspendForeignKeys(db, t);
    const targets = new Map<string, TableInfo>();
    const inBackup = new Set(header.tables);
    for (const name of await listTables(db, t)) {
      if (name === MIGRATIONS_TABLE) continue;
      targets.set(name, await describeTable(db, name, t));
      // A table the backup predates keeps the rows its migration wrote; any other is replaced wholesale.
      if (!inBackup.has(name) && seeded.has(name)) continue;
      if (APPEND_ONLY.has(name)) continue;
      await db.sequelize.query(`DELETE FROM ${quote(name)}`, { transaction: t });
    }
    if (db.dialect === 'sqlite') {
      // AUTOINCREMENT counters then follow the restored ids instead of the discarded ones.
      const [seqTable] = await db.sequelize.query("SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'", { type: QueryTypes.SELECT, transaction: t });
      if (seqTable) await db.sequelize.query('DELETE FROM sqlite_sequence', { transaction: t });
    }

    const summary: RestoreSummary = { tables: 0, rows: 0, skippedTables: [], skippedColumns: [] };
    let inserter: Inserter | null = null;
    const finishTable = async () => {
      if (!inserter) return;
      await inserter.flush();
      summary.rows += inserter.rows;
      inserter = null;
    };
    for await (const entry of readBackup(file)) {
      if (entry.type === 'table') {
        await finishTable();
        const name = entry.section.table;
        const target = targets.get(name);
        if (name === MIGRATIONS_TABLE) continue;
        if (!target) {
          summary.skippedTables.push(name);
          continue;
        }
        inserter = new Inserter(db, t, entry.section, target, summary.skippedColumns);
        summary.tables++;
      } else if (entry.type === 'row' && inserter) {
        await (inserter as Inserter).add(entry.values, entry.line, entry.size);
      }
    }
    await finishTable();

    await restoreForeignKeys(db, t, fks);
    await resetSequences(db, t, targets.values());
    if (options.by !== undefined && targets.has('admin_operation_log')) {
      await db.sequelize.query(
        `INSERT INTO admin_operation_log (admin_account, action, params, outcome, created_at) VALUES (?, 'backup.restore', ?, 'ok', ?)`,
        { replacements: [options.by.slice(0, 64), JSON.stringify({ file: path.basename(file), rows: summary.rows, tables: summary.tables }), new Date()], transaction: t },
      );
    }
    return summary;
  });
}
