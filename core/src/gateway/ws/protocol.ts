import type { UserPresence } from '../../presence/presence-state.ts';

/**
 * The client socket protocol (`GET /v1/ws`), JSON text frames both ways.
 *
 * Client → server:
 *   { type: 'auth', token }                 first frame, unless the token came with the upgrade request
 *   { type: 'ping', id? }                   answered with pong (browsers cannot send WebSocket pings)
 *   { type: 'presence', status, id? }       'online' | 'away' for this device; answered with ack
 *   { type: 'watch', userIds, id? }         whose presence changes to push (replaces the list; ≤ watchLimit,
 *                                           500 unless QIAO_WS_WATCH_LIMIT says otherwise)
 *
 * Server → client:
 *   { type: 'ready', userId, sessionId, deviceType, deviceId, head, heartbeatMs, limits }
 *   { type: 'sync', head }                  a wake-up: your inbox grew, call GET /v1/sync since your cursor
 *   { type: 'presence', users }             answer to watch, and each later change of a watched person
 *   { type: 'wipe' }                        the admin ordered this device to erase its local data
 *   { type: 'revoked', reason }             the session ended; the socket closes with 4401
 *   { type: 'pong', ref?, at } | { type: 'ack', ref? }
 *   { type: 'error', code, message, field?, ref? }
 *
 * Pushes are wake-ups only, never the record: whatever a push says is also in the sync inbox.
 */
export const CLOSE = {
  /** The server is stopping; reconnect (elsewhere) with backoff. */
  GOING_AWAY: 1001,
  /** Kept flooding after rate-limit errors. */
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  /** Bad token, or the session ended: log in again, do not reconnect with the same token. */
  UNAUTHENTICATED: 4401,
  PASSWORD_CHANGE_REQUIRED: 4403,
  AUTH_TIMEOUT: 4408,
} as const;

/** The default; a gateway takes its own from QIAO_WS_WATCH_LIMIT. */
export const WATCH_LIMIT = 500;

export type ClientFrame =
  | { type: 'auth'; token: string; id?: FrameId }
  | { type: 'ping'; id?: FrameId }
  | { type: 'presence'; status: 'online' | 'away'; id?: FrameId }
  | { type: 'watch'; userIds: number[]; id?: FrameId };

export type FrameId = string | number;

export interface ReadyFrame {
  type: 'ready';
  userId: number;
  account: string;
  sessionId: number;
  deviceType: string;
  deviceId: string;
  /** The newest sequence number of the user's inbox (null when im could not be asked just now). */
  head: number | null;
  heartbeatMs: number;
  limits: { maxFrameBytes: number; burst: number; perSecond: number; watchLimit: number };
  ref?: FrameId;
}

export type ServerFrame =
  | ReadyFrame
  | { type: 'sync'; head: number | null }
  | { type: 'presence'; users: UserPresence[]; ref?: FrameId }
  | { type: 'wipe' }
  | { type: 'revoked'; reason: string }
  | { type: 'pong'; at: string; ref?: FrameId }
  | { type: 'ack'; ref?: FrameId }
  | { type: 'error'; code: string; message: string; field?: string; ref?: FrameId };

export interface FrameError {
  code: 'QIAO_BAD_REQUEST' | 'QIAO_VALIDATION';
  message: string;
  field: string;
  ref?: FrameId;
}

const FIELDS: Record<ClientFrame['type'], readonly string[]> = {
  auth: ['type', 'id', 'token'],
  ping: ['type', 'id'],
  presence: ['type', 'id', 'status'],
  watch: ['type', 'id', 'userIds'],
};

const invalid = (field: string, message: string, ref?: FrameId): { error: FrameError } => ({ error: { code: 'QIAO_VALIDATION', message: `${field}: ${message}`, field, ...(ref === undefined ? {} : { ref }) } });

/** The `id` of a frame, if it is JSON with a valid one; nothing else is checked. */
export function frameRef(data: Buffer | ArrayBuffer | Buffer[]): FrameId | undefined {
  try {
    const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('utf8');
    const id = (JSON.parse(text) as { id?: unknown } | null)?.id;
    return (typeof id === 'string' && id.length <= 64) || Number.isSafeInteger(id) ? (id as FrameId) : undefined;
  } catch {
    return undefined;
  }
}

/** Parses and checks one text frame; every refusal names the field at fault. */
export function parseFrame(text: string, watchLimit = WATCH_LIMIT): { frame: ClientFrame } | { error: FrameError } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: { code: 'QIAO_BAD_REQUEST', message: `frame is not JSON: ${(err as Error).message}`, field: 'frame' } };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: { code: 'QIAO_BAD_REQUEST', message: 'frame must be a JSON object with a "type"', field: 'frame' } };
  }
  const v = value as Record<string, unknown>;
  let ref: FrameId | undefined;
  if (v.id !== undefined) {
    if (!((typeof v.id === 'string' && v.id.length <= 64) || Number.isSafeInteger(v.id))) return invalid('id', 'must be a string of at most 64 characters or an integer');
    ref = v.id as FrameId;
  }
  if (typeof v.type !== 'string' || !(v.type in FIELDS)) {
    return invalid('type', `must be one of ${Object.keys(FIELDS).join(', ')}${typeof v.type === 'string' ? `, not "${v.type.slice(0, 40)}"` : ''}`, ref);
  }
  const type = v.type as ClientFrame['type'];
  const extra = Object.keys(v).find((k) => !FIELDS[type].includes(k));
  if (extra !== undefined) return invalid(extra.slice(0, 64), `is not a field of a "${type}" frame`, ref);
  const id = ref === undefined ? {} : { id: ref };
  switch (type) {
    case 'auth':
      if (typeof v.token !== 'string' || v.token.length === 0 || v.token.length > 512) return invalid('token', 'must be the session token from POST /v1/auth/login', ref);
      return { frame: { type, token: v.token, ...id } };
    case 'ping':
      return { frame: { type, ...id } };
    case 'presence':
      if (v.status !== 'online' && v.status !== 'away') return invalid('status', 'must be "online" or "away"', ref);
      return { frame: { type, status: v.status, ...id } };
    case 'watch': {
      if (!Array.isArray(v.userIds)) return invalid('userIds', 'must be an array of user ids', ref);
      if (v.userIds.length > watchLimit) return invalid('userIds', `holds at most ${watchLimit} user ids, got ${v.userIds.length}`, ref);
      const bad = v.userIds.findIndex((u) => !Number.isSafeInteger(u) || (u as number) < 1);
      if (bad >= 0) return invalid(`userIds[${bad}]`, 'must be a positive integer user id', ref);
      return { frame: { type, userIds: [...new Set(v.userIds as number[])], ...id } };
    }
  }
}
