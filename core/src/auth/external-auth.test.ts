import assert from 'node:assert/strict';
import { createDecipheriv, createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { rejectsWith, startAuthApp, type AuthApp } from './test-kit.ts';

/**
 * A third-party authentication server written from Youdu's documentation alone (not from our code): it
 * checks the signature, decrypts the body, and answers by its own account list.
 */
interface Seen {
  buin: number;
  app: string;
  fromUser: string;
  passwd: string;
  msgType: string;
  appIdInside: string;
}

function youduServer(token: string, aesKey: string, accounts: Record<string, string>, behaviour: { mode: 'normal' | 'error' | 'hang' | 'garbage' }) {
  const seen: Seen[] = [];
  const key = Buffer.from(aesKey, 'base64');
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (behaviour.mode === 'hang') return;
      const reply = (v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(typeof v === 'string' ? v : JSON.stringify(v));
      if (behaviour.mode === 'garbage') return reply('<html>oops</html>');
      if (behaviour.mode === 'error') return reply({ errcode: -1, errmsg: 'directory offline' });
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { toBuin: number; toApp: string; encrypt: string };
      const expected = createHash('sha1').update([token, q.get('timestamp')!, q.get('nonce')!, body.encrypt].sort().join('')).digest('hex');
      if (expected !== q.get('msg_signature')) return reply({ errcode: 40001, errmsg: 'bad signature' });
      const d = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
      d.setAutoPadding(false);
      const plain = Buffer.concat([d.update(Buffer.from(body.encrypt, 'base64')), d.final()]);
      const unpadded = plain.subarray(0, plain.length - plain[plain.length - 1]);
      const len = unpadded.readUInt32BE(16);
      const msg = JSON.parse(unpadded.subarray(20, 20 + len).toString('utf8'));
      seen.push({ buin: body.toBuin, app: body.toApp, fromUser: msg.fromUser, passwd: msg.passwd, msgType: msg.msgType, appIdInside: unpadded.subarray(20 + len).toString('utf8') });
      if (!(msg.fromUser in accounts)) return reply({ errcode: 300001, errmsg: 'account not exist' });
      if (accounts[msg.fromUser] !== msg.passwd) return reply({ errcode: 300002, errmsg: 'auth failed' });
      return reply({ errcode: 0, errmsg: 'ok' });
    });
  });
  return { server, seen };
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/youdu/auth`;
}

forEachDatabase('auth third-party authentication (Youdu callback)', ({ url }) => {
  let app: AuthApp;
  let third: ReturnType<typeof youduServer>;
  const behaviour = { mode: 'normal' as 'normal' | 'error' | 'hang' | 'garbage' };
  let endpoint: string;
  const login = (account: string, password: string) => app.call('auth.login', { account, password, deviceType: 'windows', deviceId: `pc-${account}`, ip: '10.0.0.5' });

  before(async function () {
    this.timeout(30_000);
    app = await startAuthApp(url());
    const settings = await app.admin('auth.settings.get');
    assert.match(settings.externalAuth.token, /^[A-Za-z0-9]{16}$/, 'a token is generated on first start');
    assert.equal(Buffer.from(settings.externalAuth.encodingAesKey, 'base64').length, 32);
    third = youduServer(settings.externalAuth.token, settings.externalAuth.encodingAesKey, { 'ext.user': 'Domain#Pass1', 'ext.other': '简单密码' }, behaviour);
    endpoint = await listen(third.server);
    await app.person('ext.user', { authType: 'external' }, null);
    await app.person('ext.gone', { authType: 'external' }, null);
  });
  after(async () => {
    third?.server.closeAllConnections();
    third?.server.close();
    await app?.stop();
  });

  it('refuses external people while no callback URL is configured', async () => {
    await rejectsWith(login('ext.user', 'Domain#Pass1'), 'QIAO_AUTH_EXTERNAL_UNAVAILABLE');
  });

  it('refuses a URL that is not http(s) and a key that is not 32 bytes, naming the field', async () => {
    await rejectsWith(app.admin('auth.settings.set', { externalAuth: { url: 'file:///etc/passwd' } }), 'QIAO_VALIDATION', 'externalAuth.url');
    await rejectsWith(app.admin('auth.settings.set', { externalAuth: { url: 'not a url' } }), 'QIAO_VALIDATION', 'externalAuth.url');
    await rejectsWith(app.admin('auth.settings.set', { externalAuth: { encodingAesKey: 'A'.repeat(43) + '$' } }), 'QIAO_VALIDATION', 'externalAuth.encodingAesKey');
    await rejectsWith(app.admin('auth.settings.set', { externalAuth: { token: "x' OR 1=1" } }), 'QIAO_VALIDATION', 'externalAuth.token');
    await rejectsWith(app.admin('auth.settings.set', { externalAuth: { url: 'http://x', extra: 1 } }), 'QIAO_VALIDATION');
  });

  it('logs an external person in when the third party says the password is right', async () => {
    await app.admin('auth.settings.set', { externalAuth: { url: endpoint, timeoutMs: 1000 } });
    const r = await login('ext.user', 'Domain#Pass1');
    assert.ok(r.token);
    assert.equal(r.mustChangePassword, false);
    const last = third.seen[third.seen.length - 1];
    const company = await app.call('system.settings.get', { key: 'company' });
    assert.deepEqual(last, { buin: company.buin, app: 'sysOrgAssistant', fromUser: 'ext.user', passwd: 'Domain#Pass1', msgType: 'auth', appIdInside: 'sysOrgAssistant' });
  });

  it('refuses a password the third party rejects, and counts it towards the lockout', async () => {
    await rejectsWith(login('ext.user', 'Wrong#Pass1'), 'QIAO_AUTH_BAD_CREDENTIALS', 'password');
    const id = (await app.admin('org.users.byAccount', { account: 'ext.user' })).id;
    assert.equal((await app.admin('auth.users.get', { userId: id })).failedAttempts, 1);
    await rejectsWith(login('ext.gone', 'Whatever#1'), 'QIAO_AUTH_BAD_CREDENTIALS', 'password');
    const log = await app.admin('audit.loginLog.query', { account: 'ext.gone' });
    assert.equal(log.entries[0].reason, 'unknown to the third party');
    await login('ext.user', 'Domain#Pass1');
    assert.equal((await app.admin('auth.users.get', { userId: id })).failedAttempts, 0);
  });

  it('says the third party is unavailable when it errs, answers nonsense, hangs or is down, and counts nothing', async () => {
    const id = (await app.admin('org.users.byAccount', { account: 'ext.user' })).id;
    behaviour.mode = 'error';
    const e = await rejectsWith(login('ext.user', 'Domain#Pass1'), 'QIAO_AUTH_EXTERNAL_UNAVAILABLE');
    assert.match(String(e.message), /errcode -1: directory offline/);
    behaviour.mode = 'garbage';
    await rejectsWith(login('ext.user', 'Domain#Pass1'), 'QIAO_AUTH_EXTERNAL_UNAVAILABLE');
    behaviour.mode = 'hang';
    const hung = await rejectsWith(login('ext.user', 'Domain#Pass1'), 'QIAO_AUTH_EXTERNAL_UNAVAILABLE');
    assert.match(String(hung.message), /did not answer within 1000 ms/);
    behaviour.mode = 'normal';
    const down = http.createServer();
    const downUrl = await listen(down);
    await new Promise((r) => down.close(r));
    await app.admin('auth.settings.set', { externalAuth: { url: downUrl } });
    const refused = await rejectsWith(login('ext.user', 'Domain#Pass1'), 'QIAO_AUTH_EXTERNAL_UNAVAILABLE');
    assert.match(String(refused.message), /cannot be reached \(ECONNREFUSED\)/);
    assert.equal((await app.admin('auth.users.get', { userId: id })).failedAttempts, 0);
    await app.admin('auth.settings.set', { externalAuth: { url: endpoint } });
  });

  it('lets an admin test the callback, and does not let external people change a password here', async () => {
    assert.equal((await app.admin('auth.externalAuth.test', { account: 'ext.other', password: '简单密码' })).verdict, 'ok');
    assert.equal((await app.admin('auth.externalAuth.test', { account: 'ext.other', password: 'nope' })).verdict, 'bad-password');
    const s = await login('ext.user', 'Domain#Pass1');
    await rejectsWith(app.call('auth.changePassword', { token: s.token, oldPassword: 'Domain#Pass1', newPassword: 'Other#Pass2' }), 'QIAO_CONFLICT', 'newPassword');
  });

  it('signs with a new token once the admin changes it', async () => {
    await app.admin('auth.settings.set', { externalAuth: { token: 'RotatedToken123' } });
    // The third party still expects the old token: its signature check fails, and it says so.
    await rejectsWith(login('ext.user', 'Domain#Pass1'), 'QIAO_AUTH_EXTERNAL_UNAVAILABLE');
  });
});
