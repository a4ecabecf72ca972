import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServiceSchema } from 'moleculer';
import { qiaoError } from '../errors.ts';
import { localUrl } from '../gateway/local-url.ts';
import { adminAction, type ServiceDeps } from '../services.ts';
import { collectAdminActions } from './admin-actions.ts';
import { removeCliToken, writeCliToken } from './cli-token.ts';
import { createAdminHttp, type AdminHttp } from './http-app.ts';

/**
 * The admin HTTP API on koa (port 7003): login, the local CLI token, and one route per broker action marked
 * `admin` with a `rest` path, re-mounted whenever services come and go anywhere in the cluster.
 */
export default function adminApiService({ config }: ServiceDeps): ServiceSchema {
  let http: AdminHttp | null = null;
  let server: Server | null = null;
  let cliToken: string | null = null;

  return {
    name: 'admin-api',

    actions: {
      address: {
        handler() {
          const port = (server?.address() as AddressInfo | null)?.port;
          if (!port) throw qiaoError('QIAO_UNAVAILABLE', 'admin API is not listening');
          return { port, url: localUrl(config.admin.host, port) };
        },
      },
      /** The auto-generated routes, so an admin (and the console) can see what the API offers right now. */
      routes: adminAction({
        admin: true,
        rest: 'GET /routes',
        handler() {
          return http?.routes() ?? [];
        },
      }),
    },

    events: {
      '$services.changed'() {
        this.mountRoutes();
      },
    },

    methods: {
      mountRoutes() {
        if (!http) return;
        const { actions, problems } = collectAdminActions(this.broker);
        problems.push(...http.mount(actions));
        for (const p of problems) this.logger.warn(`admin API: ${p}`);
      },
    },

    async started() {
      http = createAdminHttp(this.broker, () => cliToken);
      this.mountRoutes();
      const s = createServer(http.app.callback());
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err: NodeJS.ErrnoException) => {
          reject(
            err.code === 'EADDRINUSE'
              ? qiaoError('QIAO_UNAVAILABLE', `admin API port ${config.admin.port} on ${config.admin.host} is already in use (set QIAO_ADMIN_PORT)`)
              : err,
          );
        });
        s.listen(config.admin.port, config.admin.host, () => resolve());
      });
      s.on('error', (err) => this.logger.error('admin API server error', err));
      server = s;
      // Only once the port is ours: a second server that fails to bind must not replace the running one's token.
      cliToken = writeCliToken(config.dataDir);
      // Slow or idle clients must not pin sockets open across a shutdown.
      server.keepAliveTimeout = 5_000;
      server.headersTimeout = 10_000;
      server.requestTimeout = 60_000;
      this.logger.info(`admin API listening on ${localUrl(config.admin.host, (server.address() as AddressInfo).port)}`);
    },

    async stopped() {
      const s = server;
      server = null;
      if (s) {
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        });
      }
      if (cliToken) removeCliToken(config.dataDir, cliToken);
      cliToken = null;
      http = null;
    },
  };
}
