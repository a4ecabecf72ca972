import type { FastifyInstance, FastifyRequest } from 'fastify';
import type moleculer from 'moleculer';
import { describeError, qiaoError } from '../../errors.ts';
import { authenticate } from '../client/identity.ts';

const LOGIN_FIELDS = ['account', 'password', 'deviceType', 'deviceId', 'deviceName', 'challenge', 'smsCode'] as const;

function objectBody(req: FastifyRequest): Record<string, unknown> {
  const body = req.body;
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw qiaoError('QIAO_BAD_REQUEST', 'request body must be a JSON object', { field: 'body' });
  return body as Record<string, unknown>;
}

function bearer(req: FastifyRequest): string {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw qiaoError('QIAO_UNAUTHENTICATED', header ? 'Authorization header must be "Bearer <token>"' : 'Authorization header is missing: log in at POST /v1/auth/login and send "Bearer <token>"', { field: 'authorization' });
  return m[1];
}

/**
 * The onRequest hook of every route here that acts on a session: the token is checked before the body is
 * even parsed, so a caller without a valid token learns nothing, not even what is wrong with the body.
 * No `assertMayAct`: these are the calls a person who must change their password may still make.
 * `endedToo` lets a session that has ended already (the token is known) through: logging out twice is fine.
 */
function tokenFirst(broker: moleculer.ServiceBroker, endedToo = false) {
  return async (req: FastifyRequest): Promise<void> => {
    try {
      await authenticate(broker, bearer(req));
    } catch (err) {
      if (endedToo && (describeError(err).data as { reason?: string } | undefined)?.reason) return;
      throw err;
    }
  };
}

/**
 * The socket's peer, and what X-Forwarded-For claims. The auth service believes the header only when the
 * peer is one of the trusted proxies its settings name, so a client cannot choose its own address.
 */
function address(req: FastifyRequest): { ip: string; forwardedFor?: string } {
  const xff = req.headers['x-forwarded-for'];
  const forwardedFor = Array.isArray(xff) ? xff.join(',') : xff;
  return { ip: req.socket.remoteAddress ?? '', ...(forwardedFor ? { forwardedFor: forwardedFor.slice(0, 2000) } : {}) };
}

/** Client login, logout, the device list and password change; every rule behind them is the auth service's. */
export default async function authRoutes(app: FastifyInstance): Promise<void> {
  app.post('/v1/auth/login', async (req) => {
    const body = objectBody(req);
    const params: Record<string, unknown> = {};
    // Only the fields a client may give: `ip` and the like come from the connection, never from the body.
    for (const f of LOGIN_FIELDS) if (body[f] !== undefined) params[f] = body[f];
    return app.broker.call('auth.login', { ...params, ...address(req) });
  });

  app.post('/v1/auth/logout', { onRequest: tokenFirst(app.broker, true) }, async (req) => app.broker.call('auth.logout', { token: bearer(req), ...address(req) }));

  app.get('/v1/auth/sessions', { onRequest: tokenFirst(app.broker) }, async (req) => app.broker.call('auth.mySessions', { token: bearer(req) }));

  app.post('/v1/auth/password', { onRequest: tokenFirst(app.broker) }, async (req) => {
    const token = bearer(req);
    const body = objectBody(req);
    return app.broker.call('auth.changePassword', { token, oldPassword: body.oldPassword, newPassword: body.newPassword, ...address(req) });
  });
}
