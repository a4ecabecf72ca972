import type { FastifyReply, FastifyRequest } from 'fastify';
import type moleculer from 'moleculer';
import { describeError, qiaoError } from '../../errors.ts';

/** Who a client token belongs to, as `auth.authenticate` answers. */
export interface Identity {
  userId: number;
  account: string;
  sessionId: number;
  deviceType: string;
  deviceId: string;
  /** The admin ordered this device to erase its local data. */
  wipe: boolean;
  mustChangePassword: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller of a client-API route; set by `requireUser`. */
    identity: Identity | null;
  }
}

/** The token of `Authorization: Bearer <token>`; null when the header is absent. A malformed header is an error. */
export function bearerToken(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (header === undefined || header === '') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw qiaoError('QIAO_UNAUTHENTICATED', 'Authorization header must be "Bearer <token>"', { field: 'authorization' });
  return m[1];
}

/**
 * Resolves a client token through the auth service (every request and every socket, so a revoked session,
 * a disabled person or an expired password is refused at once). Refusals name `authorization` and keep the
 * auth service's reason and wipe order.
 */
export async function authenticate(broker: moleculer.ServiceBroker, token: string, field = 'authorization'): Promise<Identity> {
  try {
    return await broker.call<Identity, { token: string }>('auth.authenticate', { token });
  } catch (err) {
    const d = describeError(err);
    if (d.code === 'QIAO_UNAUTHENTICATED' || d.code === 'QIAO_VALIDATION') {
      const data = (d.data ?? {}) as { reason?: string; wipe?: boolean };
      throw qiaoError('QIAO_UNAUTHENTICATED', d.code === 'QIAO_VALIDATION' ? 'token is not a Qiao session token' : d.message, {
        field,
        ...(data.reason ? { reason: data.reason } : {}),
        ...(data.wipe ? { wipe: true } : {}),
      });
    }
    throw err;
  }
}

/** A person who still has to change their password may do that and nothing else. */
export function assertMayAct(identity: Identity, field = 'authorization'): void {
  if (identity.mustChangePassword) {
    throw qiaoError('QIAO_AUTH_PASSWORD_CHANGE_REQUIRED', 'change your password first (POST /v1/auth/password); until then no other call is allowed', { field });
  }
}

/**
 * The onRequest hook of every client-API route: authenticates the bearer token and refuses people who must
 * change their password. A device told to wipe itself still gets answers (the order must reach it), with
 * `X-Qiao-Wipe: 1` on each.
 */
export function requireUser(broker: moleculer.ServiceBroker) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const token = bearerToken(req);
    if (!token) {
      throw qiaoError('QIAO_UNAUTHENTICATED', 'Authorization header is missing: log in at POST /v1/auth/login and send "Bearer <token>"', { field: 'authorization' });
    }
    let identity: Identity;
    try {
      identity = await authenticate(broker, token);
    } catch (err) {
      if ((describeError(err).data as { wipe?: boolean } | undefined)?.wipe) reply.header('x-qiao-wipe', '1');
      throw err;
    }
    if (identity.wipe) reply.header('x-qiao-wipe', '1');
    assertMayAct(identity);
    req.identity = identity;
  };
}

/** The caller of a route behind `requireUser`. */
export function me(req: FastifyRequest): Identity {
  if (!req.identity) throw qiaoError('QIAO_UNAUTHENTICATED', 'this route needs a logged-in user', { field: 'authorization' });
  return req.identity;
}
