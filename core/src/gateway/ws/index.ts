import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type moleculer from 'moleculer';
import { qiaoError } from '../../errors.ts';
import { assertMayAct, authenticate, bearerToken, type Identity } from '../client/identity.ts';
import { SOCKET_DEFAULTS, type SocketOptions } from './client-socket.ts';
import { SocketHub } from './hub.ts';
import { socketsService } from './sockets-service.ts';

export { SOCKET_DEFAULTS, type SocketOptions } from './client-socket.ts';

/** Hubs per broker: a second gateway instance on one broker (tests) reports presence under its own id. */
const hubsPerBroker = new WeakMap<moleculer.ServiceBroker, number>();

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when the upgrade request of `/v1/ws` carried a valid token. */
    socketIdentity: { identity: Identity; token: string } | null;
  }
}

/** The token of the upgrade request: `Authorization: Bearer …` or `?token=…` (browsers cannot set headers). */
function upgradeToken(req: FastifyRequest): string | null {
  const header = bearerToken(req);
  if (header) return header;
  const q = (req.query as { token?: unknown } | undefined)?.token;
  if (q === undefined) return null;
  if (typeof q !== 'string' || q === '') throw qiaoError('QIAO_UNAUTHENTICATED', 'token must be the session token from POST /v1/auth/login', { field: 'token' });
  return q;
}

/**
 * `GET /v1/ws`: the client socket (see protocol.ts). A token on the upgrade request is checked before the
 * upgrade (a bad one gets a plain HTTP 401); without one, the first frame must be `auth`.
 */
export default async function clientSockets(app: FastifyInstance, opts: Partial<SocketOptions> = {}): Promise<void> {
  const options: SocketOptions = { ...SOCKET_DEFAULTS, ...opts };
  const broker = app.broker;
  const n = (hubsPerBroker.get(broker) ?? 0) + 1;
  hubsPerBroker.set(broker, n);
  const hub = new SocketHub(broker, options, n === 1 ? broker.nodeID : `${broker.nodeID}#${n}`);
  const service = broker.createService(socketsService(n === 1 ? '$gateway-sockets' : `$gateway-sockets-${n}`, hub));

  // Before the websocket plugin's own preClose, which closes sockets without a word.
  app.addHook('preClose', (done) => {
    hub.stop();
    done();
  });
  app.addHook('onClose', async () => {
    await broker.destroyService(service).catch(() => undefined);
  });
  await app.register(websocket, {
    options: { maxPayload: options.hardMaxFrameBytes, perMessageDeflate: false },
    // ws answers protocol errors (a frame over maxPayload: 1009, bad UTF-8: 1007) with a close frame of
    // its own; terminating here would cut that answer off.
    errorHandler: (err) => broker.logger.debug(`gateway: socket error: ${err.message}`),
  });
  app.decorateRequest('socketIdentity', null);
  hub.start();

  app.route({
    method: 'GET',
    url: '/v1/ws',
    schema: { hide: true },
    preHandler: async (req) => {
      if (!req.ws) return;
      const token = upgradeToken(req);
      if (!token) return;
      const identity = await authenticate(broker, token, req.headers.authorization ? 'authorization' : 'token');
      assertMayAct(identity, 'token');
      req.socketIdentity = { identity, token };
    },
    handler: async () => {
      throw qiaoError('QIAO_BAD_REQUEST', 'GET /v1/ws is the client WebSocket: connect with a WebSocket client (Upgrade: websocket)', { field: 'upgrade' });
    },
    wsHandler: (socket, req) => hub.accept(socket, req.socket.remoteAddress ?? '', req.socketIdentity),
  });
}
