import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { LIMITS, checkText, type FieldProblem } from './fields.ts';
import type { OrgTx } from './org-write.ts';
import { bool, exec, jsonParam, parseJson, select } from '../db/sql.ts';

/** Admin-defined person attributes (工龄, 政治面貌…); values live in `users.custom_fields` by key. */
export const CUSTOM_FIELD_TYPES = ['text', 'number', 'date', 'select'] as const;
export type CustomFieldType = (typeof CUSTOM_FIELD_TYPES)[number];
export const CUSTOM_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
export const MAX_CUSTOM_FIELDS = 100;

export interface CustomFieldDef {
  key: string;
  label: string;
  type: CustomFieldType;
  options: string[] | null;
  clientVisible: boolean;
  sortOrder: number;
}

export type CustomValues = Record<string, string | number>;

interface Row {
  key: string;
  label: string;
  type: CustomFieldType;
  options: unknown;
  client_visible: unknown;
  sort_order: number;
}

export async function listCustomFields(db: Database, transaction?: Transaction): Promise<CustomFieldDef[]> {
  const rows = await select<Row>(db, 'SELECT key, label, type, options, client_visible, sort_order FROM org_custom_fields ORDER BY sort_order, key', [], transaction);
  return rows.map((r) => ({
    key: r.key,
    label: r.label,
    type: r.type,
    options: r.options === null || r.options === undefined ? null : parseJson<string[]>(r.options),
    clientVisible: bool(r.client_visible),
    sortOrder: Number(r.sort_order),
  }));
}

function checkOptions(type: CustomFieldType, options: string[] | null | undefined): string[] | null {
  if (type !== 'select') return null;
  if (!options || options.length === 0) throw qiaoError('QIAO_VALIDATION', 'a select field needs at least one option', { field: 'options' });
  options.forEach((o, i) => {
    const p = checkText(`options[${i}]`, o, LIMITS.customValue, true);
    if (p) throw qiaoError('QIAO_VALIDATION', p.message, { field: p.field });
  });
  if (new Set(options).size !== options.length) throw qiaoError('QIAO_VALIDATION', 'select options must be distinct', { field: 'options' });
  return options;
}

export interface CustomFieldInput {
  key: string;
  label?: string;
  type?: CustomFieldType;
  options?: string[] | null;
  clientVisible?: boolean;
  sortOrder?: number;
}

export async function createCustomField(db: Database, w: OrgTx, input: CustomFieldInput & { label: string; type: CustomFieldType }): Promise<CustomFieldDef> {
  const existing = await listCustomFields(db, w.t);
  if (existing.some((f) => f.key === input.key)) throw qiaoError('QIAO_CONFLICT', `custom field "${input.key}" already exists`, { field: 'key' });
  if (existing.length >= MAX_CUSTOM_FIELDS) throw qiaoError('QIAO_VALIDATION', `at most ${MAX_CUSTOM_FIELDS} custom fields can be defined`, { field: 'key' });
  const options = checkOptions(input.type, input.options);
  const now = new Date();
  await exec(
    db,
    `INSERT INTO org_custom_fields (key, label, type, options, client_visible, sort_order, created_at, updated_at) VALUES (?, ?, ?, ${jsonParam(db)}, ?, ?, ?, ?)`,
    [input.key, input.label, input.type, options ? JSON.stringify(options) : null, input.clientVisible ?? true, input.sortOrder ?? 0, now, now],
    w.t,
  );
  w.viewChanged = true;
  w.events.push({ topic: 'org.customFields.changed', subject: `customField:${input.key}`, payload: { change: 'created', key: input.key } });
  return (await listCustomFields(db, w.t)).find((f) => f.key === input.key)!;
}

export async function updateCustomField(db: Database, w: OrgTx, input: CustomFieldInput): Promise<CustomFieldDef> {
  const current = (await listCustomFields(db, w.t)).find((f) => f.key === input.key);
  if (!current) throw qiaoError('QIAO_NOT_FOUND', `custom field "${input.key}" does not exist`, { field: 'key' });
  // The type is fixed once values exist under it; a new type means a new field.
  const options = input.options !== undefined ? checkOptions(current.type, input.options) : current.options;
  await exec(
    db,
    `UPDATE org_custom_fields SET label = ?, options = ${jsonParam(db)}, client_visible = ?, sort_order = ?, updated_at = ? WHERE key = ?`,
    [
      input.label ?? current.label,
      options ? JSON.stringify(options) : null,
      input.clientVisible ?? current.clientVisible,
      input.sortOrder ?? current.sortOrder,
      new Date(),
      input.key,
    ],
    w.t,
  );
  w.viewChanged = true;
  w.events.push({ topic: 'org.customFields.changed', subject: `customField:${input.key}`, payload: { change: 'updated', key: input.key } });
  return (await listCustomFields(db, w.t)).find((f) => f.key === input.key)!;
}

/** Values stored under a deleted key stay in the rows but are never shown: reads go through the definitions. */
export async function deleteCustomField(db: Database, w: OrgTx, key: string): Promise<{ key: string; deleted: true }> {
  const n = await exec(db, 'DELETE FROM org_custom_fields WHERE key = ?', [key], w.t);
  if (!n) throw qiaoError('QIAO_NOT_FOUND', `custom field "${key}" does not exist`, { field: 'key' });
  w.viewChanged = true;
  w.events.push({ topic: 'org.customFields.changed', subject: `customField:${key}`, payload: { change: 'deleted', key } });
  return { key, deleted: true };
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Checks values against the definitions; text comes in from spreadsheets, so numbers may arrive as text.
 * An empty value (null or '') removes the key.
 */
export function checkCustomValues(defs: CustomFieldDef[], values: Record<string, unknown>, prefix = 'customFields'): { values: Record<string, string | number | null>; problems: FieldProblem[] } {
  const out: Record<string, string | number | null> = {};
  const problems: FieldProblem[] = [];
  const byKey = new Map(defs.map((d) => [d.key, d]));
  for (const [key, raw] of Object.entries(values)) {
    const field = `${prefix}.${key}`;
    const def = byKey.get(key);
    if (!def) {
      problems.push({ field, message: `${field}: there is no custom field "${key}" (define it first)` });
      continue;
    }
    if (raw === null || raw === undefined || raw === '') {
      out[key] = null;
      continue;
    }
    if (def.type === 'number') {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
      if (!Number.isFinite(n)) problems.push({ field, message: `${field} (${def.label}) must be a number` });
      else out[key] = n;
      continue;
    }
    const p = checkText(field, typeof raw === 'number' ? String(raw) : raw, LIMITS.customValue);
    if (p) {
      problems.push(p);
      continue;
    }
    const s = typeof raw === 'number' ? String(raw) : (raw as string);
    if (def.type === 'date' && (!DATE.test(s) || Number.isNaN(Date.parse(s)))) {
      problems.push({ field, message: `${field} (${def.label}) must be a date as YYYY-MM-DD` });
    } else if (def.type === 'select' && !def.options?.includes(s)) {
      problems.push({ field, message: `${field} (${def.label}) must be one of: ${def.options?.join(', ')}` });
    } else out[key] = s;
  }
  return { values: out, problems };
}

/** Applies checked changes onto stored values. */
export function mergeCustomValues(stored: CustomValues | null, changes: Record<string, string | number | null>): CustomValues | null {
  const merged: CustomValues = { ...(stored ?? {}) };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  return Object.keys(merged).length ? merged : null;
}
