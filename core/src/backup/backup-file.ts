import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { qiaoError } from '../errors.ts';
import { COLUMN_KINDS, type ColumnInfo } from './schema.ts';

/**
 * A Qiao backup is gzip'd JSON lines:
 *   1. header   {format:'qiao-backup', version:1, createdAt, dialect, migrations:['owner/name',…], tables:[…]}
 *   2. per table {table, columns:[{name, kind}], primaryKey:[…]} then one JSON array per row, in column order
 *   3. trailer  {end:true, tables, rows}
 * The trailer is what tells a complete file from one cut short at a line boundary.
 */
export const BACKUP_FORMAT = 'qiao-backup';
export const BACKUP_VERSION = 1;

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: number;
  createdAt: string;
  dialect: 'sqlite' | 'postgres';
  /** Applied migrations as `owner/name`, from qiao_migrations. */
  migrations: string[];
  tables: string[];
}

export interface TableSection {
  table: string;
  columns: ColumnInfo[];
  primaryKey: string[];
}

export interface BackupTrailer {
  end: true;
  tables: number;
  rows: number;
}

export type BackupEntry =
  | { type: 'header'; line: number; header: BackupHeader }
  | { type: 'table'; line: number; section: TableSection }
  | { type: 'row'; line: number; section: TableSection; values: unknown[]; size: number }
  | { type: 'end'; line: number; trailer: BackupTrailer };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Splits the decompressed stream into lines without holding more than one line and one chunk in memory. */
async function* lines(file: string): AsyncGenerator<{ line: number; text: string }> {
  const source = fs.createReadStream(file);
  const gunzip = createGunzip();
  source.on('error', (err) => gunzip.destroy(err));
  source.pipe(gunzip);
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let line = 0;
  try {
    for await (const chunk of gunzip) {
      pending += decoder.write(chunk as Buffer);
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        line++;
        yield { line, text: pending.slice(0, nl) };
        pending = pending.slice(nl + 1);
      }
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const what =
      e.code === 'ENOENT' ? 'the file does not exist'
      : e.code === 'Z_DATA_ERROR' && line === 0 ? 'not a gzip-compressed Qiao backup'
      : e.code === 'Z_BUF_ERROR' || /unexpected end/i.test(e.message) ? 'the file ends in the middle of the data (truncated)'
      : e.message;
    throw qiaoError('QIAO_BACKUP_INVALID', `backup ${file}, line ${line + 1}: ${what}`, { field: 'file', line: line + 1 });
  } finally {
    source.destroy();
  }
  pending += decoder.end();
  if (pending.length > 0) yield { line: line + 1, text: pending };
}

/**
 * Reads and checks a backup entry by entry. Any defect (bad gzip, a line that is not JSON, a row of the
 * wrong width, a missing trailer) throws QIAO_BACKUP_INVALID naming the line, so a reader that applies
 * entries inside a transaction never commits a partial restore.
 */
export async function* readBackup(file: string): AsyncGenerator<BackupEntry> {
  const fail = (line: number, problem: string) =>
    qiaoError('QIAO_BACKUP_INVALID', `backup ${file}, line ${line}: ${problem}`, { field: 'file', line });
  let header: BackupHeader | null = null;
  let section: TableSection | null = null;
  let trailer: BackupTrailer | null = null;
  const seen = new Set<string>();
  let rows = 0;
  let lastLine = 0;

  for await (const { line, text } of lines(file)) {
    lastLine = line;
    if (trailer) throw fail(line, 'data after the end marker');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw fail(line, line === 1 ? 'not a Qiao backup (the first line is not JSON)' : 'not valid JSON (the file is damaged or truncated)');
    }
    if (!header) {
      if (!isObject(value) || value.format !== BACKUP_FORMAT) throw fail(line, `not a Qiao backup (no "format": "${BACKUP_FORMAT}" header)`);
      if (value.version !== BACKUP_VERSION) throw fail(line, `backup format version ${String(value.version)} is not supported (this Qiao reads version ${BACKUP_VERSION})`);
      if (value.dialect !== 'sqlite' && value.dialect !== 'postgres') throw fail(line, 'header field "dialect" must be sqlite or postgres');
      if (!isStringArray(value.migrations)) throw fail(line, 'header field "migrations" must be a list of strings');
      if (!isStringArray(value.tables)) throw fail(line, 'header field "tables" must be a list of strings');
      if (typeof value.createdAt !== 'string') throw fail(line, 'header field "createdAt" is missing');
      header = value as unknown as BackupHeader;
      yield { type: 'header', line, header };
      continue;
    }
    if (Array.isArray(value)) {
      if (!section) throw fail(line, 'a row before any table section');
      if (value.length !== section.columns.length) {
        throw fail(line, `row of table "${section.table}" has ${value.length} values, expected ${section.columns.length}`);
      }
      rows++;
      yield { type: 'row', line, section, values: value, size: text.length };
      continue;
    }
    if (isObject(value) && value.end === true) {
      if (seen.size !== header.tables.length) {
        const missing = header.tables.filter((t) => !seen.has(t));
        throw fail(line, `end marker before the sections of ${missing.map((t) => `"${t}"`).join(', ')}`);
      }
      if (value.rows !== rows || value.tables !== seen.size) {
        throw fail(line, `end marker counts ${String(value.tables)} tables / ${String(value.rows)} rows, the file holds ${seen.size} / ${rows}`);
      }
      trailer = value as unknown as BackupTrailer;
      yield { type: 'end', line, trailer };
      continue;
    }
    if (isObject(value) && typeof value.table === 'string') {
      const table = value.table;
      if (!header.tables.includes(table)) throw fail(line, `table "${table}" is not listed in the header`);
      if (seen.has(table)) throw fail(line, `table "${table}" appears twice`);
      const columns = value.columns;
      if (
        !Array.isArray(columns) || columns.length === 0 ||
        !columns.every((c) => isObject(c) && typeof c.name === 'string' && typeof c.kind === 'string' && COLUMN_KINDS.has(c.kind))
      ) {
        throw fail(line, `table "${table}" has no valid column list`);
      }
      const primaryKey = isStringArray(value.primaryKey) ? value.primaryKey : [];
      seen.add(table);
      section = { table, columns: columns as ColumnInfo[], primaryKey };
      yield { type: 'table', line, section };
      continue;
    }
    throw fail(line, 'neither a table section, a row nor the end marker');
  }
  if (!header) throw fail(1, 'the file is empty');
  if (!trailer) throw fail(lastLine + 1, 'the file ends before the end marker (truncated)');
}

/** Reads the whole file once, checking every line; returns the header and totals. */
export async function inspectBackup(file: string): Promise<{ header: BackupHeader; tables: number; rows: number }> {
  let header: BackupHeader | null = null;
  let trailer: BackupTrailer | null = null;
  for await (const entry of readBackup(file)) {
    if (entry.type === 'header') header = entry.header;
    else if (entry.type === 'end') trailer = entry.trailer;
  }
  return { header: header!, tables: trailer!.tables, rows: trailer!.rows };
}
