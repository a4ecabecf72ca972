import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { me, requireUser, type Identity } from './identity.ts';
import { error } from './schemas.ts';

export interface ClientRouteSpec {
  method: HTTPMethods;
  url: string;
  tag: string;
  summary: string;
  description?: string;
  params?: object;
  querystring?: object;
  body?: object;
  /** The success answer (200 unless `status`). */
  response?: object;
  status?: number;
  consumes?: string[];
  produces?: string[];
  /** Extra documented answers besides the usual refusals. */
  responses?: Record<number, object>;
}

type Handler = (req: FastifyRequest, reply: FastifyReply, me: Identity) => unknown;

const REFUSALS: Record<number, object> = {
  401: { ...error, description: 'no, malformed, forged or ended token' },
  403: { ...error, description: 'not allowed (not a member, password change required, …)' },
  422: { ...error, description: 'a field is invalid; `field` names it' },
};

/**
 * Declares one client-API route: token-authenticated (the acting user is always the token's, never a
 * request field), validated by its schemas, and documented in the OpenAPI document under `tag`.
 */
export function clientRoute(app: FastifyInstance, spec: ClientRouteSpec, handler: Handler): void {
  const status = spec.status ?? 200;
  app.route({
    method: spec.method,
    url: spec.url,
    schema: {
      tags: [spec.tag],
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      security: [{ bearer: [] }],
      ...(spec.params ? { params: spec.params } : {}),
      ...(spec.querystring ? { querystring: spec.querystring } : {}),
      ...(spec.body ? { body: spec.body } : {}),
      ...(spec.consumes ? { consumes: spec.consumes } : {}),
      ...(spec.produces ? { produces: spec.produces } : {}),
      response: {
        [status]: spec.response ? { description: 'OK', ...spec.response } : { description: 'OK', type: 'object', additionalProperties: true },
        ...REFUSALS,
        ...spec.responses,
      } as Record<number, object>,
    },
    // Before the body is even parsed: nobody unauthenticated learns anything, not even what is invalid.
    onRequest: requireUser(app.broker),
    handler: async (req, reply) => {
      const out = await handler(req, reply, me(req));
      if (status !== 200) reply.code(status);
      return out;
    },
  });
}

/** Calls a platform action; every client route goes through here to the services, never to storage. */
export function call<T = unknown>(app: FastifyInstance, action: string, params: object): Promise<T> {
  return app.broker.call<T, object>(action, params);
}
