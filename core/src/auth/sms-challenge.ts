import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import type { Device } from './sessions.ts';
import { exec, select, toDate } from '../db/sql.ts';
import { hashToken, newToken } from './tokens.ts';

/** Wrong codes one challenge tolerates before it is spent. */
export const MAX_CODE_ATTEMPTS = 5;
/** Challenges (SMS sent, not yet used or expired) one person may have at once: bounds SMS spending. */
export const MAX_OPEN_CHALLENGES = 3;

/** The code is bound to its challenge: the stored hash is useless without the challenge the client holds. */
function codeHash(challenge: string, code: string): string {
  return createHash('sha256').update(`${challenge}:${code}`).digest('hex');
}

export async function openChallenges(db: Database, userId: number, now: Date, t?: Transaction): Promise<number> {
  const [{ n }] = await select<{ n: number | string }>(
    db,
    'SELECT COUNT(*) AS n FROM sms_challenges WHERE user_id = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?',
    [userId, now, MAX_CODE_ATTEMPTS],
    t,
  );
  return Number(n);
}

export async function createChallenge(
  db: Database,
  t: Transaction,
  c: Device & { userId: number; ip: string; now: Date; ttlSeconds: number },
): Promise<{ challenge: string; code: string; expiresAt: Date }> {
  const challenge = newToken();
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  const expiresAt = new Date(c.now.getTime() + c.ttlSeconds * 1000);
  await exec(
    db,
    `INSERT INTO sms_challenges (challenge_hash, user_id, code_hash, device_type, device_id, device_name, ip, attempts, created_at, expires_at, used_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, NULL)`,
    [hashToken(challenge), c.userId, codeHash(challenge, code), c.deviceType, c.deviceId, c.deviceName ?? null, c.ip, c.now, expiresAt],
    t,
  );
  return { challenge, code, expiresAt };
}

export async function dropChallenge(db: Database, t: Transaction, challenge: string): Promise<void> {
  await exec(db, 'DELETE FROM sms_challenges WHERE challenge_hash = ?', [hashToken(challenge)], t);
}

export interface ChallengeRow {
  userId: number;
  deviceType: string;
  deviceId: string;
  usable: boolean;
}

export async function findChallenge(db: Database, challenge: string, now: Date, t?: Transaction): Promise<ChallengeRow | null> {
  const [row] = await select<Record<string, unknown>>(
    db,
    'SELECT user_id, device_type, device_id, attempts, expires_at, used_at FROM sms_challenges WHERE challenge_hash = ?',
    [hashToken(challenge)],
    t,
  );
  if (!row) return null;
  const usable = row.used_at === null && toDate(row.expires_at)!.getTime() > now.getTime() && Number(row.attempts) < MAX_CODE_ATTEMPTS;
  return { userId: Number(row.user_id), deviceType: String(row.device_type), deviceId: String(row.device_id), usable };
}

/**
 * Checks `code` and, when right, spends the challenge. Single use holds under concurrency: only the one
 * UPDATE that finds `used_at` still empty wins.
 */
export async function consumeChallenge(db: Database, t: Transaction, challenge: string, code: string, now: Date): Promise<'ok' | 'wrong' | 'spent'> {
  const [row] = await select<{ code_hash: string }>(
    db,
    'SELECT code_hash FROM sms_challenges WHERE challenge_hash = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?',
    [hashToken(challenge), now, MAX_CODE_ATTEMPTS],
    t,
  );
  if (!row) return 'spent';
  const expected = Buffer.from(row.code_hash, 'hex');
  const given = Buffer.from(codeHash(challenge, code), 'hex');
  if (!timingSafeEqual(expected, given)) {
    await exec(db, 'UPDATE sms_challenges SET attempts = attempts + 1 WHERE challenge_hash = ?', [hashToken(challenge)], t);
    return 'wrong';
  }
  const won = await exec(db, 'UPDATE sms_challenges SET used_at = ? WHERE challenge_hash = ? AND used_at IS NULL', [now, hashToken(challenge)], t);
  return won === 1 ? 'ok' : 'spent';
}

/** `138****1234`: enough for the person to recognise the number, not enough to learn it. */
export function maskMobile(mobile: string): string {
  const digits = [...mobile];
  if (digits.length <= 4) return '*'.repeat(digits.length);
  const keep = Math.min(3, digits.length - 4);
  return `${digits.slice(0, keep).join('')}${'*'.repeat(digits.length - keep - 4)}${digits.slice(-4).join('')}`;
}
