import type { Command } from 'commander';
import { API_PREFIX, collectAdminActions } from '../admin-api/admin-actions.ts';
import { LOCAL_CLI_ADMIN, readCliToken } from '../admin-api/cli-token.ts';
import { loadConfig, type QiaoConfig } from '../config.ts';
import { ERROR_CODES, QiaoError, qiaoError, type ErrorCode } from '../errors.ts';
import { localUrl } from '../gateway/local-url.ts';
import { toHttpError } from '../gateway/http-error.ts';

export interface AdminCallOptions {
  /** Admin API base URL; else QIAO_ADMIN_URL; else this machine's admin port from the config. */
  url?: string;
  /** Bearer token; else QIAO_ADMIN_TOKEN; else the local CLI token in `<dataDir>/cli.token`. */
  token?: string;
  config?: QiaoConfig;
  /** When the local server is not running: `allow` (default) runs the action in-process on the same database. */
  offline?: 'allow' | 'never';
}

/** What the offline path starts: enough to administer state, never the gateways or plugin processes. */
const OFFLINE_SERVICES = ['system', 'licence', 'eventlog', 'plugins'];
/** Plugin installs run npm, so a call may legitimately take minutes. */
const CALL_TIMEOUT_MS = 10 * 60_000;

/** Rebuilds the server's `{code, message, field}` as a QiaoError so the CLI prints it as one line. */
function errorFrom(status: number, code: string, message: string, field?: string): QiaoError {
  const known = code in ERROR_CODES;
  const err = new QiaoError((known ? code : 'QIAO_INTERNAL') as ErrorCode, message, field ? { field } : undefined);
  if (!known) {
    err.type = code;
    err.code = status;
  }
  return err;
}

function asQiaoError(err: unknown): QiaoError {
  if (err instanceof QiaoError) return err;
  const { status, body } = toHttpError(err);
  return errorFrom(status, body.error.code, body.error.message, body.error.field);
}

function connectionRefused(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string; errors?: Array<{ code?: string }> } }).cause;
  return cause?.code === 'ECONNREFUSED' || Boolean(cause?.errors?.some((e) => e.code === 'ECONNREFUSED'));
}

/** Runs the action on a private broker over the same database, as the super-admin `local-cli`. */
async function callOffline<T>(action: string, params: object, config: QiaoConfig): Promise<T> {
  const { startQiao } = await import('../app.ts');
  let app: Awaited<ReturnType<typeof startQiao>>;
  try {
    app = await startQiao({
      ...config,
      services: OFFLINE_SERVICES,
      // Never join a running cluster: this broker exists for one call.
      transporter: null,
      nodeId: `qiao-cli-${process.pid}`,
      logLevel: config.logLevel === false ? false : 'warn',
      plugins: { ...config.plugins, autostart: false },
    });
  } catch (err) {
    const storage = config.databaseUrl.replace(/:[^:@/]*@/, ':***@');
    throw qiaoError('QIAO_UNAVAILABLE', `no Qiao server answers on this machine, and working on the database directly failed (${storage}): ${asQiaoError(err).message}`);
  }
  try {
    const first = app.bootstrap?.superAdmin;
    if (first) {
      process.stderr.write(
        `qiao: first use of this database: created super-admin "${first.account}" with one-time password ${first.password} — change it after first login\n`,
      );
    }
    const entry = collectAdminActions(app.broker).actions.get(action);
    if (!entry) throw qiaoError('QIAO_NOT_FOUND', `"${action}" is not an admin action (or its service is not running)`, { field: 'action' });
    return await app.broker.call<T, object>(action, params, { meta: { admin: { ...LOCAL_CLI_ADMIN } } });
  } catch (err) {
    throw asQiaoError(err);
  } finally {
    await app.stop();
  }
}

/**
 * Calls an admin action the way every CLI command does: through the running server's admin API, or, when
 * no server answers on this machine, directly on the database.
 */
export async function adminCall<T>(action: string, params: object = {}, opts: AdminCallOptions = {}): Promise<T> {
  const config = opts.config ?? loadConfig();
  const explicitUrl = opts.url ?? (process.env.QIAO_ADMIN_URL || undefined);
  const base = (explicitUrl ?? localUrl(config.admin.host, config.admin.port)).replace(/\/+$/, '');
  const token = opts.token ?? (process.env.QIAO_ADMIN_TOKEN || readCliToken(config.dataDir));
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;

  let res: Response;
  try {
    res = await fetch(`${base}${API_PREFIX}/call/${encodeURIComponent(action)}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(params),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  } catch (err) {
    // An address someone named explicitly is never swapped for local storage.
    if (connectionRefused(err) && !explicitUrl && (opts.offline ?? 'allow') === 'allow') return callOffline<T>(action, params, config);
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw qiaoError('QIAO_UNAVAILABLE', `cannot reach the admin API at ${base}: ${cause}`);
  }

  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw qiaoError('QIAO_UNAVAILABLE', `${base} answered HTTP ${res.status} with something that is not the Qiao admin API`);
  }
  if (res.ok) return body as T;
  const e = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | null)?.error;
  if (!e || typeof e.code !== 'string') throw qiaoError('QIAO_UNAVAILABLE', `${base} answered HTTP ${res.status} without a Qiao error`);
  let message = String(e.message ?? e.code);
  if (res.status === 401 && !token) message += ` — no token: run this on the server as the user that runs Qiao, or pass --token / QIAO_ADMIN_TOKEN`;
  throw errorFrom(res.status, e.code, message, typeof e.field === 'string' ? e.field : undefined);
}

/** Adds `--url` and `--token` to a command, for reaching an admin API other than this machine's. */
export function withServerOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'admin API base URL (default: this machine, QIAO_ADMIN_URL)')
    .option('--token <token>', 'admin bearer token (default: the local CLI token, QIAO_ADMIN_TOKEN)');
}

/** The AdminCallOptions that `withServerOptions` flags ask for. */
export function serverOptions(opts: { url?: string; token?: string }): AdminCallOptions {
  return { url: opts.url, token: opts.token };
}
