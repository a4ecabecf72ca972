import type ExcelJSNs from 'exceljs';
import JSZip from 'jszip';
import { qiaoError } from '../../errors.ts';
import { checkCustomValues, type CustomFieldDef } from '../custom-fields.ts';
import { LIMITS, WEIGHT_RANGE, checkAccount, checkEmail, checkText, parseGender, type Gender } from '../fields.ts';
import type { ImportPlan, PlanUser } from './apply-plan.ts';
import { readAll, type ImportSource } from './input.ts';
import { ProblemList } from './problems.ts';

/**
 * Excel import and export of one department's people (Youdu's 导入 excel 格式的部门成员): a template with a
 * fixed header row, one person per row. Import is all or nothing: every problem is reported with its row,
 * column and what is wrong, and nothing is written while any remains.
 */

const WHAT = 'Excel import';
/** Spreadsheets are unpacked in memory: bounded on the file and on what it unpacks to. */
export const XLSX_MAX_BYTES = 20 * 1024 * 1024;
export const XLSX_MAX_UNPACKED = 200 * 1024 * 1024;
export const XLSX_MAX_ROWS = 100_000;

type Column = 'account' | 'name' | 'gender' | 'mobile' | 'phone' | 'shortNumber' | 'email' | 'position' | 'weight';

export const COLUMNS: Array<{ key: Column; header: string; aliases: string[]; width: number; required?: boolean }> = [
  { key: 'account', header: '帐号', aliases: ['账号', 'account', 'uid', '帐号*', '账号*'], width: 18, required: true },
  { key: 'name', header: '姓名', aliases: ['name', '姓名*'], width: 14, required: true },
  { key: 'gender', header: '性别', aliases: ['gender'], width: 8 },
  { key: 'mobile', header: '手机', aliases: ['mobile'], width: 16 },
  { key: 'phone', header: '座机', aliases: ['phone', '电话'], width: 16 },
  { key: 'shortNumber', header: '短号', aliases: ['shortnumber', 'short number'], width: 10 },
  { key: 'email', header: '邮箱', aliases: ['email', 'e-mail'], width: 26 },
  { key: 'position', header: '职务', aliases: ['position', '职位'], width: 14 },
  { key: 'weight', header: '权重', aliases: ['weight'], width: 8 },
];

async function excel(): Promise<typeof ExcelJSNs> {
  // Loaded on first use: exceljs is large and most processes never touch a spreadsheet.
  return ((await import('exceljs')) as unknown as { default: typeof ExcelJSNs }).default;
}

function sheetName(name: string): string {
  return name.replace(/[[\]:*?/\\]/g, ' ').slice(0, 31).trim() || 'Sheet1';
}

export interface XlsxPerson {
  account: string;
  name: string;
  gender: Gender | null;
  mobile: string | null;
  phone: string | null;
  shortNumber: string | null;
  email: string | null;
  position: string | null;
  weight: number;
  customFields: Record<string, string | number>;
}

/** The downloadable template, or (with `people`) a department's people in the same layout. */
export async function writeDepartmentXlsx(departmentName: string, fields: CustomFieldDef[], people: XlsxPerson[] = []): Promise<Buffer> {
  const ExcelJS = await excel();
  const wb = new ExcelJS.Workbook();
  wb.creator = 'Qiao';
  const ws = wb.addWorksheet(sheetName(departmentName));
  ws.columns = [
    ...COLUMNS.map((c) => ({ header: c.header, key: c.key, width: c.width })),
    ...fields.map((f) => ({ header: f.label, key: `custom.${f.key}`, width: 14 })),
  ];
  ws.getRow(1).font = { bold: true };
  // Text format keeps leading zeros and long numbers (phones, short numbers) as typed.
  for (const key of ['account', 'mobile', 'phone', 'shortNumber']) ws.getColumn(key).numFmt = '@';
  for (const p of people) {
    ws.addRow({
      account: p.account,
      name: p.name,
      gender: p.gender === 'male' ? '男' : p.gender === 'female' ? '女' : '',
      mobile: p.mobile ?? '',
      phone: p.phone ?? '',
      shortNumber: p.shortNumber ?? '',
      email: p.email ?? '',
      position: p.position ?? '',
      weight: p.weight,
      ...Object.fromEntries(fields.map((f) => [`custom.${f.key}`, p.customFields[f.key] ?? ''])),
    });
  }
  return Buffer.from(await wb.xlsx.writeBuffer());
}

function cellText(value: ExcelJSNs.CellValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isInteger(value) ? value.toFixed(0) : String(value);
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (value instanceof Date) return value.toISOString().slice(0, 10);
  if (typeof value === 'object') {
    const v = value as unknown as Record<string, unknown>;
    if (Array.isArray(v.richText)) return (v.richText as Array<{ text: string }>).map((r) => r.text).join('');
    if ('result' in v) return cellText(v.result as ExcelJSNs.CellValue);
    if ('text' in v) return cellText(v.text as ExcelJSNs.CellValue);
    if ('error' in v) return String(v.error);
  }
  return String(value);
}

const columnLetter = (n: number) => {
  let s = '';
  for (let x = n; x > 0; x = Math.floor((x - 1) / 26)) s = String.fromCharCode(65 + ((x - 1) % 26)) + s;
  return s;
};

/** Refuses what is not an xlsx before exceljs sees it, and zip bombs by their declared unpacked size. */
async function checkPackage(bytes: Buffer): Promise<void> {
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]))) {
    throw qiaoError('QIAO_VALIDATION', 'the file is an old Excel 97-2003 .xls workbook: save it as .xlsx and import again', { field: 'data' });
  }
  if (bytes.length < 4 || bytes.readUInt32LE(0) !== 0x04034b50) {
    throw qiaoError('QIAO_VALIDATION', 'the file is not an Excel .xlsx workbook (it is not a zip package); use the template', { field: 'data' });
  }
  let zip: JSZip;
  try {
    zip = await JSZip.loadAsync(bytes);
  } catch (err) {
    throw qiaoError('QIAO_VALIDATION', `the file is not a readable .xlsx workbook: ${(err as Error).message}`, { field: 'data' });
  }
  let unpacked = 0;
  for (const f of Object.values(zip.files)) unpacked += (f as unknown as { _data?: { uncompressedSize?: number } })._data?.uncompressedSize ?? 0;
  if (unpacked > XLSX_MAX_UNPACKED) {
    throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `the workbook unpacks to ${unpacked} bytes; the limit is ${XLSX_MAX_UNPACKED}`, { field: 'data' });
  }
  if (!zip.file('[Content_Types].xml') || !Object.keys(zip.files).some((n) => n.startsWith('xl/worksheets/'))) {
    throw qiaoError('QIAO_VALIDATION', 'the file is a zip package but not an Excel .xlsx workbook (no worksheets in it)', { field: 'data' });
  }
}

/** Reads the first worksheet into a plan that adds (or updates) people in `departmentId`. */
export async function parseDepartmentXlsx(src: ImportSource, opts: { departmentId: number; maxBytes: number; fields: CustomFieldDef[] }): Promise<ImportPlan> {
  const bytes = await readAll(src, Math.min(opts.maxBytes, XLSX_MAX_BYTES), 'Excel workbook');
  await checkPackage(bytes);
  const ExcelJS = await excel();
  const wb = new ExcelJS.Workbook();
  try {
    await wb.xlsx.load(bytes as unknown as ExcelJSNs.Buffer);
  } catch (err) {
    throw qiaoError('QIAO_VALIDATION', `the file is not a readable .xlsx workbook: ${(err as Error).message}`, { field: 'data' });
  }
  const ws = wb.worksheets[0];
  if (!ws) throw qiaoError('QIAO_VALIDATION', 'the workbook has no worksheet', { field: 'data' });
  if (ws.rowCount > XLSX_MAX_ROWS + 1) throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `the sheet has ${ws.rowCount} rows; at most ${XLSX_MAX_ROWS} people per import`, { field: 'data' });

  const problems = new ProblemList();
  const norm = (s: string) => s.trim().toLowerCase().replace(/\s+/g, ' ');
  const byHeader = new Map<string, { key: string }>();
  for (const c of COLUMNS) for (const h of [c.header, ...c.aliases]) byHeader.set(norm(h), { key: c.key });
  for (const f of opts.fields) {
    byHeader.set(norm(f.label), { key: `custom.${f.key}` });
    byHeader.set(norm(f.key), { key: `custom.${f.key}` });
  }
  const columns = new Map<number, { key: string; header: string }>();
  const header = ws.getRow(1);
  header.eachCell({ includeEmpty: false }, (cell, col) => {
    const text = cellText(cell.value).trim();
    if (!text) return;
    const known = byHeader.get(norm(text));
    if (!known) {
      problems.add({ where: 'row 1', row: 1, column: columnLetter(col), field: 'header', message: `unknown column "${text.slice(0, 50)}": use the template's columns` });
      return;
    }
    if ([...columns.values()].some((c) => c.key === known.key)) {
      problems.add({ where: 'row 1', row: 1, column: columnLetter(col), field: 'header', message: `column "${text}" appears twice` });
      return;
    }
    columns.set(col, { key: known.key, header: text });
  });
  for (const c of COLUMNS.filter((x) => x.required)) {
    if (![...columns.values()].some((x) => x.key === c.key)) problems.add({ where: 'row 1', row: 1, field: 'header', message: `the required column "${c.header}" is missing` });
  }
  problems.throwIfAny(WHAT);

  const users: PlanUser[] = [];
  const firstRow = new Map<string, number>();
  const fieldCols = new Map([...columns.entries()].map(([col, c]) => [c.key, col]));
  ws.eachRow({ includeEmpty: false }, (row, rowNumber) => {
    if (rowNumber === 1 || problems.full) return;
    const v: Record<string, string> = {};
    let any = false;
    for (const [col, c] of columns) {
      const text = cellText(row.getCell(col).value).trim();
      v[c.key] = text;
      if (text) any = true;
    }
    if (!any) return;
    const where = `row ${rowNumber}`;
    const bad = (key: string, message: string) => {
      const col = fieldCols.get(key);
      problems.add({ where, row: rowNumber, column: col ? `${columnLetter(col)} (${columns.get(col)!.header})` : undefined, field: key, message });
    };
    const pa = checkAccount(v.account, 'account');
    if (pa) return bad('account', pa.message);
    const prior = firstRow.get(v.account);
    if (prior !== undefined) return bad('account', `account "${v.account}" appears twice: rows ${prior} and ${rowNumber}`);
    firstRow.set(v.account, rowNumber);
    const has = (k: string) => fieldCols.has(k);
    const fields: PlanUser['fields'] = {};
    const text = (key: 'name' | 'mobile' | 'phone' | 'shortNumber', max: number, required = false) => {
      if (!has(key)) return;
      const p = checkText(key, v[key], max, required);
      if (p) return bad(key, p.message);
      fields[key] = (v[key] || null) as never;
    };
    text('name', LIMITS.name, true);
    text('mobile', LIMITS.mobile);
    text('phone', LIMITS.phone);
    text('shortNumber', LIMITS.shortNumber);
    if (has('email')) {
      const p = checkEmail(v.email);
      if (p) bad('email', p.message);
      else fields.email = v.email || null;
    }
    if (has('gender')) {
      const g = parseGender(v.gender);
      if (g === undefined) bad('gender', `gender "${v.gender.slice(0, 20)}" must be 男, 女, male or female`);
      else fields.gender = g;
    }
    let position: string | null = null;
    if (has('position')) {
      const p = checkText('position', v.position, LIMITS.position);
      if (p) bad('position', p.message);
      else position = v.position || null;
    }
    let weight = 0;
    if (has('weight') && v.weight !== '') {
      const n = Number(v.weight);
      if (!Number.isInteger(n) || n < WEIGHT_RANGE.min || n > WEIGHT_RANGE.max) bad('weight', `weight "${v.weight.slice(0, 20)}" must be a whole number`);
      else weight = n;
    }
    const raw: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) if (k.startsWith('custom.')) raw[k.slice(7)] = val;
    const { values, problems: customProblems } = checkCustomValues(opts.fields, raw, 'custom');
    for (const p of customProblems) bad(p.field, p.message);
    users.push({
      where,
      account: v.account,
      fields,
      customMerge: Object.keys(values).length ? values : undefined,
      memberships: [{ departmentId: opts.departmentId, position, weight }],
      membershipMode: 'merge',
    });
  });
  problems.throwIfAny(WHAT);
  return { departments: [], users };
}
