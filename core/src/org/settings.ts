import { QueryTypes, type Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { jsonParam, parseJson } from '../db/sql.ts';

/**
 * The org's system settings (rows of `system_settings`, the same key/value store `system.settings.get|set`
 * serves). Missing or malformed values fall back to the defaults, so a typo in a setting cannot stop the
 * directory.
 */

export const NAME_FORMATS = ['name', 'account', 'name(account)', 'account(name)'] as const;
export type NameFormat = (typeof NAME_FORMATS)[number];
/** `weight`: by weight (larger first) then account; `online`: online people first, then the same. */
export const SORT_RULES = ['weight', 'online'] as const;
export type SortRule = (typeof SORT_RULES)[number];

export interface DisplaySettings {
  nameFormat: NameFormat;
  sortRule: SortRule;
}

export const DEFAULT_DISPLAY: DisplaySettings = { nameFormat: 'name', sortRule: 'weight' };
export const DEFAULT_IMPORT_MAX_BYTES = 100 * 1024 * 1024;
export const DEFAULT_TOMBSTONE_DAYS = 180;

export const SETTING_KEYS = {
  readOnlySources: 'org.readOnlySources',
  importMaxBytes: 'org.import.maxBytes',
  display: 'org.display',
  tombstoneDays: 'org.tombstoneDays',
} as const;

export async function readSetting(db: Database, key: string, transaction?: Transaction): Promise<unknown> {
  const rows = await db.sequelize.query<{ value: unknown }>('SELECT value FROM system_settings WHERE key = ?', {
    replacements: [key],
    type: QueryTypes.SELECT,
    transaction,
  });
  if (rows.length === 0) return undefined;
  try {
    return parseJson(rows[0].value);
  } catch {
    return undefined;
  }
}

export async function writeSetting(db: Database, key: string, value: unknown, transaction: Transaction): Promise<void> {
  await db.sequelize.query(
    `INSERT INTO system_settings (key, value, updated_at) VALUES (?, ${jsonParam(db)}, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    { replacements: [key, JSON.stringify(value), new Date()], transaction },
  );
}

export async function readOnlySources(db: Database, transaction?: Transaction): Promise<string[]> {
  const v = await readSetting(db, SETTING_KEYS.readOnlySources, transaction);
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

export async function importMaxBytes(db: Database): Promise<number> {
  const v = Number(await readSetting(db, SETTING_KEYS.importMaxBytes));
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_IMPORT_MAX_BYTES;
}

export async function tombstoneDays(db: Database, transaction?: Transaction): Promise<number> {
  const v = Number(await readSetting(db, SETTING_KEYS.tombstoneDays, transaction));
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_TOMBSTONE_DAYS;
}

export async function displaySettings(db: Database, transaction?: Transaction): Promise<DisplaySettings> {
  const v = (await readSetting(db, SETTING_KEYS.display, transaction)) as Partial<DisplaySettings> | undefined;
  return {
    nameFormat: NAME_FORMATS.includes(v?.nameFormat as NameFormat) ? (v!.nameFormat as NameFormat) : DEFAULT_DISPLAY.nameFormat,
    sortRule: SORT_RULES.includes(v?.sortRule as SortRule) ? (v!.sortRule as SortRule) : DEFAULT_DISPLAY.sortRule,
  };
}

/** How a person's name is shown under the configured format. */
export function formatName(user: { account: string; name: string }, format: NameFormat): string {
  switch (format) {
    case 'account':
      return user.account;
    case 'name(account)':
      return `${user.name}(${user.account})`;
    case 'account(name)':
      return `${user.account}(${user.name})`;
    default:
      return user.name;
  }
}
