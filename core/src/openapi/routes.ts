import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { qiaoError } from '../errors.ts';
import { me, requireUser } from '../gateway/client/identity.ts';
import { toHttpError } from '../gateway/http-error.ts';
import type { CgiInput, CgiOutput } from './cgi.ts';
import { ERRCODE } from './errcodes.ts';
import { parseMultipart } from './multipart.ts';

/**
 * The Youdu-compatible open API on the gateway: every `/cgi/...` request is read here (JSON with or without
 * a Content-Type, form-encoded, multipart) and handed to `apps.cgi`, which owns everything else. Answers are
 * always HTTP 200 with `{ errcode, errmsg }`: the vendor SDKs read no other status.
 */

/** Uploads (base64 of an encrypted file) and org replace-all bodies are large; everything else is small. */
const LARGE_BODY = 32 * 1024 * 1024;
const SMALL_BODY = 2 * 1024 * 1024;
const LARGE_PATHS = new Set(['/cgi/media/upload', '/cgi/org/replaceall', '/cgi/org/xmlsync', '/cgi/avatar/set']);

function bodyOf(req: FastifyRequest): CgiInput['body'] {
  const raw = req.body as Buffer | undefined;
  if (!raw || raw.length === 0) return { kind: 'none' };
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('multipart/form-data')) {
    const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(type.includes('boundary') ? String(req.headers['content-type']) : '');
    if (!m) return { kind: 'invalid', reason: 'multipart body without a boundary' };
    const parts = parseMultipart(raw, m[1] ?? m[2].trim());
    if (!parts) return { kind: 'invalid', reason: 'the multipart body is malformed' };
    const fields: Record<string, unknown> = {};
    const files: Record<string, string> = {};
    for (const p of parts) {
      if (p.filename !== null) files[p.name] = p.data.toString('utf8');
      else fields[p.name] = p.data.toString('utf8');
    }
    // The vendor SDKs send the encrypted file as a part named "file" with a filename; some clients omit it.
    if (files.file === undefined && typeof fields.file === 'string') files.file = fields.file as string;
    return { kind: 'multipart', fields, files };
  }
  if (type.startsWith('application/x-www-form-urlencoded')) {
    return { kind: 'form', fields: Object.fromEntries(new URLSearchParams(raw.toString('utf8'))) };
  }
  // JSON, declared or not (several SDKs post JSON as text/plain or with no Content-Type at all).
  try {
    const v = JSON.parse(raw.toString('utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { kind: 'invalid', reason: 'the JSON is not an object' };
    return { kind: 'json', fields: v as Record<string, unknown> };
  } catch {
    const text = raw.toString('utf8');
    // A form body sent without its Content-Type.
    if (/^[\w.%+-]+=[^&]*(&[\w.%+-]+=[^&]*)*$/.test(text.trim())) return { kind: 'form', fields: Object.fromEntries(new URLSearchParams(text)) };
    // Kept for the routes whose body is not an envelope (org/xmlsync posts XML).
    return { kind: 'invalid', reason: 'it is not JSON', text };
  }
}

function send(reply: FastifyReply, out: CgiOutput) {
  if (out.kind === 'raw') {
    for (const [k, v] of Object.entries(out.headers)) reply.header(k, v);
    return reply.code(200).send(out.body);
  }
  return reply.code(200).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(out.body));
}

export default async function openApiRoutes(app: FastifyInstance): Promise<void> {
  // Raw bodies for every content type, in this plugin's scope only; parsed in bodyOf().
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: LARGE_BODY }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const tooLarge = err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE';
    if (!req.url.startsWith('/cgi/')) {
      const { status, body } = toHttpError('type' in err ? err : tooLarge ? qiaoError('QIAO_PAYLOAD_TOO_LARGE', err.message, { field: 'body' }) : err);
      return reply.code(status).send(body);
    }
    const errcode = tooLarge && req.url.startsWith('/cgi/media/upload') ? ERRCODE.ERRCODE_INVALID_MULTIPART : ERRCODE.ERRCODE_INVALID_REQUEST;
    const errmsg = tooLarge ? `the request body is larger than ${LARGE_BODY} bytes` : err.message;
    // The rest of an over-large body is not read: close the connection rather than drain it.
    if (tooLarge) reply.header('connection', 'close');
    return reply.code(200).send({ errcode, errmsg });
  });

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const [pathname] = req.url.split('?');
    const raw = req.body as Buffer | undefined;
    if (raw && raw.length > SMALL_BODY && !LARGE_PATHS.has(pathname)) {
      return send(reply, { kind: 'json', body: { errcode: ERRCODE.ERRCODE_INVALID_REQUEST, errmsg: `the request body is larger than ${SMALL_BODY} bytes` } });
    }
    const query: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) query[k] = Array.isArray(v) ? String(v[0]) : String(v);
    const input: CgiInput = { method: req.method, path: pathname.replace(/\/+$/, ''), query, body: bodyOf(req) };
    const out = await app.broker.call<CgiOutput, CgiInput>('apps.cgi', input, { timeout: 600_000 });
    if (out.kind === 'identify') return reply.code(200).send(out.body);
    return send(reply, out);
  };
  app.route({ method: ['GET', 'POST'], url: '/cgi/*', bodyLimit: LARGE_BODY, handler: handle });

  // ---- clients: the app panel and `$TOKEN$` -----------------------------------------------------------
  // The same token check as every client-API route: before the body, refusals naming `authorization`.
  const authenticateUser = requireUser(app.broker);
  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/v1/')) await authenticateUser(req, reply);
  });
  /** These routes share the `/cgi` raw-body parser, so they read their JSON themselves. */
  const jsonBody = (req: FastifyRequest, shape: string): Record<string, unknown> => {
    try {
      const parsed: unknown = Buffer.isBuffer(req.body) && req.body.length ? JSON.parse(req.body.toString('utf8')) : {};
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      /* answered below */
    }
    throw qiaoError('QIAO_BAD_REQUEST', `request body must be a JSON object: ${shape}`, { field: 'body' });
  };
  app.get('/v1/apps', async (req) => {
    const who = me(req);
    const deviceType = (req.query as { deviceType?: string }).deviceType === 'mobile' ? 'mobile' : 'desktop';
    return app.broker.call('apps.client.list', { userId: who.userId, deviceType });
  });
  app.post('/v1/apps/:appId/sso-token', async (req) => {
    const who = me(req);
    return app.broker.call('apps.sso.issue', { userId: who.userId, appId: (req.params as { appId: string }).appId });
  });
  app.post('/v1/apps/:appId/chat', async (req) => {
    const who = me(req);
    return app.broker.call('apps.chat.open', { userId: who.userId, appId: (req.params as { appId: string }).appId });
  });
  app.post('/v1/apps/:appId/menu', async (req) => {
    const who = me(req);
    const body = jsonBody(req, '{ "key": "..." }') as { key?: unknown };
    return app.broker.call('apps.menu.click', { userId: who.userId, appId: (req.params as { appId: string }).appId, key: body.key });
  });
  app.post('/v1/apps/:appId/session-export', async (req) => {
    const who = me(req);
    const body = jsonBody(req, '{ "conversationId": "...", "messageIds": [...], "key"?: "..." }');
    return app.broker.call('apps.session.export', { ...body, userId: who.userId, appId: (req.params as { appId: string }).appId });
  });
  app.post('/v1/sms', async (req) => {
    const who = me(req);
    const body = jsonBody(req, '{ "mobiles": [...], "content": "..." }') as { mobiles?: unknown; content?: unknown };
    return app.broker.call('apps.sms.send', { userId: who.userId, mobiles: body.mobiles, content: body.content });
  });
  app.post('/v1/sso-token', async (req) => {
    const who = me(req);
    return app.broker.call('apps.sso.issue', { userId: who.userId });
  });
}
