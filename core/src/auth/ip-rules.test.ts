import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { clientIp, parseCidr } from './ip.ts';
import { PASSWORD, rejectsWith, startAuthApp, type AuthApp } from './test-kit.ts';

describe('login IP parsing', () => {
  it('parses CIDR ranges and single addresses, and names what is wrong', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { cidr: '10.0.0.0/8', family: 'ipv4' });
    assert.deepEqual(parseCidr(' 192.168.1.7 '), { cidr: '192.168.1.7/32', family: 'ipv4' });
    assert.deepEqual(parseCidr('fd00::/8'), { cidr: 'fd00::/8', family: 'ipv6' });
    for (const bad of ['10.0.0.0/33', '10.0.0.0/-1', '10.0.0/8', 'abc', '', '10.0.0.0/8/8', "1.1.1.1/8' OR 1=1", '::/129']) {
      assert.ok('problem' in parseCidr(bad), bad);
    }
  });
  it('believes X-Forwarded-For only from a trusted proxy, and only up to the first untrusted hop', () => {
    assert.equal(clientIp('203.0.113.9', '10.1.1.1', []), '203.0.113.9');
    assert.equal(clientIp('203.0.113.9', '10.1.1.1', ['127.0.0.1/32']), '203.0.113.9');
    assert.equal(clientIp('127.0.0.1', '10.1.1.1', ['127.0.0.1/32']), '10.1.1.1');
    assert.equal(clientIp('::ffff:127.0.0.1', '1.2.3.4, 10.1.1.1', ['127.0.0.1/32']), '10.1.1.1', 'a client-written 1.2.3.4 further left proves nothing');
    assert.equal(clientIp('127.0.0.1', '8.8.8.8, 10.9.9.9, 127.0.0.2', ['127.0.0.0/8', '10.9.9.9']), '8.8.8.8');
    assert.equal(clientIp('127.0.0.1', 'garbage', ['127.0.0.1/32']), '127.0.0.1');
  });
});

forEachDatabase('auth login IP restriction', ({ url }) => {
  let app: AuthApp;
  const from = (account: string, ip: string, extra: object = {}) => app.login(account, PASSWORD, { ip, ...extra });
  before(async function () {
    this.timeout(30_000);
    app = await startAuthApp(url());
  });
  after(async () => app?.stop());

  it('will not switch on without an internal range', async () => {
    await rejectsWith(app.admin('auth.settings.set', { ipRestriction: true }), 'QIAO_CONFLICT', 'ipRestriction');
  });

  it('refuses bad ranges with the field named', async () => {
    await rejectsWith(app.admin('auth.ipRules.addRange', { cidr: '10.0.0.0/33' }), 'QIAO_VALIDATION', 'cidr');
    await rejectsWith(app.admin('auth.ipRules.addRange', { cidr: "10.0.0.0/8'; DROP TABLE users;--" }), 'QIAO_VALIDATION', 'cidr');
    await rejectsWith(app.admin('auth.ipRules.addRange', { cidr: 'x'.repeat(10_240) }), 'QIAO_VALIDATION', 'cidr');
    await rejectsWith(app.admin('auth.ipRules.addRange', { cidr: '10.0.0.0/8', note: 'n'.repeat(10_240) }), 'QIAO_VALIDATION', 'note');
    await rejectsWith(app.admin('auth.settings.set', { trustedProxies: ['not a proxy'] }), 'QIAO_VALIDATION', 'trustedProxies[0]');
  });

  it('lets people in from the internal ranges only, exempt people from anywhere', async () => {
    const inside = await app.person('inside.only');
    const roamer = await app.person('road.warrior');
    const office = await app.admin('auth.ipRules.addRange', { cidr: '10.0.0.0/8', note: 'office LAN' });
    await app.admin('auth.ipRules.addRange', { cidr: 'fd00::/8' });
    await app.admin('auth.settings.set', { ipRestriction: true });

    await from('inside.only', '10.20.30.40');
    await from('inside.only', '::ffff:10.20.30.41', { deviceId: 'mapped' });
    await from('inside.only', 'fd12::1', { deviceId: 'v6' });
    await rejectsWith(from('inside.only', '192.168.1.5'), 'QIAO_AUTH_IP_RESTRICTED', 'ip');
    await rejectsWith(from('road.warrior', '203.0.113.7'), 'QIAO_AUTH_IP_RESTRICTED', 'ip');
    // An unknown account from outside gets the same answer: the restriction reveals no accounts.
    await rejectsWith(from('no.such.person', '203.0.113.7'), 'QIAO_AUTH_IP_RESTRICTED', 'ip');
    // Not even wrong passwords get counted from outside.
    await rejectsWith(app.login('inside.only', 'Wrong#pass1', { ip: '203.0.113.7' }), 'QIAO_AUTH_IP_RESTRICTED');
    assert.equal((await app.admin('auth.users.get', { userId: inside })).failedAttempts, 0);

    const { added } = await app.admin('auth.ipRules.addExemptions', { userIds: [roamer], note: 'sales, travels' });
    assert.deepEqual(added, [roamer]);
    await from('road.warrior', '203.0.113.7');
    const rules = await app.admin('auth.ipRules.list');
    assert.equal(rules.enabled, true);
    assert.deepEqual(rules.ranges.map((r: { cidr: string }) => r.cidr), ['10.0.0.0/8', 'fd00::/8']);
    assert.deepEqual(rules.exemptions.map((e: { account: string }) => e.account), ['road.warrior']);
    assert.equal((await app.admin('auth.users.get', { userId: roamer })).ipExempt, true);

    await app.admin('auth.ipRules.remove', { id: rules.exemptions[0].id });
    await rejectsWith(from('road.warrior', '203.0.113.7'), 'QIAO_AUTH_IP_RESTRICTED');
    const failed = await app.admin('audit.loginLog.query', { userId: roamer, event: 'failed' });
    assert.deepEqual(failed.entries.map((e: { ip: string; reason: string }) => `${e.ip} ${e.reason}`), ['203.0.113.7 login IP restricted', '203.0.113.7 login IP restricted']);

    await app.admin('auth.ipRules.remove', { id: rules.ranges[1].id });
    await rejectsWith(app.admin('auth.ipRules.remove', { id: office.id }), 'QIAO_CONFLICT', 'id');
    await app.admin('auth.settings.set', { ipRestriction: false });
    await from('road.warrior', '203.0.113.7');
    await app.admin('auth.ipRules.remove', { id: office.id });
    await rejectsWith(app.admin('auth.ipRules.remove', { id: office.id }), 'QIAO_NOT_FOUND', 'id');
  });

  it('takes the client address from X-Forwarded-For only behind a trusted proxy', async () => {
    await app.person('behind.proxy');
    await app.admin('auth.ipRules.addRange', { cidr: '10.0.0.0/8' });
    await app.admin('auth.settings.set', { ipRestriction: true });
    // The client claims an internal address; the socket says otherwise.
    await rejectsWith(from('behind.proxy', '203.0.113.7', { forwardedFor: '10.1.1.1' }), 'QIAO_AUTH_IP_RESTRICTED');
    await app.admin('auth.settings.set', { trustedProxies: ['203.0.113.7'] });
    await from('behind.proxy', '203.0.113.7', { forwardedFor: '10.1.1.1' });
    await rejectsWith(from('behind.proxy', '203.0.113.7', { forwardedFor: '10.1.1.1, 198.51.100.4' }), 'QIAO_AUTH_IP_RESTRICTED');
    const log = await app.admin('audit.loginLog.query', { account: 'behind.proxy' });
    assert.deepEqual(log.entries.map((e: { event: string; ip: string }) => `${e.event} ${e.ip}`), ['failed 198.51.100.4', 'login 10.1.1.1', 'failed 203.0.113.7']);
    await app.admin('auth.settings.set', { ipRestriction: false, trustedProxies: [] });
  });
});
