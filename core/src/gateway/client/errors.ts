import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { qiaoError, type QiaoError } from '../../errors.ts';
import { toHttpError } from '../http-error.ts';

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** The acting user comes from the token; a request naming one is told so. */
const ACTOR_FIELDS = new Set(['userId', 'senderId', 'createdBy', 'viewer']);

function fieldOf(e: AjvError, context: string | undefined): string {
  const parts = e.instancePath
    .split('/')
    .filter(Boolean)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (e.keyword === 'required') parts.push(String(e.params.missingProperty));
  if (e.keyword === 'additionalProperties') parts.push(String(e.params.additionalProperty));
  const field = parts.reduce((out, p) => (/^\d+$/.test(p) ? `${out}[${p}]` : out ? `${out}.${p}` : p), '');
  return field || (context === 'querystring' ? 'query' : (context ?? 'body'));
}

/** A fastify schema refusal as a Qiao validation error naming the first field at fault. */
export function validationError(err: FastifyError): QiaoError {
  const e = (err.validation?.[0] ?? { keyword: '', instancePath: '', params: {} }) as AjvError;
  const field = fieldOf(e, err.validationContext);
  let message: string;
  if (e.keyword === 'additionalProperties') {
    message = ACTOR_FIELDS.has(field)
      ? `${field}: is not accepted; you always act as the user your token belongs to`
      : `${field}: is not a field of this request`;
  } else if (e.keyword === 'required') message = `${field}: is required`;
  else if (e.keyword === 'enum') message = `${field}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  else message = `${field}: ${e.message ?? 'is invalid'}`;
  return qiaoError('QIAO_VALIDATION', message, { field });
}

/** Fastify's own request errors carry an HTTP status but no Qiao code. */
function asQiaoError(err: FastifyError): unknown {
  if ('type' in err) return err;
  if (err.validation) return validationError(err);
  const status = err.statusCode ?? 500;
  if (status === 413) return qiaoError('QIAO_PAYLOAD_TOO_LARGE', `request body is too large: ${err.message}`, { field: 'body' });
  if (status === 415) return qiaoError('QIAO_BAD_REQUEST', `${err.message}: send application/json`, { field: 'content-type' });
  if (status === 404) return qiaoError('QIAO_NOT_FOUND', err.message);
  if (status >= 400 && status < 500) return qiaoError('QIAO_BAD_REQUEST', err.message, { field: err.code?.startsWith('FST_ERR_CTP') ? 'body' : undefined });
  return err;
}

/** The client API's error handler: `{ error: { code, message, field } }` with the status of the code. */
export function clientErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  const { status, body } = toHttpError(asQiaoError(err));
  if (status >= 500) req.server.broker.logger.error(`gateway: ${req.method} ${req.url.split('?')[0]} failed`, err);
  // A download may have set its headers before it was refused.
  reply.removeHeader('content-disposition');
  reply.removeHeader('content-length');
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(body);
}
