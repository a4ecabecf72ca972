import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { startAuthApp, type AuthApp } from '../auth/test-kit.ts';
import { collectAdminActions } from './admin-actions.ts';
import { createAdminHttp, type AdminHttp } from './http-app.ts';

/** The admin API's own pipeline (authentication, body parsing, operation log, generated routes, errors). */
function adminHttpWithLog(app: AuthApp): AdminHttp {
  const http = createAdminHttp(app.broker, () => null);
  assert.ok(http.app.middleware.some((m) => m.name === 'operationLogMiddleware'), 'the admin API mounts the operation log middleware');
  http.mount(collectAdminActions(app.broker).actions);
  return http;
}

forEachDatabase('admin operation log', ({ url }) => {
  let app: AuthApp;
  let http: AdminHttp;
  let server: Server;
  let base: string;
  let superToken: string;
  let superPassword: string;

  async function call(method: string, path: string, body?: unknown, token = superToken): Promise<{ status: number; body: any }> {
    const res = await fetch(base + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
  const entries = async () => (await app.admin('audit.operationLog.query', { pageSize: 500 })).entries as Array<Record<string, any>>;

  before(async function () {
    this.timeout(30_000);
    app = await startAuthApp(url());
    http = adminHttpWithLog(app);
    server = createServer(http.app.callback());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    superPassword = app.bootstrap!.superAdmin!.password;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await app?.stop();
  });

  it('records admin logins, failed ones too, with the password redacted', async () => {
    assert.equal((await call('POST', '/api/admin/login', { account: 'admin', password: 'Guess#0001' }, '')).status, 401);
    const ok = await call('POST', '/api/admin/login', { account: 'admin', password: superPassword }, '');
    assert.equal(ok.status, 200);
    superToken = ok.body.token;
    const [good, bad] = await entries();
    assert.equal(bad.action, 'system.admins.login');
    assert.equal(bad.adminAccount, 'admin');
    assert.equal(bad.outcome, 'error');
    assert.equal(bad.status, 401);
    assert.equal(bad.errorCode, 'QIAO_ADMIN_BAD_CREDENTIALS');
    assert.deepEqual(bad.params, { account: 'admin', password: '[redacted]' });
    assert.equal(bad.ip, '127.0.0.1');
    assert.equal(good.outcome, 'ok');
    assert.equal(good.status, 200);
    const raw = JSON.stringify(await entries());
    assert.ok(!raw.includes(superPassword) && !raw.includes('Guess#0001') && !raw.includes(superToken));
  });

  it('records every mutating call with who, what, params (secrets redacted) and outcome; reads are not recorded', async () => {
    const before = (await entries()).length;
    const userId = await app.person('op.target');
    assert.equal((await call('GET', `/api/admin/auth/users/${userId}`)).status, 200);
    assert.equal((await call('GET', '/api/admin/auth/settings')).status, 200);
    assert.equal((await entries()).length, before, 'reads leave no entries');

    assert.equal((await call('POST', `/api/admin/auth/users/${userId}/password`, { password: 'Chosen#2025', mustChange: true })).status, 200);
    assert.equal((await call('PUT', '/api/admin/auth/settings', { externalAuth: { url: 'http://sso.example/auth', token: 'NewToken123' }, lockoutThreshold: 6 })).status, 200);
    const refused = await call('POST', '/api/admin/auth/users/unlock', { userIds: ['x'.repeat(10_240)] });
    assert.equal(refused.status, 422);
    assert.equal((await call('POST', '/api/admin/call/auth.users.unlock', { userIds: [userId] })).status, 200);

    const [viaCall, failed, settings, setPassword] = await entries();
    assert.equal(setPassword.action, 'auth.users.setPassword');
    assert.equal(setPassword.adminAccount, 'admin');
    assert.equal(setPassword.method, 'POST');
    assert.equal(setPassword.path, `/api/admin/auth/users/${userId}/password`);
    assert.deepEqual({ ...setPassword.params, userId: Number(setPassword.params.userId) }, { password: '[redacted]', mustChange: true, userId });
    assert.equal(settings.action, 'auth.settings.set');
    assert.deepEqual(settings.params.externalAuth, { url: 'http://sso.example/auth', token: '[redacted]' });
    assert.equal(settings.params.lockoutThreshold, 6);
    assert.equal(failed.outcome, 'error');
    assert.equal(failed.status, 422);
    assert.equal(failed.errorCode, 'QIAO_VALIDATION');
    assert.match(failed.params.userIds[0], /… \[10240 characters\]$/, 'a 10 KB value is kept as a preview, as sent');
    assert.equal(viaCall.action, 'auth.users.unlock');
    assert.ok(!JSON.stringify(await entries()).includes('Chosen#2025'));
    assert.ok(!JSON.stringify(await entries()).includes('NewToken123'));
  });

  it('is readable by super-admins only, and no admin route writes to it', async () => {
    await app.admin('system.admins.create', { account: 'helpdesk', password: 'Helpdesk#2025', role: 'admin' });
    const login = await call('POST', '/api/admin/login', { account: 'helpdesk', password: 'Helpdesk#2025' }, '');
    const helpdesk = login.body.token;
    assert.equal((await call('GET', '/api/admin/audit/operation-log', undefined, helpdesk)).status, 403);
    assert.equal((await call('GET', '/api/admin/audit/login-log', undefined, helpdesk)).status, 200);
    const own = await call('GET', '/api/admin/audit/operation-log?account=helpdesk');
    assert.equal(own.status, 200);
    assert.deepEqual(own.body.entries.map((e: { action: string }) => e.action), ['system.admins.login']);
    const exported = await call('GET', '/api/admin/audit/operation-log/export?format=jsonl');
    assert.equal(exported.status, 200);
    assert.ok(exported.body.rows >= 7);

    const auditRoutes = http.routes().filter((r) => r.includes('/audit/'));
    assert.ok(auditRoutes.length >= 6);
    for (const r of auditRoutes) assert.match(r, /^GET /, r);
    // The append action is not an admin action: neither a route nor /call reaches it.
    const appended = await call('POST', '/api/admin/call/audit.operationLog.append', { action: 'forged', outcome: 'ok' });
    assert.equal(appended.status, 404);
    assert.ok(!(await entries()).some((e) => e.action === 'forged'));
  });

  it('does not fail an admin call when the log cannot be written', async () => {
    await app.broker.destroyService(app.broker.getLocalService('audit')!);
    const userId = await app.person('op.after');
    assert.equal((await call('POST', '/api/admin/auth/users/unlock', { userIds: [userId] })).status, 200);
  });
});
