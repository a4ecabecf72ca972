import type { FastifyInstance } from 'fastify';
import pkg from '../../../package.json' with { type: 'json' };
import { PLUGIN_API_VERSION } from '../../config.ts';

/** `GET /v1`: what this gateway speaks, so clients and integrations can check before they call. */
export default async function versionRoutes(app: FastifyInstance): Promise<void> {
  app.get('/v1', async () => ({ name: 'qiao', api: 'v1', version: pkg.version, pluginApi: PLUGIN_API_VERSION, node: app.broker.nodeID }));
}
