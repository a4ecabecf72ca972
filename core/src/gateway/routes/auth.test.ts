import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../../test/support/databases.ts';
import { PASSWORD, startAuthApp, type AuthApp } from '../../auth/test-kit.ts';

forEachDatabase('gateway auth routes', ({ url }) => {
  let app: AuthApp;
  let base: string;

  async function http(method: string, path: string, opts: { body?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(base + path, { method, headers, body });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
  const credentials = (account: string, extra: object = {}) => ({ account, password: PASSWORD, deviceType: 'web', deviceId: `browser-${account}`, deviceName: 'Chrome', ...extra });

  before(async function () {
    this.timeout(30_000);
    app = await startAuthApp(url(), { services: ['system', 'eventlog', 'org', 'licence', 'auth', 'audit', 'gateway'] });
    base = (await app.call<{ url: string }>('gateway.address')).url;
    await app.person('http.user');
  });
  after(async () => app?.stop());

  it('logs in over HTTP, lists the devices, changes the password and logs out', async () => {
    const login = await http('POST', '/v1/auth/login', { body: credentials('http.user') });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const token = login.body.token;
    assert.equal(login.body.mustChangePassword, false);

    const sessions = await http('GET', '/v1/auth/sessions', { token });
    assert.equal(sessions.status, 200);
    assert.deepEqual(sessions.body.sessions.map((s: { deviceName: string; current: boolean; ip: string }) => [s.deviceName, s.current, s.ip]), [['Chrome', true, '127.0.0.1']]);

    const changed = await http('POST', '/v1/auth/password', { token, body: { oldPassword: PASSWORD, newPassword: 'Http#2025pw' } });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    const wrongOld = await http('POST', '/v1/auth/password', { token, body: { oldPassword: PASSWORD, newPassword: 'Http#2026pw' } });
    assert.equal(wrongOld.status, 401);
    assert.deepEqual(wrongOld.body.error.field, 'oldPassword');

    assert.equal((await http('POST', '/v1/auth/logout', { token })).status, 200);
    const after = await http('GET', '/v1/auth/sessions', { token });
    assert.equal(after.status, 401);
    assert.equal(after.body.error.code, 'QIAO_UNAUTHENTICATED');
    const log = await app.admin('audit.loginLog.query', { account: 'http.user' });
    assert.deepEqual(log.entries.map((e: { event: string; ip: string; deviceType: string }) => `${e.event} ${e.ip} ${e.deviceType}`), ['logout 127.0.0.1 web', 'failed 127.0.0.1 web', 'login 127.0.0.1 web']);
    await app.admin('auth.users.setPassword', { userId: (await app.admin('org.users.byAccount', { account: 'http.user' })).id, password: PASSWORD, mustChange: false });
  });

  it('answers wrong credentials, missing tokens and bad bodies with the Qiao error shape', async () => {
    const wrong = await http('POST', '/v1/auth/login', { body: credentials('http.user', { password: 'Wrong#pass1' }) });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, { error: { code: 'QIAO_AUTH_BAD_CREDENTIALS', message: 'wrong account or password', field: 'password' } });
    for (const [method, path] of [['GET', '/v1/auth/sessions'], ['POST', '/v1/auth/logout'], ['POST', '/v1/auth/password']]) {
      const r = await http(method, path, method === 'POST' ? { body: {} } : {});
      assert.equal(r.status, 401, path);
      assert.equal(r.body.error.field, 'authorization');
    }
    assert.equal((await http('GET', '/v1/auth/sessions', { token: 'forged' })).status, 401);
    const notJson = await http('POST', '/v1/auth/login', { raw: '{"account": ' });
    assert.equal(notJson.status, 400);
    const notObject = await http('POST', '/v1/auth/login', { body: ['account'] });
    assert.equal(notObject.status, 400);
    assert.equal(notObject.body.error.field, 'body');
    const huge = await http('POST', '/v1/auth/login', { body: credentials('x'.repeat(10_240)) });
    assert.equal(huge.status, 422);
    assert.equal(huge.body.error.field, 'account');
    const sql = await http('POST', '/v1/auth/login', { body: credentials("admin'--") });
    assert.equal(sql.status, 422);
    assert.equal(sql.body.error.field, 'account');
    const device = await http('POST', '/v1/auth/login', { body: credentials('http.user', { deviceType: 'fridge' }) });
    assert.equal(device.status, 422);
    assert.equal(device.body.error.field, 'deviceType');
    await app.admin('auth.users.unlock', { userIds: [(await app.admin('org.users.byAccount', { account: 'http.user' })).id] });
  });

  it('checks the token before it even reads the body of an authenticated route', async () => {
    const forged = 'A'.repeat(43);
    for (const [method, path] of [['POST', '/v1/auth/password'], ['POST', '/v1/auth/logout'], ['GET', '/v1/auth/sessions']]) {
      for (const opts of [{}, { body: {} }, { raw: '{"oldPassword": ' }, { body: ['x'] }, { raw: 'text', headers: { 'content-type': 'text/plain' } }]) {
        if (method === 'GET' && Object.keys(opts).length) continue;
        const r = await http(method, path, { token: forged, ...opts });
        assert.equal(r.status, 401, `${method} ${path} ${JSON.stringify(opts)}: ${JSON.stringify(r.body)}`);
        assert.deepEqual([r.body.error.code, r.body.error.field], ['QIAO_UNAUTHENTICATED', 'authorization']);
      }
    }
    // With a good token, the body is looked at: an empty one names the missing field.
    const token = (await http('POST', '/v1/auth/login', { body: credentials('http.user') })).body.token;
    const empty = await http('POST', '/v1/auth/password', { token, body: {} });
    assert.equal(empty.status, 422, JSON.stringify(empty.body));
    assert.equal(empty.body.error.field, 'oldPassword');
    const badJson = await http('POST', '/v1/auth/password', { token, raw: '{"oldPassword": ' });
    assert.equal(badJson.status, 400);
    // Someone who must change their password may still do so (and see their sessions, and log out).
    const userId = (await app.admin('org.users.byAccount', { account: 'http.user' })).id;
    await app.admin('auth.users.setPassword', { userId, password: PASSWORD, mustChange: true });
    const forced = (await http('POST', '/v1/auth/login', { body: credentials('http.user') })).body;
    assert.equal(forced.mustChangePassword, true);
    assert.equal((await http('GET', '/v1/auth/sessions', { token: forced.token })).status, 200);
    const changed = await http('POST', '/v1/auth/password', { token: forced.token, body: { oldPassword: PASSWORD, newPassword: 'Order#2025pw' } });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    // Logging out of a session that has ended already is still answered as before.
    assert.equal((await http('POST', '/v1/auth/logout', { token: forced.token })).status, 200);
    assert.equal((await http('POST', '/v1/auth/logout', { token: forced.token })).status, 200);
    assert.equal((await http('GET', '/v1/auth/sessions', { token: forced.token })).status, 401);
    await app.admin('auth.users.setPassword', { userId, password: PASSWORD, mustChange: false });
  });

  it('takes the client address from the socket, not from what the client claims', async () => {
    await app.admin('auth.ipRules.addRange', { cidr: '10.0.0.0/8' });
    await app.admin('auth.settings.set', { ipRestriction: true });
    try {
      const claimed = await http('POST', '/v1/auth/login', { body: { ...credentials('http.user'), ip: '10.1.1.1' }, headers: { 'x-forwarded-for': '10.1.1.1' } });
      assert.equal(claimed.status, 403);
      assert.equal(claimed.body.error.code, 'QIAO_AUTH_IP_RESTRICTED');
      // Behind a proxy the admin trusts, the forwarded address is the client's.
      await app.admin('auth.settings.set', { trustedProxies: ['127.0.0.1'] });
      const proxied = await http('POST', '/v1/auth/login', { body: credentials('http.user'), headers: { 'x-forwarded-for': '10.1.1.1' } });
      assert.equal(proxied.status, 200, JSON.stringify(proxied.body));
      const log = await app.admin('audit.loginLog.query', { account: 'http.user', event: 'login' });
      assert.equal(log.entries[0].ip, '10.1.1.1');
    } finally {
      await app.admin('auth.settings.set', { ipRestriction: false, trustedProxies: [] });
    }
  });

  it('walks through the SMS step over HTTP', async () => {
    const sent: Array<{ mobile: string; text: string }> = [];
    app.broker.createService({ name: 'sms', actions: { send: { handler: (ctx) => void sent.push(ctx.params as { mobile: string; text: string }) } } });
    await app.broker.waitForServices('sms');
    await app.person('http.sms', { mobile: '13600000000' });
    await app.admin('auth.settings.set', { smsTwoFactor: true });
    try {
      const first = await http('POST', '/v1/auth/login', { body: credentials('http.sms') });
      assert.equal(first.status, 200);
      assert.equal(first.body.needSmsCode, true);
      const code = /(\d{6})/.exec(sent[0].text)![1];
      const second = await http('POST', '/v1/auth/login', { body: { challenge: first.body.challenge, smsCode: code, deviceType: 'web', deviceId: 'browser-http.sms' } });
      assert.equal(second.status, 200, JSON.stringify(second.body));
      assert.ok(second.body.token);
    } finally {
      await app.admin('auth.settings.set', { smsTwoFactor: false });
    }
  });
});
