import { stringify } from 'csv-stringify/sync';

export type ExportFormat = 'csv' | 'jsonl';

export interface ExportColumn<T> {
  header: string;
  value(entry: T): unknown;
}

export interface ExportFile {
  filename: string;
  contentType: string;
  rows: number;
  /** True when there were more matching entries than the export limit. */
  truncated: boolean;
  bytes: number;
  /** The file, base64 (the admin API carries JSON). */
  data: string;
}

/**
 * A spreadsheet opens a cell that starts with = + - @ (or a tab / carriage return) as a formula. Audit data
 * holds strings people chose (device names, accounts), so such cells get a leading apostrophe.
 */
function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = value instanceof Date ? value.toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

/** Builds the export file from `entries` (already limited to `limit + 1` so truncation shows). */
export async function buildExport<T>(name: string, format: ExportFormat, columns: ExportColumn<T>[], entries: AsyncIterable<T>, limit: number): Promise<ExportFile> {
  const parts: string[] = [];
  let rows = 0;
  let truncated = false;
  let batch: string[][] = [];
  const flush = () => {
    if (!batch.length) return;
    parts.push(stringify(batch, { record_delimiter: 'windows' }));
    batch = [];
  };
  if (format === 'csv') batch.push(columns.map((c) => c.header));
  for await (const entry of entries) {
    if (rows === limit) {
      truncated = true;
      break;
    }
    rows++;
    if (format === 'jsonl') parts.push(`${JSON.stringify(Object.fromEntries(columns.map((c) => [c.header, c.value(entry) ?? null])))}\n`);
    else {
      batch.push(columns.map((c) => cell(c.value(entry))));
      if (batch.length >= 1000) flush();
    }
  }
  flush();
  // The BOM makes Excel read the UTF-8 (Chinese names) correctly; JSON lines stay plain UTF-8.
  const body = Buffer.from((format === 'csv' ? '\ufeff' : '') + parts.join(''), 'utf8');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    filename: `${name}-${stamp}.${format === 'csv' ? 'csv' : 'jsonl'}`,
    contentType: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson',
    rows,
    truncated,
    bytes: body.length,
    data: body.toString('base64'),
  };
}
