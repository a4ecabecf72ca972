import { randomBytes } from 'node:crypto';
import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { exec, jsonParam, parseJson, select } from '../db/sql.ts';

export const DEVICE_TYPES = ['windows', 'mac', 'linux', 'android', 'ios', 'web'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/** The Youdu-compatible third-party authentication callback (Youdu's 第三方登录认证). */
export interface ExternalAuthSettings {
  /** Where the callback is POSTed; null: not configured, external users cannot log in. */
  url: string | null;
  /** Signs each callback (`msg_signature`), like Youdu's "认证的Token". */
  token: string;
  /** The app id carried as `toApp` and inside the encrypted body (Youdu's org-sync system app). */
  appId: string;
  /** Base64 of the 32-byte AES key the body is encrypted with. */
  encodingAesKey: string;
  timeoutMs: number;
}

export interface AuthSettings {
  /** 8–16 characters with upper, lower, digit and special (Youdu's 高强度密码). */
  strongPassword: boolean;
  /** 0: passwords never expire. */
  passwordExpiryDays: number;
  /** Wrong passwords in a row that lock an account; 0: never lock. */
  lockoutThreshold: number;
  /** A person not yet authorised is authorised on first login while licence seats remain. */
  autoAuthorise: boolean;
  allowedDeviceTypes: DeviceType[];
  /** A new login ends the person's other session of the same device type. */
  onePerDeviceType: boolean;
  /** Logins only from the internal ranges in login_ip_rules, except for exempt people. */
  ipRestriction: boolean;
  /** Two-step login with a code sent through the `sms.send` action. */
  smsTwoFactor: boolean;
  smsCodeTtlSeconds: number;
  sessionDays: number;
  /** Proxies (CIDRs) whose X-Forwarded-For is believed; empty: the socket address is the client. */
  trustedProxies: string[];
  externalAuth: ExternalAuthSettings;
}

export const SETTINGS_KEY = 'auth.settings';

export const DEFAULT_SETTINGS: Omit<AuthSettings, 'externalAuth'> & { externalAuth: Omit<ExternalAuthSettings, 'token' | 'encodingAesKey'> } = {
  strongPassword: true,
  passwordExpiryDays: 0,
  lockoutThreshold: 5,
  autoAuthorise: true,
  allowedDeviceTypes: [...DEVICE_TYPES],
  onePerDeviceType: true,
  ipRestriction: false,
  smsTwoFactor: false,
  smsCodeTtlSeconds: 300,
  sessionDays: 30,
  trustedProxies: [],
  externalAuth: { url: null, appId: 'sysOrgAssistant', timeoutMs: 5000 },
};

/** A token like the ones Youdu's console generates: letters and digits. */
export function generateCallbackToken(length = 16): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
}

export function generateAesKey(): string {
  return randomBytes(32).toString('base64');
}

type Stored = Partial<Omit<AuthSettings, 'externalAuth'>> & { externalAuth?: Partial<ExternalAuthSettings> };

async function readStored(db: Database, t?: Transaction): Promise<Stored | undefined> {
  const [row] = await select<{ value: unknown }>(db, 'SELECT value FROM system_settings WHERE key = ?', [SETTINGS_KEY], t);
  if (!row) return undefined;
  try {
    const v = parseJson<Stored>(row.value);
    return v && typeof v === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}

const pick = <T>(v: unknown, ok: (x: unknown) => boolean, fallback: T): T => (ok(v) ? (v as T) : fallback);
const isBool = (x: unknown) => typeof x === 'boolean';
const intIn = (min: number, max: number) => (x: unknown) => Number.isInteger(x) && (x as number) >= min && (x as number) <= max;

/**
 * The settings in force. A malformed stored value falls back to its default field by field, so a bad edit
 * cannot stop every login.
 */
export async function readSettings(db: Database, t?: Transaction): Promise<AuthSettings> {
  const s = (await readStored(db, t)) ?? {};
  const d = DEFAULT_SETTINGS;
  const e = s.externalAuth ?? {};
  return {
    strongPassword: pick(s.strongPassword, isBool, d.strongPassword),
    passwordExpiryDays: pick(s.passwordExpiryDays, intIn(0, 3650), d.passwordExpiryDays),
    lockoutThreshold: pick(s.lockoutThreshold, intIn(0, 100), d.lockoutThreshold),
    autoAuthorise: pick(s.autoAuthorise, isBool, d.autoAuthorise),
    allowedDeviceTypes: pick(
      s.allowedDeviceTypes,
      (x) => Array.isArray(x) && x.every((v) => DEVICE_TYPES.includes(v as DeviceType)),
      d.allowedDeviceTypes,
    ),
    onePerDeviceType: pick(s.onePerDeviceType, isBool, d.onePerDeviceType),
    ipRestriction: pick(s.ipRestriction, isBool, d.ipRestriction),
    smsTwoFactor: pick(s.smsTwoFactor, isBool, d.smsTwoFactor),
    smsCodeTtlSeconds: pick(s.smsCodeTtlSeconds, intIn(30, 3600), d.smsCodeTtlSeconds),
    sessionDays: pick(s.sessionDays, intIn(1, 365), d.sessionDays),
    trustedProxies: pick(s.trustedProxies, (x) => Array.isArray(x) && x.every((v) => typeof v === 'string'), d.trustedProxies),
    externalAuth: {
      url: pick(e.url, (x) => x === null || typeof x === 'string', d.externalAuth.url) || null,
      appId: pick(e.appId, (x) => typeof x === 'string' && x.length > 0, d.externalAuth.appId),
      timeoutMs: pick(e.timeoutMs, intIn(100, 60_000), d.externalAuth.timeoutMs),
      token: pick(e.token, (x) => typeof x === 'string' && x.length > 0, ''),
      encodingAesKey: pick(e.encodingAesKey, (x) => typeof x === 'string' && x.length > 0, ''),
    },
  };
}

export async function writeSettings(db: Database, settings: AuthSettings, t: Transaction): Promise<void> {
  await exec(
    db,
    `INSERT INTO system_settings (key, value, updated_at) VALUES (?, ${jsonParam(db)}, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    [SETTINGS_KEY, JSON.stringify(settings), new Date()],
    t,
  );
}

/** First start: stores the defaults with freshly generated callback secrets, so they stay the same across restarts. */
export async function ensureSettings(db: Database): Promise<void> {
  await db.transaction(async (t) => {
    const current = await readSettings(db, t);
    if (current.externalAuth.token && current.externalAuth.encodingAesKey) return;
    current.externalAuth.token ||= generateCallbackToken();
    current.externalAuth.encodingAesKey ||= generateAesKey();
    await writeSettings(db, current, t);
  });
}
