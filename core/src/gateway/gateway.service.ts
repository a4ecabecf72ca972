import type { FastifyInstance } from 'fastify';
import type { ServiceSchema } from 'moleculer';
import { qiaoError } from '../errors.ts';
import type { ServiceDeps } from '../services.ts';
import { localUrl } from './local-url.ts';
import { buildGateway } from './server.ts';

/**
 * The public gateway on fastify (port 7080). It owns no storage, so it also runs alone in a process of its
 * own and reaches the rest of the platform over the broker.
 */
export default function gatewayService({ config }: ServiceDeps): ServiceSchema {
  let app: FastifyInstance | null = null;
  let port = 0;

  return {
    name: 'gateway',

    actions: {
      address: {
        handler() {
          if (!app || !port) throw qiaoError('QIAO_UNAVAILABLE', 'gateway is not listening');
          return { port, url: localUrl(config.gateway.host, port) };
        },
      },
    },

    async started() {
      const instance = buildGateway(this.broker, { sockets: config.ws });
      try {
        await instance.listen({ port: config.gateway.port, host: config.gateway.host });
      } catch (err) {
        await instance.close().catch(() => undefined);
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw qiaoError('QIAO_UNAVAILABLE', `gateway port ${config.gateway.port} on ${config.gateway.host} is already in use (set QIAO_GATEWAY_PORT)`);
        }
        throw err;
      }
      app = instance;
      port = (instance.server.address() as { port: number }).port;
      this.logger.info(`gateway listening on ${localUrl(config.gateway.host, port)}`);
    },

    async stopped() {
      const instance = app;
      app = null;
      port = 0;
      await instance?.close();
    },
  };
}
