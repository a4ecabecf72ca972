import type Koa from 'koa';
import type moleculer from 'moleculer';
import { redact } from '../audit/redact.ts';
import { normaliseIp } from '../auth/ip.ts';
import { describeError } from '../errors.ts';
import type { AdminIdentity } from '../system/system.service.ts';

/** Reads change nothing, so they are not in the log (a write reached through POST /call is, whatever it does). */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
const APPEND_TIMEOUT_MS = 5_000;

interface LogState {
  admin?: AdminIdentity;
  adminAction?: string;
  adminParams?: Record<string, unknown>;
}

/** The fixed routes have no broker action in `ctx.state`; name them by the action they stand for. */
function actionOf(ctx: Koa.Context, state: LogState): string {
  if (state.adminAction) return state.adminAction;
  const path = ctx.path.replace(/\/+$/, '');
  if (path === '/api/admin/login') return 'system.admins.login';
  if (path === '/api/admin/logout') return 'system.admins.logout';
  return `${ctx.method} ${path}`;
}

/**
 * The admin operation log. It wraps every request that reaches the API routes (after authentication and
 * body parsing; login included, with no admin yet) and, for every mutating one, appends who, which action,
 * its parameters with credentials redacted, how it ended, from which address and when, through
 * `audit.operationLog.append`. The entry is written before the answer goes out. A failure to write is
 * logged, not turned into a failure of the call, which has already happened.
 */
export function operationLog(broker: moleculer.ServiceBroker): Koa.Middleware {
  return async function operationLogMiddleware(ctx, next) {
    if (READS.has(ctx.method)) return next();
    // What the admin sent, copied before the call: a local action's validator converts its params in place.
    const body = (ctx.request as { body?: unknown }).body;
    const sent = { ...(redact(ctx.query) as object), ...(body && typeof body === 'object' && !Array.isArray(body) ? (redact(body) as object) : {}) };
    let failure: ReturnType<typeof describeError> | null = null;
    try {
      await next();
    } catch (err) {
      failure = describeError(err);
      throw err;
    } finally {
      const state = ctx.state as LogState;
      // Path parameters exist only in the action's params; everything else as it was sent.
      const params = { ...(state.adminParams ? (redact(state.adminParams) as object) : {}), ...sent };
      const status = failure ? failure.status : ctx.status;
      const loginAccount = !state.admin && typeof (params as { account?: unknown }).account === 'string' ? String((params as { account: string }).account) : null;
      const entry = {
        adminId: state.admin?.id ?? null,
        adminAccount: state.admin?.account ?? loginAccount,
        action: actionOf(ctx, state),
        method: ctx.method,
        path: ctx.path.slice(0, 500),
        params,
        outcome: failure || status >= 400 ? 'error' : 'ok',
        status,
        errorCode: failure?.code ?? null,
        errorMessage: failure?.message?.slice(0, 500) ?? null,
        ip: normaliseIp(ctx.request.ip ?? '') ?? ctx.request.ip ?? null,
      };
      try {
        await broker.call('audit.operationLog.append', entry, { timeout: APPEND_TIMEOUT_MS });
      } catch (err) {
        broker.logger.error(`admin operation log: could not record ${entry.action} by ${entry.adminAccount ?? 'unknown'}: ${describeError(err).message}`);
      }
    }
  };
}
