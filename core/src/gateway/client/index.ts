import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import pkg from '../../../package.json' with { type: 'json' };
import clientSockets, { type SocketOptions } from '../ws/index.ts';
import conversationRoutes from './conversations.ts';
import { clientErrorHandler } from './errors.ts';
import fileRoutes from './files.ts';
import messageRoutes from './messages.ts';
import { APP_PATHS, AUTH_PATHS, SOCKET_DOC } from './openapi-extras.ts';
import peopleRoutes from './people.ts';
import syncRoutes from './sync.ts';

export interface ClientApiOptions {
  sockets?: Partial<SocketOptions>;
}

function ajv(coerce: boolean): Ajv {
  // Bodies are taken as sent (a string is not a number); query strings and path params are text by nature.
  const a = new Ajv({ allErrors: false, coerceTypes: coerce ? 'array' : false, useDefaults: true, removeAdditional: false, strict: false });
  (addFormats as unknown as (a: Ajv) => void)(a);
  return a;
}

/**
 * The client API, `/v1/...`: every route token-authenticated and schema-validated, the WebSocket at
 * `/v1/ws`, and the OpenAPI document of all of it at `/v1/openapi.json`. Registered on the gateway as one
 * fastify plugin; its validation, serialisation and error handling stay inside it.
 */
export default async function clientApi(app: FastifyInstance, opts: ClientApiOptions = {}): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Qiao client API',
        version: pkg.version,
        description:
          'What desktop, mobile and web clients call. Log in at POST /v1/auth/login and send `Authorization: Bearer <token>` on every call. ' +
          'Every refusal is `{ "error": { "code", "message", "field" } }`. Messages are never lost: ' +
          "a send is answered after commit, and GET /v1/sync returns exactly what you missed; the WebSocket's pushes are wake-ups. " +
          SOCKET_DOC,
      },
      servers: [],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the token from POST /v1/auth/login' } } },
      tags: [
        { name: 'auth' },
        { name: 'me' },
        { name: 'conversations' },
        { name: 'messages' },
        { name: 'read state' },
        { name: 'sync' },
        { name: 'history' },
        { name: 'broadcasts' },
        { name: 'files' },
        { name: 'org' },
        { name: 'presence' },
      ],
    },
    transformObject: (doc) => {
      const openapi = (doc as { openapiObject: { paths?: Record<string, unknown> } }).openapiObject;
      return { ...openapi, paths: { ...AUTH_PATHS, ...APP_PATHS, ...openapi.paths } } as never;
    },
  });

  const bodies = ajv(false);
  const params = ajv(true);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodies : params).compile(schema));
  // Response schemas document the answers; they never filter them.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler(clientErrorHandler);

  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(conversationRoutes);
  await app.register(messageRoutes);
  await app.register(syncRoutes);
  await app.register(fileRoutes);
  await app.register(peopleRoutes);
  await app.register(clientSockets, opts.sockets ?? {});
}
