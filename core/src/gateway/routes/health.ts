import type { FastifyInstance } from 'fastify';
import { describeError } from '../../errors.ts';

const PROBE_TIMEOUT_MS = 5_000;

/**
 * `GET /healthz` for load balancers and operators: 200 when this node can reach storage through the
 * system service (wherever it runs in the cluster), 503 with the reason when it cannot.
 */
export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', async (_req, reply) => {
    const node = app.broker.nodeID;
    try {
      const info = await app.broker.call<{ dialect: string; nodeId: string }, object>('system.info', {}, { timeout: PROBE_TIMEOUT_MS });
      return { status: 'ok', node, storage: { ok: true, dialect: info.dialect, node: info.nodeId } };
    } catch (err) {
      const d = describeError(err);
      const reason = d.code === 'SERVICE_NOT_FOUND' || d.code === 'SERVICE_NOT_AVAILABLE' ? 'no system service is running in the cluster' : d.message;
      return reply.code(503).send({ status: 'unavailable', node, storage: { ok: false, reason } });
    }
  });
}
