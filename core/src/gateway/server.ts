import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type moleculer from 'moleculer';
import { qiaoError } from '../errors.ts';
import openApiRoutes from '../openapi/routes.ts';
import { toHttpError } from './http-error.ts';
import authRoutes from './routes/auth.ts';
import clientApi, { type ClientApiOptions } from './client/index.ts';
import healthRoutes from './routes/health.ts';
import versionRoutes from './routes/version.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The process's broker: every route reaches the platform through actions, never through storage. */
    broker: moleculer.ServiceBroker;
  }
}

const BODY_LIMIT = 1024 * 1024;

/** Fastify's own request errors (bad JSON, body too large, …) carry an HTTP status but no Qiao code. */
function asQiaoError(err: FastifyError): unknown {
  if ('type' in err) return err;
  const status = err.statusCode ?? 500;
  if (status === 413) return qiaoError('QIAO_PAYLOAD_TOO_LARGE', `request body is larger than ${BODY_LIMIT} bytes`, { field: 'body' });
  if (status === 404) return qiaoError('QIAO_NOT_FOUND', err.message);
  if (status >= 400 && status < 500) return qiaoError('QIAO_BAD_REQUEST', err.message, { field: err.code?.startsWith('FST_ERR_CTP') ? 'body' : undefined });
  return err;
}

/**
 * The gateway's fastify instance. Each API area is a fastify plugin in `routes/`, registered here in one
 * line; the client API and open API add theirs the same way.
 */
export function buildGateway(broker: moleculer.ServiceBroker, client: ClientApiOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, forceCloseConnections: true, return503OnClosing: true });
  app.decorate('broker', broker);
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const { status, body } = toHttpError(asQiaoError(err));
    if (status >= 500) broker.logger.error('gateway request failed', err);
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: { code: 'QIAO_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } }),
  );

  app.register(healthRoutes);
  app.register(versionRoutes);
  app.register(authRoutes);
  app.register(openApiRoutes);
  app.register(clientApi, client);
  return app;
}
