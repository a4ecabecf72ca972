import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import type moleculer from 'moleculer';
import { qiaoError } from '../errors.ts';
import { toHttpError } from '../gateway/http-error.ts';
import type { AdminIdentity } from '../system/system.service.ts';
import { API_PREFIX, type AdminAction } from './admin-actions.ts';
import { LOCAL_CLI_ADMIN, sameToken } from './cli-token.ts';
import { operationLog } from './operation-log.ts';

const BODY_LIMIT = '1mb';

export interface AdminState {
  admin?: AdminIdentity;
  token?: string;
  adminAction?: string;
  adminParams?: Record<string, unknown>;
}

type Ctx = Koa.ParameterizedContext<AdminState>;

export interface AdminHttp {
  app: Koa<AdminState>;
  /** Replaces the auto-generated routes (requests already running finish on the old set); returns what could not be mounted. */
  mount(actions: Map<string, AdminAction>): string[];
  /** `METHOD /api/admin/path → action` of the routes currently mounted. */
  routes(): string[];
}

const WELCOME = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Qiao admin</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Qiao (桥) administration</h1>
<p>The web console arrives in a later release. Until then, administer Qiao with the <code>qiao</code> command
or the HTTP API under <code>${API_PREFIX}</code>: <code>POST ${API_PREFIX}/login</code> with
<code>{"account", "password"}</code>, then send <code>Authorization: Bearer &lt;token&gt;</code>.</p>
</body></html>
`;

function sendJson(ctx: Ctx, status: number, value: unknown): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(value ?? null);
}

function bearer(ctx: Ctx): string {
  const header = ctx.get('authorization');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw qiaoError('QIAO_UNAUTHENTICATED', header ? 'Authorization header must be "Bearer <token>"' : 'Authorization header is missing: log in at POST /api/admin/login and send "Bearer <token>"');
  return m[1];
}

function plainQuery(ctx: Ctx): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ctx.query)) out[k] = v;
  return out;
}

function requestBody(ctx: Ctx): Record<string, unknown> {
  const body = (ctx.request as { body?: unknown }).body;
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw qiaoError('QIAO_BAD_REQUEST', 'request body must be a JSON object', { field: 'body' });
  return body as Record<string, unknown>;
}

/**
 * The koa application behind port 7003. Fixed routes (login, logout, me, call) are declared here; every
 * other route is generated from the `admin`/`rest` marks of broker actions and swapped in by `mount`.
 */
export function createAdminHttp(broker: moleculer.ServiceBroker, cliToken: () => string | null): AdminHttp {
  const app = new Koa<AdminState>();
  app.silent = true;
  let catalogue = new Map<string, AdminAction>();
  let generated: Koa.Middleware<AdminState> = async (_ctx, next) => next();
  let mounted: string[] = [];

  async function callAction(ctx: Ctx, entry: AdminAction, params: Record<string, unknown>): Promise<void> {
    const admin = ctx.state.admin!;
    if (entry.admin === 'super' && admin.role !== 'super') {
      throw qiaoError('QIAO_FORBIDDEN', `action "${entry.action}" needs a super-admin; "${admin.account}" is ${admin.role}`);
    }
    ctx.state.adminAction = entry.action;
    ctx.state.adminParams = params;
    const result = await broker.call(entry.action, params, { meta: { admin } });
    sendJson(ctx, 200, result);
  }

  async function authenticate(ctx: Ctx, next: Koa.Next): Promise<void> {
    // Everything under the prefix but login needs a signed-in admin, so the route map is not visible to strangers.
    const underPrefix = ctx.path === API_PREFIX || ctx.path.startsWith(`${API_PREFIX}/`);
    if (!underPrefix || ctx.path === `${API_PREFIX}/login`) return next();
    const token = bearer(ctx);
    const local = cliToken();
    ctx.state.token = token;
    ctx.state.admin = local && sameToken(token, local)
      ? { ...LOCAL_CLI_ADMIN }
      : await broker.call<AdminIdentity, { token: string }>('system.admins.authenticate', { token });
    await next();
  }

  const fixed = new Router<AdminState>({ prefix: API_PREFIX });
  fixed.post('/login', async (ctx) => {
    const { account, password } = requestBody(ctx);
    sendJson(ctx, 200, await broker.call('system.admins.login', { account, password }));
  });
  fixed.post('/logout', async (ctx) => {
    if (ctx.state.admin!.id !== LOCAL_CLI_ADMIN.id) await broker.call('system.admins.logout', { token: ctx.state.token });
    sendJson(ctx, 200, { ok: true });
  });
  fixed.get('/me', async (ctx) => sendJson(ctx, 200, ctx.state.admin));
  fixed.post('/call/:action', async (ctx) => {
    const name = ctx.params.action;
    const entry = catalogue.get(name);
    if (!entry) throw qiaoError('QIAO_NOT_FOUND', `"${name}" is not an admin action (or its service is not running)`, { field: 'action' });
    await callAction(ctx, entry, requestBody(ctx));
  });

  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.body === undefined && ctx.status === 404) {
        throw qiaoError('QIAO_NOT_FOUND', `no admin API route ${ctx.method} ${ctx.path}`);
      }
    } catch (err) {
      const { status, body } = toHttpError(err);
      sendJson(ctx, status, body);
    }
  });
  app.use(async (ctx, next) => {
    if (ctx.path === '/' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = WELCOME;
      return;
    }
    await next();
  });
  // Before the body is read: a stranger's request is refused without parsing its body.
  app.use(authenticate);
  app.use(
    bodyParser({
      enableTypes: ['json'],
      // Any body is read as JSON, whatever its content type claims, so the size limit always applies.
      detectJSON: () => true,
      jsonLimit: BODY_LIMIT,
      jsonStrict: true,
      parsedMethods: ['POST', 'PUT', 'PATCH', 'DELETE'],
      onError: (err: Error & { status?: number }) => {
        if (err.status === 413) throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `request body is larger than ${BODY_LIMIT}`, { field: 'body' });
        throw qiaoError('QIAO_BAD_REQUEST', `request body is not valid JSON: ${err.message}`, { field: 'body' });
      },
    }),
  );
  app.use(operationLog(broker));
  app.use(fixed.routes());
  app.use(async (ctx, next) => generated(ctx, next));

  return {
    app,
    mount(actions) {
      const router = new Router<AdminState>({ prefix: API_PREFIX });
      const seen = new Map<string, string>();
      const list: string[] = [];
      const problems: string[] = [];
      for (const entry of actions.values()) {
        if (!entry.route) continue;
        const key = `${entry.route.method} ${entry.route.path}`;
        const taken = seen.get(key);
        if (taken) {
          problems.push(`action "${entry.action}" wants ${key}, already mounted for "${taken}"; it stays reachable through /call`);
          continue;
        }
        try {
          router.register(entry.route.path, [entry.route.method], async (ctx: Ctx) => {
            // The URL names the object acted on, so its path parameters win over same-named body fields.
            const params = { ...plainQuery(ctx), ...requestBody(ctx), ...(ctx as Ctx & { params: Record<string, string> }).params };
            await callAction(ctx, entry, params);
          });
        } catch (err) {
          // One service's unusable path must not cost the others their routes.
          problems.push(`action "${entry.action}": path "${entry.route.path}" cannot be mounted: ${(err as Error).message}`);
          continue;
        }
        seen.set(key, entry.action);
        list.push(`${entry.route.method} ${API_PREFIX}${entry.route.path} → ${entry.action}`);
      }
      catalogue = actions;
      generated = router.routes() as unknown as Koa.Middleware<AdminState>;
      mounted = list.sort();
      return problems;
    },
    routes: () => mounted,
  };
}
