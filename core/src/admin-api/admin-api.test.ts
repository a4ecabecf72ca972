import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Context, ServiceSchema } from 'moleculer';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { startQiao, type QiaoApp } from '../app.ts';
import { loadConfig } from '../config.ts';

interface Reply {
  status: number;
  body: any;
  text: string;
}

forEachDatabase('admin API', ({ url }) => {
  let app: QiaoApp;
  let dataDir: string;
  let base: string;
  let superToken: string;

  async function http(method: string, p: string, opts: { token?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | Buffer | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(base + p, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    return { status: res.status, body: parsed, text };
  }

  async function waitForRoute(fragment: string, present = true): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const routes = await app.broker.call<string[], object>('admin-api.routes', {});
      if (routes.some((r) => r.includes(fragment)) === present) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`route ${fragment} never ${present ? 'appeared' : 'went away'}`);
  }

  before(async function () {
    this.timeout(30_000);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-admin-api-'));
    app = await startQiao(
      loadConfig(process.env, {
        dataDir,
        databaseUrl: url(),
        logLevel: false,
        admin: { host: '127.0.0.1', port: 0 },
        gateway: { port: 0 },
        services: ['system', 'admin-api'],
      }),
    );
    base = (await app.broker.call<{ url: string }, object>('admin-api.address', {})).url;
    const password = app.bootstrap!.superAdmin!.password;
    const login = await http('POST', '/api/admin/login', { body: { account: 'admin', password } });
    assert.equal(login.status, 200, login.text);
    superToken = login.body.token;

    const fixture = {
      name: 'fixture',
      actions: {
        echo: {
          admin: true,
          rest: 'POST /fixture/:id/echo',
          params: { id: { type: 'string' }, n: { type: 'number', convert: true, optional: true } },
          handler(ctx: Context<Record<string, unknown>, { admin?: unknown }>) {
            return { params: ctx.params, admin: ctx.meta.admin };
          },
        },
        secret: { admin: 'super', rest: 'GET /fixture/secret', handler: () => ({ secret: 42 }) },
        hidden: { handler: () => 'not for admins' },
        broken: { admin: true, rest: 'FETCH fixture', handler: () => 'never mounted' },
        unparsable: { admin: true, rest: 'GET /fixture/(oops', handler: () => 'never mounted either' },
        twin: { admin: true, rest: 'GET /fixture/secret', handler: () => 'the route is taken' },
      },
    };
    app.broker.createService(fixture as unknown as ServiceSchema);
    await app.broker.waitForServices('fixture');
    await waitForRoute('fixture.echo');
  });

  after(async function () {
    this.timeout(30_000);
    await app?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers GET / with a page pointing to the API', async () => {
    const res = await http('GET', '/');
    assert.equal(res.status, 200);
    assert.match(res.text, /later release/);
    assert.match(res.text, /\/api\/admin/);
  });

  it('refuses a wrong password and names a missing field', async () => {
    const wrong = await http('POST', '/api/admin/login', { body: { account: 'admin', password: 'nope-nope' } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'QIAO_ADMIN_BAD_CREDENTIALS');
    const missing = await http('POST', '/api/admin/login', { body: { account: 'admin' } });
    assert.equal(missing.status, 422);
    assert.equal(missing.body.error.code, 'QIAO_VALIDATION');
    assert.equal(missing.body.error.field, 'password');
  });

  it('needs a bearer token on every route but login', async () => {
    for (const [method, p] of [['GET', '/api/admin/me'], ['POST', '/api/admin/logout'], ['GET', '/api/admin/fixture/secret'], ['GET', '/api/admin/no/such/route']]) {
      const none = await http(method, p);
      assert.equal(none.status, 401, `${method} ${p}`);
      assert.equal(none.body.error.code, 'QIAO_UNAUTHENTICATED');
    }
    const bogus = await http('GET', '/api/admin/me', { token: 'not-a-token' });
    assert.equal(bogus.status, 401);
    const malformed = await http('GET', '/api/admin/me', { headers: { authorization: 'Basic abc' } });
    assert.equal(malformed.status, 401);
    assert.match(malformed.body.error.message, /Bearer/);
  });

  it('resolves the token to the admin behind it', async () => {
    const me = await http('GET', '/api/admin/me', { token: superToken });
    assert.equal(me.status, 200);
    assert.equal(me.body.account, 'admin');
    assert.equal(me.body.role, 'super');
  });

  it('mounts admin actions under /api/admin, merging query, body and path parameters', async () => {
    const res = await http('POST', '/api/admin/fixture/abc/echo?n=5&tag=q', { token: superToken, body: { extra: 'x', id: 'body-loses' } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.params, { id: 'abc', n: 5, tag: 'q', extra: 'x' });
    assert.equal(res.body.admin.account, 'admin');
    assert.equal(res.body.admin.role, 'super');
    const routes = await app.broker.call<string[], object>('admin-api.routes', {});
    assert.ok(routes.includes('POST /api/admin/fixture/:id/echo → fixture.echo'));
    assert.ok(!routes.some((r) => r.includes('fixture.broken')), 'a malformed rest string is not mounted');
    assert.ok(!routes.some((r) => r.includes('fixture.unparsable')), 'a path the router cannot parse is not mounted');
    assert.equal(routes.filter((r) => r.startsWith('GET /api/admin/fixture/secret ')).length, 1, 'a route is mounted once');
    const listed = await http('GET', '/api/admin/routes', { token: superToken });
    assert.deepEqual(listed.body, routes);
  });

  it('answers a validation error with the field at fault', async () => {
    const res = await http('POST', '/api/admin/fixture/abc/echo', { token: superToken, body: { n: 'many' } });
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'QIAO_VALIDATION');
    assert.equal(res.body.error.field, 'n');
  });

  it("keeps super-admin actions from plain admins (403) and lets them call the rest", async () => {
    const created = await http('POST', '/api/admin/call/system.admins.create', {
      token: superToken,
      body: { account: 'ops', password: 'ops-password-1', role: 'admin' },
    });
    assert.equal(created.status, 200, created.text);
    const login = await http('POST', '/api/admin/login', { body: { account: 'ops', password: 'ops-password-1' } });
    assert.equal(login.status, 200);
    const ops = login.body.token;
    const secret = await http('GET', '/api/admin/fixture/secret', { token: ops });
    assert.equal(secret.status, 403);
    assert.equal(secret.body.error.code, 'QIAO_FORBIDDEN');
    const list = await http('GET', '/api/admin/admins', { token: ops });
    assert.equal(list.status, 403);
    const echo = await http('POST', '/api/admin/call/fixture.echo', { token: ops, body: { id: '7' } });
    assert.equal(echo.status, 200);
    assert.equal(echo.body.admin.account, 'ops');
    assert.equal(echo.body.admin.role, 'admin');
    const asSuper = await http('GET', '/api/admin/fixture/secret', { token: superToken });
    assert.deepEqual(asSuper.body, { secret: 42 });
  });

  it('calls only admin actions through /call', async () => {
    for (const action of ['fixture.hidden', 'no.such.action', 'system.admins.authenticate', '$node.list']) {
      const res = await http('POST', `/api/admin/call/${encodeURIComponent(action)}`, { token: superToken, body: {} });
      assert.equal(res.status, 404, action);
      assert.equal(res.body.error.code, 'QIAO_NOT_FOUND');
    }
  });

  it('rejects malformed JSON, non-object bodies and bodies over 1 MB', async () => {
    const bad = await http('POST', '/api/admin/fixture/a/echo', { token: superToken, raw: '{"n": 1,', headers: { 'content-type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'QIAO_BAD_REQUEST');
    const untyped = await http('POST', '/api/admin/login', { raw: 'account=admin&password=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(untyped.status, 400);
    const array = await http('POST', '/api/admin/fixture/a/echo', { token: superToken, body: [1, 2] });
    assert.equal(array.status, 400);
    assert.equal(array.body.error.field, 'body');
    const big = await http('POST', '/api/admin/fixture/a/echo', { token: superToken, body: { blob: 'x'.repeat(1024 * 1024 + 10) } });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'QIAO_PAYLOAD_TOO_LARGE');
  });

  it('answers unknown routes with 404 and survives garbage', async () => {
    const unknown = await http('GET', '/api/admin/no/such/route', { token: superToken });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'QIAO_NOT_FOUND');
    const outside = await http('GET', '/elsewhere');
    assert.equal(outside.status, 404);
    const garbage = [
      http('POST', '/api/admin/fixture/%E0%A4%A/echo', { token: superToken, body: {} }),
      http('POST', '/api/admin/call/%ZZ', { token: superToken, body: {} }),
      http('POST', '/api/admin/login', { raw: Buffer.from([0xff, 0xfe, 0x00, 0x7b]), headers: { 'content-type': 'application/json' } }),
      http('POST', '/api/admin/login', { body: { account: { $gt: '' }, password: ['x'] } }),
      http('POST', '/api/admin/login', { raw: '{"__proto__": {"admin": true}, "account": "admin", "password": "x"}', headers: { 'content-type': 'application/json' } }),
      http('DELETE', '/api/admin/me', { token: superToken, raw: 'null', headers: { 'content-type': 'application/json' } }),
    ];
    for (const res of await Promise.all(garbage)) {
      // Undecodable path segments reach the action verbatim; what matters is a JSON answer, never a 5xx.
      assert.ok(res.status < 500, `${res.status} ${res.text}`);
      assert.ok(res.body !== null, res.text);
      if (res.status >= 400) assert.match(res.body.error.code, /^QIAO_/);
    }
    const me = await http('GET', '/api/admin/me', { token: superToken });
    assert.equal(me.status, 200);
  });

  it('accepts the local CLI token from <dataDir>/cli.token as the super-admin local-cli', async () => {
    const file = path.join(dataDir, 'cli.token');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const token = fs.readFileSync(file, 'utf8');
    assert.equal(Buffer.from(token, 'base64url').length, 32);
    const me = await http('GET', '/api/admin/me', { token });
    assert.deepEqual(me.body, { id: 0, account: 'local-cli', role: 'super' });
    const list = await http('POST', '/api/admin/call/system.admins.list', { token, body: {} });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.map((a: { account: string }) => a.account), ['admin', 'ops']);
  });

  it('drops the routes of a service that goes away', async () => {
    await app.broker.destroyService(app.broker.getLocalService('fixture')!);
    await waitForRoute('fixture.echo', false);
    const res = await http('POST', '/api/admin/fixture/abc/echo', { token: superToken, body: {} });
    assert.equal(res.status, 404);
    const call = await http('POST', '/api/admin/call/fixture.echo', { token: superToken, body: { id: 'x' } });
    assert.equal(call.status, 404);
  });

  it('logs out: the token stops working', async () => {
    const out = await http('POST', '/api/admin/logout', { token: superToken });
    assert.equal(out.status, 200);
    const me = await http('GET', '/api/admin/me', { token: superToken });
    assert.equal(me.status, 401);
  });
});
