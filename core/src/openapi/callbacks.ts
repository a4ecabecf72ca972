import { randomBytes } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { findApp, jsonCast, rows, run, type App } from './app-store.ts';
import { aesKey, decrypt, encrypt, signature } from './crypto.ts';

/**
 * Callbacks Qiao makes to apps (docs/api/c01_00001.md 回调, c01_00002.md 消息回调): `POST url?msg_signature=
 * &timestamp=&nonce=` with `{ toBuin, toApp, encrypt }`. Notices are durable: a row in `openapi_callbacks`
 * first, then delivery by a worker that retries with growing pauses for 24 hours until the app
 * acknowledges; every attempt is a row in `openapi_callback_attempts`. A restart loses nothing: due rows are
 * picked up by whichever node runs next.
 */
export const RETRY_FOR_MS = 24 * 3600_000;
const FIRST_RETRY_MS = 10_000;
const MAX_PAUSE_MS = 3600_000;
/** A claimed row is left alone by other workers this long (a crashed worker's claim runs out). */
const LEASE_MS = 120_000;
const TIMEOUT_MS = 10_000;
const MAX_ANSWER = 64 * 1024;

export function pauseAfter(attempt: number): number {
  return Math.min(MAX_PAUSE_MS, FIRST_RETRY_MS * 2 ** Math.max(0, attempt - 1));
}

/** Whether a callback with this packageId was ever queued for the app (followers queue each once). */
export async function isQueued(db: Database, appId: string, packageId: string): Promise<boolean> {
  return (await rows(db, 'SELECT id FROM openapi_callbacks WHERE app_id = ? AND package_id = ?', [appId, packageId])).length > 0;
}

export async function enqueueCallback(
  db: Database,
  appId: string,
  message: Record<string, unknown>,
  now: Date,
  target?: { url: string; token: string | null },
): Promise<string> {
  const packageId = (message.packageId as string | undefined) ?? `${now.getTime()}${randomBytes(4).toString('hex')}`;
  const j = jsonCast(db);
  await run(
    db,
    `INSERT INTO openapi_callbacks (app_id, url, token, package_id, message, status, attempts, next_attempt_at, give_up_at, created_at)
     VALUES (?, ?, ?, ?, ${j}, 'pending', 0, ?, ?, ?)`,
    [appId, target?.url ?? null, target?.token ?? null, packageId, JSON.stringify({ ...message, packageId }), now, new Date(now.getTime() + RETRY_FOR_MS), now],
  );
  return packageId;
}

export interface CallbackOutcome {
  ok: boolean;
  status: number | null;
  error: string | null;
  /** The app's decrypted `encrypt` answer, when it sent one. */
  answer: Buffer | null;
  durationMs: number;
}

/** One signed POST; `ok` when the app acknowledged (errcode 0, "OK", or the packageId written back). */
export async function post(app: App, url: string, token: string, buin: number, message: Record<string, unknown>, now: Date): Promise<CallbackOutcome> {
  const started = Date.now();
  const key = aesKey(app.encodingAesKey);
  const enc = encrypt(JSON.stringify(message), key, app.appId);
  const timestamp = String(Math.floor(now.getTime() / 1000));
  const nonce = randomBytes(8).toString('hex');
  const target = new URL(url);
  target.searchParams.set('msg_signature', signature(token, timestamp, nonce, enc));
  target.searchParams.set('timestamp', timestamp);
  target.searchParams.set('nonce', nonce);
  const done = (ok: boolean, status: number | null, error: string | null, answer: Buffer | null = null): CallbackOutcome => ({ ok, status, error, answer, durationMs: Date.now() - started });
  let res: Response;
  let text: string;
  try {
    res = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ toBuin: buin, toApp: app.appId, encrypt: enc }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
    text = Buffer.from(await res.arrayBuffer()).subarray(0, MAX_ANSWER).toString('utf8').trim();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return done(false, null, e.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS} ms` : `unreachable (${e.cause?.code ?? e.message})`.slice(0, 500));
  }
  if (res.status !== 200) return done(false, res.status, `answered HTTP ${res.status}`);
  if (/^ok$/i.test(text) || text === String(message.packageId)) return done(true, 200, null);
  let answer: { errcode?: unknown; errmsg?: unknown; encrypt?: unknown };
  try {
    answer = JSON.parse(text);
  } catch {
    return done(false, 200, `answered something that is neither JSON nor OK: ${text.slice(0, 80)}`);
  }
  if (Number(answer?.errcode) !== 0) return done(false, 200, `answered errcode ${String(answer?.errcode)}: ${String(answer?.errmsg ?? '').slice(0, 200)}`);
  let opened: Buffer | null = null;
  if (typeof answer.encrypt === 'string' && answer.encrypt) {
    try {
      opened = decrypt(answer.encrypt, key, app.appId);
    } catch (err) {
      return done(false, 200, `its encrypt does not decrypt: ${(err as Error).message}`);
    }
  }
  return done(true, 200, null, opened);
}

interface CallbackRow {
  id: number | string;
  app_id: string;
  url: string | null;
  token: string | null;
  package_id: string;
  message: unknown;
  attempts: number | string;
  next_attempt_at: string | Date;
  give_up_at: string | Date;
}

async function logAttempt(db: Database, callbackId: number, attempt: number, url: string, o: CallbackOutcome, at: Date): Promise<void> {
  await run(db, 'INSERT INTO openapi_callback_attempts (callback_id, attempt, url, http_status, outcome, error, duration_ms, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
    callbackId,
    attempt,
    url,
    o.status,
    o.ok ? 'ok' : 'failed',
    o.error,
    o.durationMs,
    at,
  ]);
}

/** Delivers every due callback once (as of `now`); returns how many were tried. */
export async function runDue(db: Database, buin: number, now: Date, limit = 50): Promise<number> {
  const due = await rows<CallbackRow>(
    db,
    "SELECT id, app_id, url, token, package_id, message, attempts, next_attempt_at, give_up_at FROM openapi_callbacks WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
    [now, limit],
  );
  let tried = 0;
  for (const row of due) {
    const id = Number(row.id);
    // Claim: only one worker (of any node, whatever clock it runs with) moves the row's next attempt
    // forward from the value it read; a worker that read the row before another claimed it finds it changed.
    const claimed = await rows(db, "UPDATE openapi_callbacks SET next_attempt_at = ? WHERE id = ? AND status = 'pending' AND attempts = ? AND next_attempt_at = ? RETURNING id", [
      new Date(now.getTime() + LEASE_MS),
      id,
      row.attempts,
      row.next_attempt_at,
    ]);
    if (!claimed.length) continue;
    tried++;
    const attempt = Number(row.attempts) + 1;
    const message = (typeof row.message === 'string' ? JSON.parse(row.message) : row.message) as Record<string, unknown>;
    const app = await findApp(db, row.app_id);
    const url = row.url ?? app?.callbackUrl ?? null;
    const token = row.token ?? app?.callbackToken ?? '';
    let outcome: CallbackOutcome;
    if (!app) outcome = { ok: false, status: null, error: `app ${row.app_id} no longer exists`, answer: null, durationMs: 0 };
    else if (!url) outcome = { ok: false, status: null, error: 'the app has no callback URL', answer: null, durationMs: 0 };
    else outcome = await post(app, url, token, buin, message, now);
    await logAttempt(db, id, attempt, url ?? '', outcome, now);
    if (outcome.ok) {
      await run(db, "UPDATE openapi_callbacks SET status = 'delivered', attempts = ?, delivered_at = ?, last_error = NULL WHERE id = ?", [attempt, now, id]);
      continue;
    }
    const next = new Date(now.getTime() + pauseAfter(attempt));
    const giveUp = next.getTime() > new Date(row.give_up_at).getTime() || !app;
    await run(db, 'UPDATE openapi_callbacks SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?', [
      giveUp ? 'failed' : 'pending',
      attempt,
      next,
      (outcome.error ?? '').slice(0, 500),
      id,
    ]);
  }
  return tried;
}

/** A request-type callback (the SMS gateway): one attempt now, logged like the others, answer returned. */
export async function callNow(db: Database, app: App, buin: number, message: Record<string, unknown>, now: Date): Promise<CallbackOutcome> {
  const packageId = `${now.getTime()}${randomBytes(4).toString('hex')}`;
  const full = { ...message, packageId };
  const [row] = await rows<{ id: number }>(
    db,
    `INSERT INTO openapi_callbacks (app_id, url, token, package_id, message, status, attempts, next_attempt_at, give_up_at, created_at)
     VALUES (?, NULL, NULL, ?, ${jsonCast(db)}, 'sending', 0, ?, ?, ?) RETURNING id`,
    [app.appId, packageId, JSON.stringify(full), now, now, now],
  );
  const outcome: CallbackOutcome = app.callbackUrl
    ? await post(app, app.callbackUrl, app.callbackToken ?? '', buin, full, now)
    : { ok: false, status: null, error: 'the app has no callback URL', answer: null, durationMs: 0 };
  await logAttempt(db, Number(row.id), 1, app.callbackUrl ?? '', outcome, now);
  await run(db, 'UPDATE openapi_callbacks SET status = ?, attempts = 1, delivered_at = ?, last_error = ? WHERE id = ?', [
    outcome.ok ? 'delivered' : 'failed',
    outcome.ok ? now : null,
    outcome.error,
    Number(row.id),
  ]);
  return outcome;
}

export async function listCallbacks(db: Database, appId: string | undefined, limit: number) {
  const where = appId ? 'WHERE app_id = ?' : '';
  const list = await rows<Record<string, unknown>>(db, `SELECT id, app_id, package_id, status, attempts, next_attempt_at, last_error, created_at, delivered_at FROM openapi_callbacks ${where} ORDER BY id DESC LIMIT ?`, [
    ...(appId ? [appId] : []),
    limit,
  ]);
  const out = [];
  for (const c of list) {
    const attempts = await rows(db, 'SELECT attempt, url, http_status, outcome, error, duration_ms, at FROM openapi_callback_attempts WHERE callback_id = ? ORDER BY attempt', [c.id]);
    out.push({ ...c, id: Number(c.id), attempts: Number(c.attempts), log: attempts });
  }
  return out;
}
