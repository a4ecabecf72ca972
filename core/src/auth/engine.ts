import type moleculer from 'moleculer';
import type { Transaction } from 'sequelize';
import { recordLogin } from '../audit/login-log.ts';
import { recordUserEvent } from '../audit/user-events.ts';
import type { Database } from '../db/database.ts';
import { describeError, qiaoError, type QiaoError } from '../errors.ts';
import { authWrite, type AuthCommit, type AuthTx } from './auth-write.ts';
import { clientIp, normaliseIp } from './ip.ts';
import { ipAllowed } from './ip-rules.ts';
import { hashPassword, passwordProblem, verifyPassword } from './password.ts';
import { createSession, revokeSessions, type Device, type EndReason } from './sessions.ts';
import { readSettings, type AuthSettings, type DeviceType } from './settings.ts';
import { consumeChallenge, createChallenge, dropChallenge, findChallenge, maskMobile, openChallenges, MAX_OPEN_CHALLENGES } from './sms-challenge.ts';
import { bool, exec, inList, queryRows, select, toDate } from '../db/sql.ts';
import { hashToken, looksLikeToken } from './tokens.ts';
import { credentialsByAccount, credentialsById, lockUser, passwordExpired, type Credentials } from './users.ts';
import { verifyExternal } from './youdu-callback.ts';

export interface LoginParams extends Device {
  account?: string;
  password?: string;
  ip: string;
  forwardedFor?: string;
  challenge?: string;
  smsCode?: string;
}

export interface LoginSuccess {
  token: string;
  userId: number;
  sessionId: number;
  expiresAt: string;
  mustChangePassword: boolean;
}

export interface SmsStep {
  needSmsCode: true;
  challenge: string;
  expiresAt: string;
  /** The number the code went to, masked. */
  mobile: string;
}

export interface Identity {
  userId: number;
  account: string;
  sessionId: number;
  deviceType: string;
  deviceId: string;
  /** The device must erase its local data (and then log out). */
  wipe: boolean;
  /** Only a password change is allowed until this is false. */
  mustChangePassword: boolean;
}

export interface EngineDeps {
  db: Database;
  broker: moleculer.ServiceBroker;
  now(): Date;
  /** Sends the after-commit announcements of a write. */
  publish(commit: AuthCommit<unknown>): void;
}

const SEAT_LOCK = 7080003;
/** last_seen_at is written at most this often per session: authenticate stays a single read. */
const TOUCH_INTERVAL_MS = 60_000;

/**
 * Login, tokens, sessions and credentials. Every rule of who may log in lives here, in the order a login
 * meets them: device type, login IP, the account, lockout, the password (local or the third party's),
 * status, authorisation and licence seats, then the optional SMS step.
 */
export class AuthEngine {
  readonly db: Database;
  readonly deps: EngineDeps;
  #dummyHash: Promise<string> | null = null;
  #touched = new Map<number, number>();

  constructor(deps: EngineDeps) {
    this.deps = deps;
    this.db = deps.db;
  }

  now(): Date {
    return this.deps.now();
  }

  /** A real hash to verify against when the account does not exist, so timing does not reveal which accounts do. */
  dummyHash(): Promise<string> {
    this.#dummyHash ??= hashPassword('not-a-real-password-0A#');
    return this.#dummyHash;
  }

  async write<T>(fn: (w: AuthTx) => Promise<T>, now = this.now()): Promise<T> {
    const commit = await authWrite(this.db, now, fn);
    this.deps.publish(commit as AuthCommit<unknown>);
    return commit.result;
  }

  // ---- login ---------------------------------------------------------------------------------------------

  resolveIp(p: { ip: string; forwardedFor?: string }, settings: AuthSettings): string {
    if (!normaliseIp(p.ip)) throw qiaoError('QIAO_VALIDATION', `ip: "${p.ip.slice(0, 80)}" is not an IP address`, { field: 'ip' });
    return clientIp(p.ip, p.forwardedFor, settings.trustedProxies);
  }

  /** The client address of a request other than login (for the log only); null when the caller gave none. */
  async requestIp(ip: string | undefined, forwardedFor: string | undefined): Promise<string | null> {
    if (ip === undefined) return null;
    return this.resolveIp({ ip, forwardedFor }, await readSettings(this.db));
  }

  async login(p: LoginParams): Promise<LoginSuccess | SmsStep> {
    const now = this.now();
    const settings = await readSettings(this.db);
    const ip = this.resolveIp(p, settings);
    const device: Device = { deviceType: p.deviceType, deviceId: p.deviceId, deviceName: p.deviceName ?? null };
    if (p.challenge !== undefined) return this.completeSmsLogin(p, device, ip, settings, now);
    if (p.account === undefined) throw qiaoError('QIAO_VALIDATION', "The 'account' field is required (or give 'challenge' and 'smsCode')", { field: 'account' });
    if (p.password === undefined) throw qiaoError('QIAO_VALIDATION', "The 'password' field is required", { field: 'password' });

    const user = await credentialsByAccount(this.db, p.account);
    const who = { userId: user?.id ?? null, account: user?.account ?? p.account };
    await this.checkDeviceAndIp(who, device, ip, settings, now);
    if (!user) {
      await verifyPassword(p.password, await this.dummyHash());
      return this.refuse(who, device, ip, now, 'unknown account', badCredentials());
    }
    if (user.lockedAt) return this.refuse(who, device, ip, now, 'account locked', lockedError(user.account));

    const verdict = await this.checkPassword(user, p.password, settings, now, device, ip);
    if (verdict !== 'ok') {
      if (verdict === 'no-password') return this.refuse(who, device, ip, now, 'no password set', badCredentials());
      return this.countFailure(user, settings, device, ip, now, verdict === 'no-account' ? 'unknown to the third party' : 'wrong password');
    }
    await this.checkStanding(user, device, ip, settings, now);
    if (settings.smsTwoFactor) return this.startSmsLogin(user, device, ip, settings, now);
    return this.finishLogin(user, device, ip, settings, now);
  }

  async checkDeviceAndIp(who: { userId: number | null; account: string }, device: Device, ip: string, settings: AuthSettings, now: Date): Promise<void> {
    if (!settings.allowedDeviceTypes.includes(device.deviceType as DeviceType)) {
      await this.refuse(who, device, ip, now, `device type ${device.deviceType} not allowed`,
        qiaoError('QIAO_AUTH_DEVICE_NOT_ALLOWED', `logging in from ${device.deviceType} devices is not allowed here (allowed: ${settings.allowedDeviceTypes.join(', ') || 'none'})`, { field: 'deviceType' }));
    }
    // Checked before the password, so nobody outside the internal ranges can even guess passwords; an
    // unknown account is refused the same way as a known one, so this reveals nothing about accounts.
    if (settings.ipRestriction && !(await ipAllowed(this.db, who.userId, ip))) {
      await this.refuse(who, device, ip, now, 'login IP restricted', qiaoError('QIAO_AUTH_IP_RESTRICTED', `logins from ${ip} are not allowed: only from the company's internal network`, { field: 'ip' }));
    }
  }

  async checkPassword(user: Credentials, password: string, settings: AuthSettings, now: Date, device: Device, ip: string): Promise<'ok' | 'wrong' | 'no-account' | 'no-password'> {
    if (user.authType === 'external') {
      const ext = settings.externalAuth;
      if (!ext.url) {
        return this.refuse(user, device, ip, now, 'third-party authentication not configured',
          qiaoError('QIAO_AUTH_EXTERNAL_UNAVAILABLE', `account "${user.account}" is verified by a third-party system, and no third-party authentication URL is configured`));
      }
      try {
        const verdict = await verifyExternal({ ...ext, url: ext.url, buin: await this.buin() }, user.account, password, now);
        return verdict === 'ok' ? 'ok' : verdict === 'no-account' ? 'no-account' : 'wrong';
      } catch (err) {
        return this.refuse(user, device, ip, now, 'third-party authentication unavailable', err as QiaoError);
      }
    }
    if (!user.passwordHash) {
      // Spend the same time as a real check.
      await verifyPassword(password, await this.dummyHash());
      return 'no-password';
    }
    return (await verifyPassword(password, user.passwordHash)) ? 'ok' : 'wrong';
  }

  async buin(): Promise<number> {
    const [row] = await select<{ value: unknown }>(this.db, "SELECT value FROM system_settings WHERE key = 'company'");
    const v = row ? (typeof row.value === 'string' ? JSON.parse(row.value) : row.value) : null;
    return Number((v as { buin?: number } | null)?.buin ?? 0);
  }

  /** Status, then authorisation: what a correct password still does not get past. */
  async checkStanding(user: Credentials, device: Device, ip: string, settings: AuthSettings, now: Date): Promise<void> {
    if (user.status === 'disabled') await this.refuse(user, device, ip, now, 'account disabled', qiaoError('QIAO_AUTH_DISABLED', `account "${user.account}" is disabled`, { field: 'account' }));
    if (user.status === 'resigned') await this.refuse(user, device, ip, now, 'account resigned', qiaoError('QIAO_AUTH_RESIGNED', `account "${user.account}" has left the company`, { field: 'account' }));
    if (user.authorised) return;
    if (!settings.autoAuthorise) {
      await this.refuse(user, device, ip, now, 'not authorised', qiaoError('QIAO_AUTH_NOT_AUTHORISED', `account "${user.account}" is not authorised to log in; an admin must authorise it`, { field: 'account' }));
    }
    const seats = await this.seatLimit();
    const used = await this.seatsUsed();
    if (used >= seats) await this.refuse(user, device, ip, now, 'licence seats exhausted', seatsExhausted(seats, used, 1));
  }

  async seatLimit(): Promise<number> {
    const s = await this.deps.broker.call<{ seats: number }, object>('licence.seats', {});
    return s.seats;
  }

  async seatsUsed(t?: Transaction): Promise<number> {
    const [{ n }] = await select<{ n: number | string }>(this.db, 'SELECT COUNT(*) AS n FROM users WHERE authorised = ?', [true], t);
    return Number(n);
  }

  /**
   * Authorises `users` all together or not at all. On PostgreSQL an advisory lock orders concurrent
   * authorisations, so two of them cannot both take the last seat.
   */
  async authoriseInTx(w: AuthTx, users: Array<{ id: number; account: string }>, seats: number, actor: string): Promise<void> {
    if (!users.length) return;
    if (this.db.dialect === 'postgres') await this.db.sequelize.query(`SELECT pg_advisory_xact_lock(${SEAT_LOCK})`, { transaction: w.t });
    const used = await this.seatsUsed(w.t);
    if (used + users.length > seats) throw seatsExhausted(seats, used, users.length);
    await exec(this.db, `UPDATE users SET authorised = ?, updated_at = ? WHERE id IN ${inList(users.length)}`, [true, w.now, ...users.map((u) => u.id)], w.t);
    for (const u of users) {
      await recordUserEvent(this.db, w.t, { userId: u.id, account: u.account, event: 'authorised', actor, at: w.now });
      w.events.push({ topic: 'auth.user.changed', subject: `user:${u.id}`, payload: { userId: u.id, change: 'authorised' } });
    }
  }

  async countFailure(user: Credentials, settings: AuthSettings, device: Device, ip: string, now: Date, reason: string): Promise<never> {
    const threshold = settings.lockoutThreshold;
    const locked = await this.write(async (w) => {
      const [row] = await queryRows<{ failed_attempts: number; locked_at: unknown }>(
        this.db,
        `UPDATE users SET failed_attempts = failed_attempts + 1,
           locked_at = CASE WHEN locked_at IS NULL AND ? > 0 AND failed_attempts + 1 >= ? THEN ? ELSE locked_at END
         WHERE id = ? RETURNING failed_attempts, locked_at`,
        [threshold, threshold, now, user.id],
        w.t,
      );
      await recordLogin(this.db, w.t, { userId: user.id, account: user.account, event: 'failed', reason, ip, ...device, at: now });
      const nowLocked = toDate(row.locked_at) !== null;
      if (nowLocked) {
        await recordUserEvent(this.db, w.t, { userId: user.id, account: user.account, event: 'locked', actor: 'system:lockout', detail: { failedAttempts: Number(row.failed_attempts) }, at: now });
        w.events.push({ topic: 'auth.user.changed', subject: `user:${user.id}`, payload: { userId: user.id, change: 'locked' } });
      }
      return nowLocked;
    }, now);
    throw locked ? lockedError(user.account) : badCredentials();
  }

  /** Logs a refused login attempt, then throws `err`. */
  async refuse(who: { id?: number; userId?: number | null; account: string }, device: Device, ip: string, now: Date, reason: string, err: QiaoError): Promise<never> {
    const userId = who.userId !== undefined ? who.userId : who.id ?? null;
    await this.db.transaction((t) => recordLogin(this.db, t, { userId, account: who.account, event: 'failed', reason, ip, ...device, at: now }));
    throw err;
  }

  async finishLogin(user: Credentials, device: Device, ip: string, settings: AuthSettings, now: Date): Promise<LoginSuccess> {
    const seats = user.authorised ? 0 : await this.seatLimit();
    try {
      return await this.write(async (w) => {
        await lockUser(this.db, user.id, w.t);
        // Re-read under the lock: an admin may have disabled or locked the person since the password check.
        const fresh = await credentialsById(this.db, user.id, w.t);
        if (fresh.lockedAt) throw lockedError(fresh.account);
        if (fresh.status === 'disabled') throw qiaoError('QIAO_AUTH_DISABLED', `account "${fresh.account}" is disabled`, { field: 'account' });
        if (fresh.status === 'resigned') throw qiaoError('QIAO_AUTH_RESIGNED', `account "${fresh.account}" has left the company`, { field: 'account' });
        if (!fresh.authorised) {
          // Deauthorised by an admin since the checks above: that is a refusal, not a new authorisation.
          if (!settings.autoAuthorise || user.authorised) throw qiaoError('QIAO_AUTH_NOT_AUTHORISED', `account "${fresh.account}" is not authorised to log in; an admin must authorise it`, { field: 'account' });
          await this.authoriseInTx(w, [fresh], seats, 'system:auto-authorise');
        }
        // The same device logging in again replaces its old session; so does another device of the same
        // type when "one device per type" is on.
        await revokeSessions(this.db, w, { userId: fresh.id, deviceId: device.deviceId, deviceType: settings.onePerDeviceType ? device.deviceType : undefined }, 'replaced');
        const mustChangePassword = fresh.authType === 'password' && (fresh.mustChangePassword || passwordExpired(fresh, settings.passwordExpiryDays, now));
        const s = await createSession(this.db, w, { userId: fresh.id, ...device, ip, mustChangePassword, days: settings.sessionDays });
        await exec(this.db, 'UPDATE users SET failed_attempts = 0, last_login_at = ? WHERE id = ?', [now, fresh.id], w.t);
        await recordLogin(this.db, w.t, { userId: fresh.id, account: fresh.account, event: 'login', ip, ...device, sessionId: s.sessionId, at: now });
        w.events.push({
          topic: 'auth.user.login',
          subject: `user:${fresh.id}`,
          payload: { userId: fresh.id, sessionId: s.sessionId, deviceType: device.deviceType, ip },
        });
        return { token: s.token, userId: fresh.id, sessionId: s.sessionId, expiresAt: s.expiresAt.toISOString(), mustChangePassword };
      }, now);
    } catch (err) {
      const code = describeError(err).code;
      if (code.startsWith('QIAO_AUTH_') || code === 'QIAO_LICENCE_SEATS_EXHAUSTED') return this.refuse(user, device, ip, now, describeError(err).message.slice(0, 200), err as QiaoError);
      throw err;
    }
  }

  async startSmsLogin(user: Credentials, device: Device, ip: string, settings: AuthSettings, now: Date): Promise<SmsStep> {
    if (!user.mobile) {
      return this.refuse(user, device, ip, now, 'no mobile number for SMS login',
        qiaoError('QIAO_AUTH_SMS_UNAVAILABLE', `two-step login by SMS is on and account "${user.account}" has no mobile number; ask an admin to add one`, { field: 'account' }));
    }
    if ((await openChallenges(this.db, user.id, now)) >= MAX_OPEN_CHALLENGES) {
      return this.refuse(user, device, ip, now, 'too many SMS codes requested',
        qiaoError('QIAO_RATE_LIMITED', `account "${user.account}" already has ${MAX_OPEN_CHALLENGES} SMS codes waiting; use one of them or wait until they expire`, { field: 'account' }));
    }
    const c = await this.db.transaction((t) => createChallenge(this.db, t, { userId: user.id, ...device, ip, now, ttlSeconds: settings.smsCodeTtlSeconds }));
    const minutes = Math.max(1, Math.round(settings.smsCodeTtlSeconds / 60));
    try {
      await this.deps.broker.call('sms.send', { mobile: user.mobile, text: `您的登录验证码是 ${c.code}，${minutes} 分钟内有效，请勿告诉他人。Your Qiao login code is ${c.code}.` }, { timeout: 15_000 });
    } catch (err) {
      await this.db.transaction((t) => dropChallenge(this.db, t, c.challenge));
      return this.refuse(user, device, ip, now, 'SMS could not be sent',
        qiaoError('QIAO_AUTH_SMS_UNAVAILABLE', `the login code could not be sent by SMS: ${describeError(err).message}`));
    }
    return { needSmsCode: true, challenge: c.challenge, expiresAt: c.expiresAt.toISOString(), mobile: maskMobile(user.mobile) };
  }

  async completeSmsLogin(p: LoginParams, device: Device, ip: string, settings: AuthSettings, now: Date): Promise<LoginSuccess> {
    if (p.smsCode === undefined) throw qiaoError('QIAO_VALIDATION', "The 'smsCode' field is required with 'challenge'", { field: 'smsCode' });
    const spent = () => qiaoError('QIAO_AUTH_SMS_CODE_INVALID', 'this login code has expired or was already used: log in again for a new one', { field: 'challenge' });
    const found = looksLikeToken(p.challenge) ? await findChallenge(this.db, p.challenge, now) : null;
    if (!found) throw spent();
    const user = await credentialsById(this.db, found.userId);
    if (!found.usable) return this.refuse(user, device, ip, now, 'SMS challenge expired or used', spent());
    if ((p.account !== undefined && p.account !== user.account) || found.deviceType !== device.deviceType || found.deviceId !== device.deviceId) {
      return this.refuse(user, device, ip, now, 'SMS challenge from another device',
        qiaoError('QIAO_AUTH_SMS_CODE_INVALID', 'this login code was requested for another account or device: log in again from this device', { field: 'challenge' }));
    }
    const outcome = await this.db.transaction((t) => consumeChallenge(this.db, t, p.challenge!, p.smsCode!, now));
    if (outcome === 'spent') return this.refuse(user, device, ip, now, 'SMS challenge expired or used', spent());
    if (outcome === 'wrong') return this.refuse(user, device, ip, now, 'wrong SMS code', qiaoError('QIAO_AUTH_SMS_CODE_INVALID', 'the SMS code is wrong', { field: 'smsCode' }));
    // The person and the rules may have changed while the SMS travelled.
    await this.checkDeviceAndIp({ userId: user.id, account: user.account }, device, ip, settings, now);
    if (user.lockedAt) return this.refuse(user, device, ip, now, 'account locked', lockedError(user.account));
    await this.checkStanding(user, device, ip, settings, now);
    return this.finishLogin(user, device, ip, settings, now);
  }

  // ---- tokens and sessions -------------------------------------------------------------------------------

  async authenticate(token: string): Promise<Identity> {
    if (!looksLikeToken(token)) throw qiaoError('QIAO_UNAUTHENTICATED', 'token is not a Qiao session token', { field: 'token' });
    const [row] = await select<Record<string, unknown>>(
      this.db,
      `SELECT s.id, s.user_id, s.device_type, s.device_id, s.expires_at, s.revoked_at, s.revoked_reason, s.remote_wipe, s.must_change_password,
              u.account, u.status, u.locked_at, u.authorised
       FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`,
      [hashToken(token)],
    );
    if (!row) throw qiaoError('QIAO_UNAUTHENTICATED', 'token is unknown: log in again', { field: 'token' });
    const wipe = bool(row.remote_wipe);
    const refuse = (reason: string, message: string) => qiaoError('QIAO_UNAUTHENTICATED', message, { field: 'token', reason, wipe });
    const now = this.now();
    if (row.revoked_at !== null) throw refuse(String(row.revoked_reason ?? 'revoked'), `this session has ended (${String(row.revoked_reason ?? 'revoked')}): log in again`);
    if (toDate(row.expires_at)!.getTime() <= now.getTime()) throw refuse('expired', 'this session has expired: log in again');
    if (row.status !== 'active') throw refuse(String(row.status), `account "${String(row.account)}" is ${String(row.status)}`);
    if (row.locked_at !== null) throw refuse('locked', `account "${String(row.account)}" is locked`);
    if (!bool(row.authorised)) throw refuse('deauthorised', `account "${String(row.account)}" is no longer authorised to log in`);
    const sessionId = Number(row.id);
    this.touch(sessionId, now);
    return {
      userId: Number(row.user_id),
      account: String(row.account),
      sessionId,
      deviceType: String(row.device_type),
      deviceId: String(row.device_id),
      wipe,
      mustChangePassword: bool(row.must_change_password),
    };
  }

  /** Records that a session is in use, at most once a minute per session and never on the answer's path. */
  touch(sessionId: number, now: Date): void {
    const last = this.#touched.get(sessionId) ?? 0;
    if (now.getTime() - last < TOUCH_INTERVAL_MS) return;
    this.#touched.set(sessionId, now.getTime());
    if (this.#touched.size > 100_000) this.#touched.clear();
    exec(this.db, 'UPDATE user_sessions SET last_seen_at = ? WHERE id = ?', [now, sessionId]).catch(() => undefined);
  }

  async logout(token: string, ip: string | null): Promise<{ ok: true; sessionId: number }> {
    if (!looksLikeToken(token)) throw qiaoError('QIAO_UNAUTHENTICATED', 'token is not a Qiao session token', { field: 'token' });
    const [row] = await select<{ id: number; remote_wipe: unknown }>(this.db, 'SELECT id, remote_wipe FROM user_sessions WHERE token_hash = ?', [hashToken(token)]);
    if (!row) throw qiaoError('QIAO_UNAUTHENTICATED', 'token is unknown', { field: 'token' });
    // A device that was told to wipe itself logs out once it has: that ends the session as "wiped".
    const reason: EndReason = bool(row.remote_wipe) ? 'wiped' : 'logout';
    await this.write((w) => revokeSessions(this.db, w, { sessionId: Number(row.id) }, reason, ip));
    return { ok: true, sessionId: Number(row.id) };
  }

  async revokeUserSessions(scope: { userIds?: number[]; sessionId?: number }, reason: EndReason, actor: string | null): Promise<number[]> {
    return this.write(async (w) => {
      const ids = await revokeSessions(this.db, w, scope, reason);
      if (actor && ids.length) {
        const byUser = new Map<number, number[]>();
        for (const r of w.revoked) byUser.set(r.userId, [...(byUser.get(r.userId) ?? []), r.sessionId]);
        for (const [userId, sessionIds] of byUser) {
          const u = await credentialsById(this.db, userId, w.t);
          await recordUserEvent(this.db, w.t, { userId, account: u.account, event: 'sessions.revoked', actor, detail: { sessionIds, reason }, at: w.now });
        }
      }
      return ids;
    });
  }

  // ---- passwords -----------------------------------------------------------------------------------------

  async changePassword(token: string, oldPassword: string, newPassword: string, ip: string | null): Promise<{ ok: true }> {
    const me = await this.authenticate(token);
    const now = this.now();
    const settings = await readSettings(this.db);
    const user = await credentialsById(this.db, me.userId);
    if (user.authType === 'external') {
      throw qiaoError('QIAO_CONFLICT', `the password of "${user.account}" is managed by the third-party authentication system; change it there`, { field: 'newPassword' });
    }
    const device = { deviceType: me.deviceType, deviceId: me.deviceId };
    if (!user.passwordHash || !(await verifyPassword(oldPassword, user.passwordHash))) {
      try {
        await this.countFailure(user, settings, device, ip ?? '', now, 'wrong old password on password change');
      } catch (err) {
        const d = describeError(err);
        if (d.code === 'QIAO_AUTH_BAD_CREDENTIALS') throw qiaoError('QIAO_AUTH_BAD_CREDENTIALS', 'the current password is wrong', { field: 'oldPassword' });
        throw err;
      }
    }
    this.checkPolicy(newPassword, settings, 'newPassword');
    if (oldPassword === newPassword) throw qiaoError('QIAO_AUTH_PASSWORD_POLICY', 'newPassword must differ from the current password', { field: 'newPassword' });
    const hash = await hashPassword(newPassword);
    await this.write(async (w) => {
      await exec(this.db, 'UPDATE users SET password_hash = ?, password_changed_at = ?, must_change_password = ?, updated_at = ? WHERE id = ?', [hash, now, false, now, user.id], w.t);
      await exec(this.db, 'UPDATE user_sessions SET must_change_password = ? WHERE id = ?', [false, me.sessionId], w.t);
      // Whoever else holds a session of this person is signed out: a changed password may mean a stolen one.
      await revokeSessions(this.db, w, { userId: user.id, exceptSessionId: me.sessionId }, 'password-changed');
      await recordUserEvent(this.db, w.t, { userId: user.id, account: user.account, event: 'password.changed', actor: 'user', at: now });
      w.events.push({ topic: 'auth.user.changed', subject: `user:${user.id}`, payload: { userId: user.id, change: 'password' } });
    }, now);
    return { ok: true };
  }

  checkPolicy(password: string, settings: AuthSettings, field: string): void {
    const problem = passwordProblem(password, settings.strongPassword);
    if (problem) throw qiaoError('QIAO_AUTH_PASSWORD_POLICY', `${field} ${problem}`, { field });
  }

  /** Sets (or resets) a person's password as an admin; the person must change it at next login unless told otherwise. */
  async setPassword(userId: number, password: string, mustChange: boolean, actor: string): Promise<void> {
    const now = this.now();
    const settings = await readSettings(this.db);
    this.checkPolicy(password, settings, 'password');
    const user = await credentialsById(this.db, userId);
    const hash = await hashPassword(password);
    await this.write(async (w) => {
      await exec(
        this.db,
        'UPDATE users SET password_hash = ?, password_changed_at = ?, must_change_password = ?, failed_attempts = 0, locked_at = NULL, updated_at = ? WHERE id = ?',
        [hash, now, mustChange, now, userId],
        w.t,
      );
      await revokeSessions(this.db, w, { userId }, 'password-reset');
      await recordUserEvent(this.db, w.t, { userId, account: user.account, event: 'password.reset', actor, detail: { mustChange }, at: now });
      if (user.lockedAt) await recordUserEvent(this.db, w.t, { userId, account: user.account, event: 'unlocked', actor, detail: { by: 'password reset' }, at: now });
      w.events.push({ topic: 'auth.user.changed', subject: `user:${userId}`, payload: { userId, change: 'password' } });
    }, now);
  }

  // ---- org status changes --------------------------------------------------------------------------------

  /** A person was disabled, resigned or restored in the directory. */
  async statusChanged(userId: number, status: string): Promise<void> {
    const now = this.now();
    await this.write(async (w) => {
      const [u] = await select<{ account: string; authorised: unknown; status: string }>(this.db, 'SELECT account, authorised, status FROM users WHERE id = ?', [userId], w.t);
      if (!u) return;
      await recordUserEvent(this.db, w.t, { userId, account: u.account, event: `status.${status}`, actor: 'org', at: now });
      if (status !== 'disabled' && status !== 'resigned') return;
      await revokeSessions(this.db, w, { userId }, status as EndReason);
      if (status === 'resigned' && bool(u.authorised)) {
        await exec(this.db, 'UPDATE users SET authorised = ?, updated_at = ? WHERE id = ?', [false, now, userId], w.t);
        await recordUserEvent(this.db, w.t, { userId, account: u.account, event: 'deauthorised', actor: 'system:resigned', at: now });
        w.events.push({ topic: 'auth.user.changed', subject: `user:${userId}`, payload: { userId, change: 'deauthorised' } });
      }
    }, now);
  }

  /**
   * Catches up with status changes whose events were missed (the service was down): sessions of disabled
   * and resigned people end, resigned people stop holding seats.
   */
  async reconcile(): Promise<void> {
    const now = this.now();
    const stale = await select<{ id: number; status: string }>(
      this.db,
      `SELECT DISTINCT u.id, u.status FROM users u JOIN user_sessions s ON s.user_id = u.id
       WHERE u.status IN ('disabled', 'resigned') AND s.revoked_at IS NULL AND s.expires_at > ?
       UNION SELECT id, status FROM users WHERE status = 'resigned' AND authorised = ?`,
      [now, true],
    );
    for (const s of stale) await this.statusChanged(Number(s.id), s.status);
  }
}

export function badCredentials(): QiaoError {
  return qiaoError('QIAO_AUTH_BAD_CREDENTIALS', 'wrong account or password', { field: 'password' });
}

function lockedError(account: string): QiaoError {
  return qiaoError('QIAO_AUTH_LOCKED', `account "${account}" is locked after too many wrong passwords; an admin must unlock it`, { field: 'account' });
}

function seatsExhausted(seats: number, used: number, needed: number): QiaoError {
  return qiaoError('QIAO_LICENCE_SEATS_EXHAUSTED', `the licence allows ${seats} authorised people and ${used} are authorised; ${needed} more do not fit: free seats or install a larger licence`, {
    field: 'userIds',
    seats,
    used,
    needed,
  });
}
