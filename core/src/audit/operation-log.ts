import type { Database } from '../db/database.ts';
import { exec, iso, jsonParam, parseJson } from '../db/sql.ts';
import type { ExportColumn } from './export.ts';
import type { LogSpec } from './log-query.ts';
import { redact } from './redact.ts';

/** One admin call as the admin API saw it. Nothing in Qiao updates or deletes these rows. */
export interface OperationRecord {
  adminId?: number | null;
  adminAccount?: string | null;
  action: string;
  method?: string | null;
  path?: string | null;
  params?: unknown;
  outcome: 'ok' | 'error';
  status?: number | null;
  errorCode?: string | null;
  errorMessage?: string | null;
  ip?: string | null;
}

export interface OperationEntry extends OperationRecord {
  id: number;
  at: string;
}

/** Parameters bigger than this (after redaction) are kept as a preview. */
const MAX_PARAMS_CHARS = 16_000;

const clip = (v: string | null | undefined, max: number) => (v === null || v === undefined ? null : [...v].slice(0, max).join(''));

export async function appendOperation(db: Database, r: OperationRecord, at: Date): Promise<void> {
  // Redacted here as well as by the caller: whatever reaches this table must hold no credentials.
  let params = JSON.stringify(redact(r.params ?? null));
  if (params.length > MAX_PARAMS_CHARS) params = JSON.stringify({ truncated: true, chars: params.length, preview: params.slice(0, 2000) });
  const values = [
    r.adminId ?? null,
    clip(r.adminAccount, 64),
    clip(r.action, 200),
    clip(r.method, 10),
    clip(r.path, 500),
    params,
    r.outcome,
    r.status ?? null,
    clip(r.errorCode, 64),
    clip(r.errorMessage, 500),
    clip(r.ip, 64),
    at,
  ];
  const sql = `INSERT INTO admin_operation_log (admin_id, admin_account, action, method, path, params, outcome, status, error_code, error_message, ip, created_at)
     VALUES (?, ?, ?, ?, ?, ${jsonParam(db)}, ?, ?, ?, ?, ?, ?)`;
  await exec(db, sql, values);
}

export const OPERATION_LOG: LogSpec<OperationEntry> = {
  table: 'admin_operation_log',
  columns: 'id, admin_id, admin_account, action, method, path, params, outcome, status, error_code, error_message, ip, created_at',
  accountColumn: 'admin_account',
  eventColumn: 'action',
  searchColumns: ['admin_account', 'action', 'path'],
  toEntry: (r) => ({
    id: Number(r.id),
    adminId: r.admin_id === null ? null : Number(r.admin_id),
    adminAccount: (r.admin_account as string | null) ?? null,
    action: String(r.action),
    method: (r.method as string | null) ?? null,
    path: (r.path as string | null) ?? null,
    params: r.params === null || r.params === undefined ? null : parseJson(r.params),
    outcome: r.outcome as 'ok' | 'error',
    status: r.status === null ? null : Number(r.status),
    errorCode: (r.error_code as string | null) ?? null,
    errorMessage: (r.error_message as string | null) ?? null,
    ip: (r.ip as string | null) ?? null,
    at: iso(r.created_at)!,
  }),
};

export const OPERATION_COLUMNS: ExportColumn<OperationEntry>[] = [
  { header: 'time', value: (e) => e.at },
  { header: 'admin', value: (e) => e.adminAccount },
  { header: 'action', value: (e) => e.action },
  { header: 'method', value: (e) => e.method },
  { header: 'path', value: (e) => e.path },
  { header: 'params', value: (e) => e.params },
  { header: 'outcome', value: (e) => e.outcome },
  { header: 'status', value: (e) => e.status },
  { header: 'errorCode', value: (e) => e.errorCode },
  { header: 'errorMessage', value: (e) => e.errorMessage },
  { header: 'ip', value: (e) => e.ip },
];
