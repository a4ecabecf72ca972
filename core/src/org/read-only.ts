import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { readOnlySources } from './settings.ts';

/**
 * While an external master owns the org chart (the RTX bridge keeps RTX the master and syncs it in), its
 * records are read-only in Qiao: the setting `org.readOnlySources` lists such sources. The sync itself
 * writes through the same actions with `meta.orgSyncSource` naming its source.
 */
export interface WriteOrigin {
  /** Set by a synchroniser (the RTX bridge) for the source it owns. */
  syncSource?: string;
}

const LABELS: Record<string, string> = { rtx: 'RTX', ldap: 'LDAP' };

export function sourceLabel(source: string): string {
  return LABELS[source] ?? source;
}

export function originOf(meta: unknown): WriteOrigin {
  const s = (meta as { orgSyncSource?: unknown } | undefined)?.orgSyncSource;
  return typeof s === 'string' && s ? { syncSource: s } : {};
}

export async function assertWritable(
  db: Database,
  t: Transaction,
  origin: WriteOrigin,
  record: { source: string | null },
  what: string,
): Promise<void> {
  if (!record.source || origin.syncSource === record.source) return;
  const sources = await readOnlySources(db, t);
  if (!sources.includes(record.source)) return;
  const label = sourceLabel(record.source);
  throw qiaoError(
    'QIAO_FORBIDDEN',
    `${what} is managed by ${label} (source "${record.source}"): change it in ${label}, or remove "${record.source}" from the org.readOnlySources setting`,
    { source: record.source },
  );
}
