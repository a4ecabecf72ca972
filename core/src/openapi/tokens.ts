import { createHash, randomBytes } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { rows, run } from './app-store.ts';
import { cgiError } from './errcodes.ts';

/** Youdu's access tokens live 7,200 s; every call to gettoken issues a new one and older ones stay valid. */
export const ACCESS_TOKEN_TTL_S = 7200;
/** `$TOKEN$` identify tokens live three minutes. */
export const SSO_TOKEN_TTL_S = 180;
/** Expired rows are kept this long so a late caller hears "expired" (100002), not "does not exist". */
const KEEP_EXPIRED_MS = 24 * 3600_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export async function issueAccessToken(db: Database, appId: string, now: Date): Promise<{ accessToken: string; expireIn: number }> {
  const token = randomBytes(24).toString('hex');
  await run(db, 'INSERT INTO openapi_tokens (token_hash, app_id, created_at, expires_at) VALUES (?, ?, ?, ?)', [
    sha256(token),
    appId,
    now,
    new Date(now.getTime() + ACCESS_TOKEN_TTL_S * 1000),
  ]);
  return { accessToken: token, expireIn: ACCESS_TOKEN_TTL_S };
}

/** The app an access token belongs to; the documented code when it is missing, unknown or expired. */
export async function checkAccessToken(db: Database, token: string | undefined, now: Date): Promise<string> {
  if (token === undefined || token === '') throw cgiError('ERRCODE_MISS_ACCESSTOKEN', 'accessToken is missing from the query string');
  if (!/^[0-9a-f]{48}$/.test(token)) throw cgiError('ERRCODE_ACCESSTOKEN_NOTEXIST', 'accessToken does not exist');
  const [row] = await rows<{ app_id: string; expires_at: string | Date }>(db, 'SELECT app_id, expires_at FROM openapi_tokens WHERE token_hash = ?', [sha256(token)]);
  if (!row) throw cgiError('ERRCODE_ACCESSTOKEN_NOTEXIST', 'accessToken does not exist');
  if (new Date(row.expires_at).getTime() <= now.getTime()) throw cgiError('ERRCODE_ACCESSTOKEN_EXPIRED', 'accessToken has expired: call /cgi/gettoken for a new one');
  return row.app_id;
}

/**
 * Refuses an envelope seen before. Every SDK seals each request with a fresh random prefix, so the same
 * ciphertext twice is a captured request played again. Remembered for as long as a token lives.
 */
export async function rememberEnvelope(db: Database, appId: string, encrypted: string, now: Date): Promise<void> {
  const digest = sha256(`${appId}\u0000${encrypted}`);
  const expires = new Date(now.getTime() + ACCESS_TOKEN_TTL_S * 1000);
  const inserted = await rows<{ digest: string }>(db, 'INSERT INTO openapi_envelopes (digest, expires_at) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING RETURNING digest', [digest, expires]);
  if (inserted.length === 0) throw cgiError('ERRCODE_INVALID_REQUEST', 'this envelope was already received: a replayed request is refused');
}

export async function issueSsoToken(db: Database, userId: number, appId: string | null, now: Date): Promise<{ token: string; expiresAt: string }> {
  const token = randomBytes(24).toString('base64url');
  const expiresAt = new Date(now.getTime() + SSO_TOKEN_TTL_S * 1000);
  await run(db, 'INSERT INTO openapi_sso_tokens (token_hash, user_id, app_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)', [sha256(token), userId, appId, now, expiresAt]);
  return { token, expiresAt: expiresAt.toISOString() };
}

export async function checkSsoToken(db: Database, token: string, now: Date): Promise<{ userId: number; appId: string | null } | null> {
  if (!/^[A-Za-z0-9_-]{32}$/.test(token)) return null;
  const [row] = await rows<{ user_id: number; app_id: string | null; expires_at: string | Date }>(
    db,
    'SELECT user_id, app_id, expires_at FROM openapi_sso_tokens WHERE token_hash = ?',
    [sha256(token)],
  );
  if (!row || new Date(row.expires_at).getTime() <= now.getTime()) return null;
  return { userId: Number(row.user_id), appId: row.app_id };
}

export async function pruneTokens(db: Database, now: Date): Promise<void> {
  const horizon = new Date(now.getTime() - KEEP_EXPIRED_MS);
  await run(db, 'DELETE FROM openapi_tokens WHERE expires_at < ?', [horizon]);
  await run(db, 'DELETE FROM openapi_sso_tokens WHERE expires_at < ?', [horizon]);
  await run(db, 'DELETE FROM openapi_envelopes WHERE expires_at < ?', [now]);
}
