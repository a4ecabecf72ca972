import { describeError } from '../errors.ts';

export interface HttpErrorBody {
  error: { code: string; message: string; field?: string };
}

/** Moleculer's own transport errors mean "the service behind this route is not there right now". */
const UNAVAILABLE_TYPES = new Set(['SERVICE_NOT_FOUND', 'SERVICE_NOT_AVAILABLE', 'REQUEST_TIMEOUT', 'REQUEST_SKIPPED', 'REQUEST_REJECTED', 'QUEUE_FULL']);

/**
 * The one error shape both HTTP servers answer with: `{ error: { code, message, field? } }` and the status
 * from `describeError`. Codes that are not Qiao's (raw Moleculer or library errors) are folded into the
 * nearest Qiao code so clients only ever switch on `QIAO_…`.
 */
export function toHttpError(err: unknown): { status: number; body: HttpErrorBody } {
  const d = describeError(err);
  let { status, code } = d;
  if (UNAVAILABLE_TYPES.has(code)) {
    status = 503;
    code = 'QIAO_UNAVAILABLE';
  } else if (!code.startsWith('QIAO_')) {
    code = status >= 500 ? 'QIAO_INTERNAL' : status === 413 ? 'QIAO_PAYLOAD_TOO_LARGE' : status === 404 ? 'QIAO_NOT_FOUND' : 'QIAO_BAD_REQUEST';
  }
  const field = (d.data as { field?: unknown } | undefined)?.field;
  const body: HttpErrorBody = { error: { code, message: d.message } };
  if (typeof field === 'string' && field) body.error.field = field;
  return { status, body };
}
