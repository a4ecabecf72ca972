import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { jsonParam, parseJson, queryRows } from '../db/sql.ts';

/** The largest group Qiao serves: fan-out, receipts and department groups are sized for it. */
export const MAX_GROUP_MEMBERS = 5000;
/** Youdu lets the admin stretch the recall window up to 48 hours. */
export const MAX_RECALL_WINDOW_SECONDS = 48 * 3600;
export const FILE_KINDS = ['image', 'file', 'voice'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

const MiB = 1024 * 1024;

/** The admin's messaging settings (Youdu 聊天管理 / 权限管理 / 敏感信息保护). */
export interface ImSettings {
  discussion: {
    /** Most members a discussion group may have (讨论组人数设置). */
    memberCap: number;
    /** People whose discussion groups may grow to the group maximum instead. */
    whitelist: number[];
  };
  /** How long after sending a message may be recalled, seconds (default 2 minutes, at most 48 hours). */
  recallWindowSeconds: number;
  /** Everyone sees read state of every message, whatever the sender chose (消息阅读状态). */
  readReceiptsForced: boolean;
  sensitiveWords: { enabled: boolean; mode: 'mask' | 'block'; words: string[] };
  files: {
    /** Largest upload per kind, bytes (文件传输权限). */
    maxBytes: Record<FileKind, number>;
    /** Space of each group's shared files, bytes, unless the group has its own quota (群空间容量). */
    groupSpaceBytes: number;
    /** Files older than this are purged from disk; 0 keeps them for ever (文件保存期限). */
    retentionDays: number;
  };
  /** Sync inbox entries older than this are pruned; a client further behind is told to reset. */
  syncRetentionDays: number;
  /** Users allowed to send broadcasts besides admins (广播权限). */
  broadcastSenders: number[];
}

export const DEFAULT_SETTINGS: ImSettings = {
  discussion: { memberCap: 200, whitelist: [] },
  recallWindowSeconds: 120,
  readReceiptsForced: false,
  sensitiveWords: { enabled: false, mode: 'mask', words: [] },
  files: { maxBytes: { image: 20 * MiB, file: 200 * MiB, voice: 10 * MiB }, groupSpaceBytes: 1024 * MiB, retentionDays: 0 },
  syncRetentionDays: 90,
  broadcastSenders: [],
};

const KEY = 'im.settings';

type Patch<T> = { [K in keyof T]?: T[K] extends unknown[] ? T[K] : T[K] extends object ? Patch<T[K]> : T[K] };
export type ImSettingsPatch = Patch<ImSettings>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep-merges `patch` over `base`; arrays and scalars replace, objects merge. */
function merge<T>(base: T, patch: unknown): T {
  if (!isPlainObject(patch) || !isPlainObject(base)) return (patch === undefined ? base : patch) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined || !(k in out)) continue;
    out[k] = isPlainObject(out[k]) ? merge(out[k], v) : v;
  }
  return out as T;
}

/**
 * The stored settings over the defaults. A stored value of the wrong shape (hand-edited row) falls back to
 * the default for that key rather than stopping every send.
 */
export async function readSettings(db: Database, transaction?: Transaction): Promise<ImSettings> {
  const [row] = await queryRows<{ value: unknown }>(db, 'SELECT value FROM system_settings WHERE key = ?', [KEY], transaction);
  let stored: unknown;
  try {
    stored = row ? parseJson(row.value) : undefined;
  } catch {
    stored = undefined;
  }
  const merged = merge(DEFAULT_SETTINGS, stored);
  return sane(merged);
}

function sane(s: ImSettings): ImSettings {
  const d = DEFAULT_SETTINGS;
  const int = (v: unknown, min: number, max: number, fallback: number) => (Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : fallback);
  const ids = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is number => Number.isInteger(x) && x > 0) : []);
  return {
    discussion: { memberCap: int(s.discussion?.memberCap, 2, MAX_GROUP_MEMBERS, d.discussion.memberCap), whitelist: ids(s.discussion?.whitelist) },
    recallWindowSeconds: int(s.recallWindowSeconds, 0, MAX_RECALL_WINDOW_SECONDS, d.recallWindowSeconds),
    readReceiptsForced: s.readReceiptsForced === true,
    sensitiveWords: {
      enabled: s.sensitiveWords?.enabled === true,
      mode: s.sensitiveWords?.mode === 'block' ? 'block' : 'mask',
      words: Array.isArray(s.sensitiveWords?.words) ? s.sensitiveWords.words.filter((w): w is string => typeof w === 'string' && w.trim() !== '') : [],
    },
    files: {
      maxBytes: {
        image: int(s.files?.maxBytes?.image, 1, Number.MAX_SAFE_INTEGER, d.files.maxBytes.image),
        file: int(s.files?.maxBytes?.file, 1, Number.MAX_SAFE_INTEGER, d.files.maxBytes.file),
        voice: int(s.files?.maxBytes?.voice, 1, Number.MAX_SAFE_INTEGER, d.files.maxBytes.voice),
      },
      groupSpaceBytes: int(s.files?.groupSpaceBytes, 0, Number.MAX_SAFE_INTEGER, d.files.groupSpaceBytes),
      retentionDays: int(s.files?.retentionDays, 0, 36500, d.files.retentionDays),
    },
    syncRetentionDays: int(s.syncRetentionDays, 1, 36500, d.syncRetentionDays),
    broadcastSenders: ids(s.broadcastSenders),
  };
}

/** Applies an already-validated patch and returns the settings now in force. */
export async function updateSettings(db: Database, patch: ImSettingsPatch): Promise<ImSettings> {
  return db.transaction(async (t) => {
    const next = sane(merge(await readSettings(db, t), patch));
    // Words are compared without case and stored once each, in the admin's spelling.
    const seen = new Set<string>();
    next.sensitiveWords.words = next.sensitiveWords.words.map((w) => w.trim()).filter((w) => !seen.has(w.toLowerCase()) && seen.add(w.toLowerCase()));
    next.discussion.whitelist = [...new Set(next.discussion.whitelist)].sort((a, b) => a - b);
    next.broadcastSenders = [...new Set(next.broadcastSenders)].sort((a, b) => a - b);
    await db.sequelize.query(
      `INSERT INTO system_settings (key, value, updated_at) VALUES (?, ${jsonParam(db)}, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      { replacements: [KEY, JSON.stringify(next), new Date()], transaction: t },
    );
    return next;
  });
}

const id = { type: 'number', integer: true, positive: true } as const;
const bytes = { type: 'number', integer: true, min: 1, max: Number.MAX_SAFE_INTEGER, optional: true } as const;

/** Moleculer param schema of `im.settings.update`: every key optional, each checked with its field named. */
export const SETTINGS_PATCH_PARAMS = {
  discussion: {
    type: 'object',
    optional: true,
    strict: 'remove',
    props: {
      memberCap: { type: 'number', integer: true, min: 2, max: MAX_GROUP_MEMBERS, optional: true },
      whitelist: { type: 'array', items: id, max: 10_000, optional: true },
    },
  },
  recallWindowSeconds: { type: 'number', integer: true, min: 0, max: MAX_RECALL_WINDOW_SECONDS, optional: true },
  readReceiptsForced: { type: 'boolean', optional: true },
  sensitiveWords: {
    type: 'object',
    optional: true,
    strict: 'remove',
    props: {
      enabled: { type: 'boolean', optional: true },
      mode: { type: 'enum', values: ['mask', 'block'], optional: true },
      words: { type: 'array', items: { type: 'string', min: 1, max: 50 }, max: 10_000, optional: true },
    },
  },
  files: {
    type: 'object',
    optional: true,
    strict: 'remove',
    props: {
      maxBytes: { type: 'object', optional: true, strict: 'remove', props: { image: bytes, file: bytes, voice: bytes } },
      groupSpaceBytes: { type: 'number', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, optional: true },
      retentionDays: { type: 'number', integer: true, min: 0, max: 36500, optional: true },
    },
  },
  syncRetentionDays: { type: 'number', integer: true, min: 1, max: 36500, optional: true },
  broadcastSenders: { type: 'array', items: id, max: 10_000, optional: true },
} as const;
