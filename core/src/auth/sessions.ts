import type { Database } from '../db/database.ts';
import { recordLogin } from '../audit/login-log.ts';
import type { AuthTx } from './auth-write.ts';
import { bool, inList, iso, queryRows, select } from '../db/sql.ts';
import { hashToken, newToken } from './tokens.ts';

/** Why a session ended; shown in the device list and the login log. */
export type EndReason =
  | 'logout'
  | 'replaced'
  | 'forced-offline'
  | 'disabled'
  | 'resigned'
  | 'deauthorised'
  | 'password-changed'
  | 'password-reset'
  | 'wiped';

export interface Device {
  deviceType: string;
  deviceId: string;
  deviceName?: string | null;
}

export async function createSession(
  db: Database,
  w: AuthTx,
  s: Device & { userId: number; ip: string; mustChangePassword: boolean; days: number },
): Promise<{ sessionId: number; token: string; expiresAt: Date }> {
  const token = newToken();
  const expiresAt = new Date(w.now.getTime() + s.days * 86_400_000);
  const [row] = await queryRows<{ id: number }>(
    db,
    `INSERT INTO user_sessions (token_hash, user_id, device_type, device_id, device_name, ip, must_change_password, remote_wipe, created_at, last_seen_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    [hashToken(token), s.userId, s.deviceType, s.deviceId, s.deviceName ?? null, s.ip, s.mustChangePassword, false, w.now, w.now, expiresAt],
    w.t,
  );
  return { sessionId: Number(row.id), token, expiresAt };
}

export interface SessionScope {
  userId?: number;
  userIds?: number[];
  sessionId?: number;
  /** With userId: the sessions of this device type, or on this device (either matches). */
  deviceType?: string;
  deviceId?: string;
  exceptSessionId?: number;
}

/**
 * Ends the live sessions in `scope`, logs each in the login log (`kicked`, or `logout` for the person's own),
 * and queues the after-commit announcements. Returns the sessions ended.
 */
export async function revokeSessions(db: Database, w: AuthTx, scope: SessionScope, reason: EndReason, ip: string | null = null): Promise<number[]> {
  const where: string[] = ['revoked_at IS NULL', 'expires_at > ?'];
  const args: unknown[] = [w.now];
  if (scope.userId !== undefined) {
    where.push('user_id = ?');
    args.push(scope.userId);
  }
  if (scope.userIds !== undefined) {
    if (!scope.userIds.length) return [];
    where.push(`user_id IN ${inList(scope.userIds.length)}`);
    args.push(...scope.userIds);
  }
  if (scope.sessionId !== undefined) {
    where.push('id = ?');
    args.push(scope.sessionId);
  }
  const device: string[] = [];
  if (scope.deviceType !== undefined) {
    device.push('device_type = ?');
    args.push(scope.deviceType);
  }
  if (scope.deviceId !== undefined) {
    device.push('device_id = ?');
    args.push(scope.deviceId);
  }
  if (device.length) where.push(`(${device.join(' OR ')})`);
  if (scope.exceptSessionId !== undefined) {
    where.push('id <> ?');
    args.push(scope.exceptSessionId);
  }
  // RETURNING names exactly the rows this transaction ended, so a concurrent revocation is never logged twice.
  const ended = await queryRows<{ id: number; user_id: number; device_type: string; device_id: string; device_name: string | null; ip: string }>(
    db,
    `UPDATE user_sessions SET revoked_at = ?, revoked_reason = ? WHERE ${where.join(' AND ')} RETURNING id, user_id, device_type, device_id, device_name, ip`,
    [w.now, reason, ...args],
    w.t,
  );
  if (!ended.length) return [];
  const userIds = [...new Set(ended.map((r) => Number(r.user_id)))];
  const accounts = new Map(
    (await select<{ id: number; account: string }>(db, `SELECT id, account FROM users WHERE id IN ${inList(userIds.length)}`, userIds, w.t)).map((u) => [Number(u.id), u.account]),
  );
  const own = reason === 'logout' || reason === 'wiped';
  for (const r of [...ended].sort((a, b) => Number(a.id) - Number(b.id))) {
    const userId = Number(r.user_id);
    await recordLogin(db, w.t, {
      userId,
      account: accounts.get(userId) ?? '',
      event: own ? 'logout' : 'kicked',
      reason: reason === 'logout' ? null : reason,
      ip: own ? ip ?? r.ip : r.ip,
      deviceType: r.device_type,
      deviceId: r.device_id,
      deviceName: r.device_name,
      sessionId: Number(r.id),
      at: w.now,
    });
    w.revoked.push({ sessionId: Number(r.id), userId, reason });
    w.events.push({ topic: 'auth.session.revoked', subject: `user:${userId}`, payload: { sessionId: Number(r.id), userId, reason } });
  }
  return ended.map((r) => Number(r.id));
}

export interface SessionView {
  id: number;
  deviceType: string;
  deviceId: string;
  deviceName: string | null;
  ip: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  active: boolean;
  endedAt: string | null;
  endReason: string | null;
  /** The device has been ordered to erase its local data. */
  remoteWipe: boolean;
}

export async function listSessions(db: Database, userId: number, now: Date, includeEnded: boolean): Promise<SessionView[]> {
  const rows = await select<Record<string, unknown>>(
    db,
    `SELECT id, device_type, device_id, device_name, ip, created_at, last_seen_at, expires_at, revoked_at, revoked_reason, remote_wipe
     FROM user_sessions WHERE user_id = ?${includeEnded ? '' : ' AND revoked_at IS NULL AND expires_at > ?'} ORDER BY id DESC LIMIT 200`,
    includeEnded ? [userId] : [userId, now],
  );
  return rows.map((r) => {
    const expired = new Date(iso(r.expires_at)!).getTime() <= now.getTime();
    return {
      id: Number(r.id),
      deviceType: String(r.device_type),
      deviceId: String(r.device_id),
      deviceName: (r.device_name as string | null) ?? null,
      ip: String(r.ip),
      createdAt: iso(r.created_at)!,
      lastSeenAt: iso(r.last_seen_at)!,
      expiresAt: iso(r.expires_at)!,
      active: r.revoked_at === null && !expired,
      endedAt: iso(r.revoked_at) ?? (expired ? iso(r.expires_at) : null),
      endReason: (r.revoked_reason as string | null) ?? (expired ? 'expired' : null),
      remoteWipe: bool(r.remote_wipe),
    };
  });
}
