import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { select } from '../db/sql.ts';
import { PASSWORD, eventually, listen, rejectsWith, startAuthApp, type AuthApp } from './test-kit.ts';

const DAY = 86_400_000;

forEachDatabase('auth login', ({ url }) => {
  let app: AuthApp;
  let revoked: ReturnType<typeof listen>;
  before(async function () {
    this.timeout(30_000);
    app = await startAuthApp(url());
    revoked = listen(app, ['auth.session.revoked']);
  });
  after(async () => app?.stop());

  it('logs a person in; the token authenticates with who and which device', async () => {
    const id = await app.person('li.lei');
    const r = await app.login('li.lei');
    assert.equal(r.userId, id);
    assert.equal(r.mustChangePassword, false);
    assert.match(r.token, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(new Date(r.expiresAt).getTime() > Date.now() + 29 * DAY);
    const me = await app.call('auth.authenticate', { token: r.token });
    assert.deepEqual(me, { userId: id, account: 'li.lei', sessionId: r.sessionId, deviceType: 'windows', deviceId: 'pc-li.lei', wipe: false, mustChangePassword: false });
  });

  it('stores only a SHA-256 of the token', async () => {
    const r = await app.login('li.lei');
    const rows = await select<{ token_hash: string }>(app.db, 'SELECT token_hash FROM user_sessions WHERE id = ?', [r.sessionId]);
    assert.equal(rows[0].token_hash, createHash('sha256').update(r.token).digest('hex'));
    const dump = JSON.stringify(await select(app.db, 'SELECT * FROM user_sessions'));
    assert.ok(!dump.includes(r.token));
  });

  it('refuses a wrong password and an unknown account with the same answer', async () => {
    await app.person('han.mei');
    await rejectsWith(app.login('han.mei', 'Wrong#2024x'), 'QIAO_AUTH_BAD_CREDENTIALS', 'password');
    await rejectsWith(app.login('nobody.here', PASSWORD), 'QIAO_AUTH_BAD_CREDENTIALS', 'password');
    await app.admin('auth.users.unlock', { userIds: [(await app.admin('org.users.byAccount', { account: 'han.mei' })).id] });
  });

  it('refuses a tampered, forged, malformed, expired or logged-out token', async () => {
    const r = await app.login('li.lei', PASSWORD, { deviceId: 'tamper-pc', deviceType: 'linux' });
    const flipped = r.token.slice(0, 10) + (r.token[10] === 'A' ? 'B' : 'A') + r.token.slice(11);
    await rejectsWith(app.call('auth.authenticate', { token: flipped }), 'QIAO_UNAUTHENTICATED', 'token');
    await rejectsWith(app.call('auth.authenticate', { token: Buffer.alloc(32, 7).toString('base64url') }), 'QIAO_UNAUTHENTICATED', 'token');
    await rejectsWith(app.call('auth.authenticate', { token: `${r.token}x` }), 'QIAO_UNAUTHENTICATED', 'token');
    await rejectsWith(app.call('auth.authenticate', { token: "' OR '1'='1" }), 'QIAO_UNAUTHENTICATED', 'token');
    await rejectsWith(app.call('auth.authenticate', { token: 'x'.repeat(10_000) }), 'QIAO_VALIDATION', 'token');

    app.travel(new Date(Date.now() + 31 * DAY));
    const expired = await rejectsWith(app.call('auth.authenticate', { token: r.token }), 'QIAO_UNAUTHENTICATED', 'token');
    assert.equal(expired.reason, 'expired');
    app.travel(null);

    await app.call('auth.authenticate', { token: r.token });
    await app.call('auth.logout', { token: r.token, ip: '10.0.0.5' });
    const ended = await rejectsWith(app.call('auth.authenticate', { token: r.token }), 'QIAO_UNAUTHENTICATED', 'token');
    assert.equal(ended.reason, 'logout');
  });

  it(`locks an account after 5 wrong passwords, refuses it even with the right one, and an admin unlocks it`, async () => {
    const id = await app.person('wang.wu');
    const before = await app.login('wang.wu');
    for (let i = 1; i <= 4; i++) await rejectsWith(app.login('wang.wu', `Wrong#${i}abc`), 'QIAO_AUTH_BAD_CREDENTIALS', 'password');
    await rejectsWith(app.login('wang.wu', 'Wrong#5abc'), 'QIAO_AUTH_LOCKED', 'account');
    await rejectsWith(app.login('wang.wu'), 'QIAO_AUTH_LOCKED', 'account');
    const held = await rejectsWith(app.call('auth.authenticate', { token: before.token }), 'QIAO_UNAUTHENTICATED');
    assert.equal(held.reason, 'locked');

    const locked = await app.admin('auth.users.list', { list: 'locked' });
    assert.deepEqual(locked.users.map((u: { account: string }) => u.account), ['wang.wu']);
    assert.equal(locked.users[0].failedAttempts, 5);

    assert.deepEqual(await app.admin('auth.users.unlock', { userIds: [id] }), { unlocked: [id] });
    assert.equal((await app.admin('auth.users.list', { list: 'locked' })).total, 0);
    await app.login('wang.wu');

    const events = await app.admin('audit.userEvents.query', { userId: id });
    assert.deepEqual(events.entries.map((e: { event: string }) => e.event).filter((e: string) => e === 'locked' || e === 'unlocked'), ['unlocked', 'locked']);
    assert.equal(events.entries.find((e: { event: string }) => e.event === 'unlocked').actor, 'admin:admin');
    const failed = await app.admin('audit.loginLog.query', { userId: id, event: 'failed' });
    assert.equal(failed.total, 6);
  });

  it('takes the lockout threshold from the settings, and a successful login resets the count', async () => {
    await app.admin('auth.settings.set', { lockoutThreshold: 2 });
    await app.person('zhao.liu');
    await rejectsWith(app.login('zhao.liu', 'Wrong#1abc'), 'QIAO_AUTH_BAD_CREDENTIALS');
    await app.login('zhao.liu');
    await rejectsWith(app.login('zhao.liu', 'Wrong#1abc'), 'QIAO_AUTH_BAD_CREDENTIALS');
    await rejectsWith(app.login('zhao.liu', 'Wrong#2abc'), 'QIAO_AUTH_LOCKED');
    await app.admin('auth.settings.set', { lockoutThreshold: 5 });
  });

  it('refuses disabled and resigned people and ends their sessions at once', async () => {
    const id = await app.person('sun.qi');
    const a = await app.login('sun.qi', PASSWORD, { deviceType: 'windows', deviceId: 'sq-pc' });
    const b = await app.login('sun.qi', PASSWORD, { deviceType: 'android', deviceId: 'sq-phone' });
    await app.admin('org.users.disable', { id });
    // Refused at once, before the event has even been handled: authenticate reads the status itself.
    await rejectsWith(app.call('auth.authenticate', { token: a.token }), 'QIAO_UNAUTHENTICATED');
    await rejectsWith(app.login('sun.qi'), 'QIAO_AUTH_DISABLED', 'account');
    await eventually(async () => {
      const ended = revoked.filter((e) => e.params.userId === id && e.params.reason === 'disabled').map((e) => e.params.sessionId).sort();
      assert.deepEqual(ended, [a.sessionId, b.sessionId].sort());
    });
    assert.equal((await app.admin('auth.sessions.list', { userId: id })).sessions.length, 0);
    assert.ok((await app.admin('auth.users.list', { list: 'disabled' })).users.some((u: { id: number }) => u.id === id));

    await app.admin('org.users.enable', { id });
    const c = await app.login('sun.qi');
    await rejectsWith(app.call('auth.authenticate', { token: a.token }), 'QIAO_UNAUTHENTICATED');

    await app.admin('org.users.resign', { id });
    await rejectsWith(app.login('sun.qi'), 'QIAO_AUTH_RESIGNED', 'account');
    await eventually(async () => {
      assert.ok(revoked.some((e) => e.params.sessionId === c.sessionId && e.params.reason === 'resigned'));
      const u = await app.admin('auth.users.get', { userId: id });
      assert.equal(u.authorised, false, 'resigning gives the seat back');
    });
    assert.ok((await app.admin('auth.users.list', { list: 'resigned' })).users.some((u: { id: number }) => u.id === id));
    const kicked = await app.admin('audit.loginLog.query', { userId: id, event: 'kicked' });
    assert.deepEqual(kicked.entries.map((e: { reason: string }) => e.reason).sort(), ['disabled', 'disabled', 'resigned']);
    await rejectsWith(app.admin('auth.users.authorise', { userIds: [id] }), 'QIAO_CONFLICT', 'userIds[0]');
  });

  it('authorises on first login only while the switch is on; admins authorise and deauthorise', async () => {
    await app.admin('auth.settings.set', { autoAuthorise: false });
    const id = await app.person('zhou.ba');
    await rejectsWith(app.login('zhou.ba'), 'QIAO_AUTH_NOT_AUTHORISED', 'account');
    assert.ok((await app.admin('auth.users.list', { list: 'unauthorised' })).users.some((u: { id: number }) => u.id === id));
    await app.admin('auth.users.authorise', { userIds: [id] });
    const s = await app.login('zhou.ba');
    await app.admin('auth.users.deauthorise', { userIds: [id] });
    const r = await rejectsWith(app.call('auth.authenticate', { token: s.token }), 'QIAO_UNAUTHENTICATED');
    assert.equal(r.reason, 'deauthorised');
    await rejectsWith(app.login('zhou.ba'), 'QIAO_AUTH_NOT_AUTHORISED');
    await app.admin('auth.settings.set', { autoAuthorise: true });
    const again = await app.login('zhou.ba');
    assert.equal(again.userId, id);
    const events = (await app.admin('audit.userEvents.query', { userId: id })).entries.map((e: { event: string; actor: string }) => `${e.event}/${e.actor}`);
    assert.deepEqual(events.filter((e: string) => /authorised/.test(e)), ['authorised/system:auto-authorise', 'deauthorised/admin:admin', 'authorised/admin:admin']);
  });

  it('stops authorising when the licence seats are used up', async () => {
    const { used } = await app.call('licence.seats');
    await app.rig.install(app, { seats: used + 1 });
    const first = await app.person('seat.one');
    const second = await app.person('seat.two');
    const third = await app.person('seat.three');
    await app.login('seat.one');
    assert.deepEqual(await app.call('licence.seats'), { seats: used + 1, used: used + 1, available: 0 });
    const refused = await rejectsWith(app.login('seat.two'), 'QIAO_LICENCE_SEATS_EXHAUSTED');
    assert.match(String(refused.message), new RegExp(`allows ${used + 1} authorised`));
    await rejectsWith(app.admin('auth.users.authorise', { userIds: [second, third] }), 'QIAO_LICENCE_SEATS_EXHAUSTED', 'userIds');
    assert.equal((await app.admin('auth.users.get', { userId: second })).authorised, false, 'nothing half-authorised');
    // A seat freed is a seat to take.
    await app.admin('auth.users.deauthorise', { userIds: [first] });
    await app.login('seat.two');
    await rejectsWith(app.login('seat.three'), 'QIAO_LICENCE_SEATS_EXHAUSTED');
    const failed = await app.admin('audit.loginLog.query', { userId: third, event: 'failed' });
    assert.equal(failed.entries[0].reason, 'licence seats exhausted');
    await app.rig.install(app, { seats: 1000 });
  });

  it('answers bad input with the field named, whatever it holds', async () => {
    const long = 'x'.repeat(10 * 1024);
    const base = { account: 'li.lei', password: PASSWORD, deviceType: 'windows', deviceId: 'pc', ip: '10.0.0.5' };
    await rejectsWith(app.call('auth.login', { ...base, account: long }), 'QIAO_VALIDATION', 'account');
    await rejectsWith(app.call('auth.login', { ...base, account: "x' OR '1'='1" }), 'QIAO_VALIDATION', 'account');
    await rejectsWith(app.call('auth.login', { ...base, account: 'a;DROP TABLE users;--' }), 'QIAO_VALIDATION', 'account');
    await rejectsWith(app.call('auth.login', { ...base, password: long }), 'QIAO_VALIDATION', 'password');
    await rejectsWith(app.call('auth.login', { ...base, deviceType: 'toaster' }), 'QIAO_VALIDATION', 'deviceType');
    await rejectsWith(app.call('auth.login', { ...base, deviceId: long }), 'QIAO_VALIDATION', 'deviceId');
    await rejectsWith(app.call('auth.login', { ...base, deviceName: "Robert'); DROP TABLE students;--\u0000" }), 'QIAO_VALIDATION', 'deviceName');
    await rejectsWith(app.call('auth.login', { ...base, ip: 'not-an-ip' }), 'QIAO_VALIDATION', 'ip');
    await rejectsWith(app.call('auth.login', { ...base, ip: long }), 'QIAO_VALIDATION', 'ip');
    await rejectsWith(app.call('auth.login', { ...base, password: undefined }), 'QIAO_VALIDATION', 'password');
    await rejectsWith(app.call('auth.login', { ...base, account: undefined }), 'QIAO_VALIDATION', 'account');
    await rejectsWith(app.call('auth.login', { ...base, smsCode: "1' OR 1=1", challenge: 'c' }), 'QIAO_VALIDATION', 'smsCode');
    await rejectsWith(app.admin('auth.users.list', { search: long }), 'QIAO_VALIDATION', 'search');
    await rejectsWith(app.admin('auth.users.unlock', { userIds: ["1 OR 1=1"] }), 'QIAO_VALIDATION', 'userIds[0]');
    await rejectsWith(app.admin('auth.users.unlock', { userIds: [999_999] }), 'QIAO_NOT_FOUND', 'userIds[0]');
    // Metacharacters in a search are text, not SQL or LIKE wildcards.
    assert.equal((await app.admin('auth.users.list', { list: 'all', search: "%' OR '1'='1" })).total, 0);
    assert.equal((await app.admin('auth.users.list', { list: 'all', search: '_' })).total, 0);
    // The password of a real account still works afterwards: nothing was half-written.
    await app.login('li.lei');
  });
});
