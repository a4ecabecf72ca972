import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { passwordProblem } from './password.ts';
import { PASSWORD, rejectsWith, startAuthApp, type AuthApp } from './test-kit.ts';

const DAY = 86_400_000;

describe('password policy', () => {
  it('asks for 8–16 characters with upper, lower, digit and special when strong', () => {
    assert.equal(passwordProblem('Abcdef1!', true), null);
    assert.equal(passwordProblem('密码Abc1234', true), null, 'a CJK character counts as special');
    assert.match(passwordProblem('Abcde1!', true)!, /8–16 characters/);
    assert.match(passwordProblem('Abcdefghijklmn1!x', true)!, /8–16 characters/);
    assert.match(passwordProblem('abcdefg1!', true)!, /upper-case/);
    assert.match(passwordProblem('ABCDEFG1!', true)!, /lower-case/);
    assert.match(passwordProblem('Abcdefgh!', true)!, /digit/);
    assert.match(passwordProblem('Abcdefgh1', true)!, /special/);
    assert.match(passwordProblem('abcdefgh', true)!, /upper-case letter, a digit, a special character/);
    assert.match(passwordProblem('Abc\u0000def1!', true)!, /control/);
  });
  it('asks only for a sensible length when not strong', () => {
    assert.equal(passwordProblem('simple', false), null);
    assert.match(passwordProblem('short', false)!, /at least 6/);
    assert.match(passwordProblem('x'.repeat(129), false)!, /at most 128/);
  });
});

forEachDatabase('auth passwords', ({ url }) => {
  let app: AuthApp;
  before(async function () {
    this.timeout(30_000);
    app = await startAuthApp(url());
  });
  after(async () => app?.stop());

  it('applies the strong policy to passwords admins set, and can be switched off', async () => {
    const id = await app.person('policy.p', {}, null);
    await rejectsWith(app.admin('auth.users.setPassword', { userId: id, password: 'password' }), 'QIAO_AUTH_PASSWORD_POLICY', 'password');
    await app.admin('auth.settings.set', { strongPassword: false });
    await app.admin('auth.users.setPassword', { userId: id, password: 'password', mustChange: false });
    await app.login('policy.p', 'password');
    await app.admin('auth.settings.set', { strongPassword: true });
    await rejectsWith(app.admin('auth.users.setPassword', { userId: 987654, password: PASSWORD }), 'QIAO_NOT_FOUND', 'userId');
  });

  it('a person without a password cannot log in', async () => {
    await app.person('no.password', {}, null);
    await rejectsWith(app.login('no.password', PASSWORD), 'QIAO_AUTH_BAD_CREDENTIALS');
  });

  it('resets a password to a generated one that must be changed at next login, signing the person out', async () => {
    const id = await app.person('reset.me');
    const old = await app.login('reset.me');
    const { password } = await app.admin('auth.users.setPassword', { userId: id });
    assert.match(password, /^.{16}$/);
    await rejectsWith(app.call('auth.authenticate', { token: old.token }), 'QIAO_UNAUTHENTICATED');
    await rejectsWith(app.login('reset.me'), 'QIAO_AUTH_BAD_CREDENTIALS');
    const s = await app.login('reset.me', password);
    assert.equal(s.mustChangePassword, true);
    assert.equal((await app.call('auth.authenticate', { token: s.token })).mustChangePassword, true);

    await rejectsWith(app.call('auth.changePassword', { token: s.token, oldPassword: 'Wrong#pass1', newPassword: 'Fresh#2025a' }), 'QIAO_AUTH_BAD_CREDENTIALS', 'oldPassword');
    await rejectsWith(app.call('auth.changePassword', { token: s.token, oldPassword: password, newPassword: 'weak' }), 'QIAO_AUTH_PASSWORD_POLICY', 'newPassword');
    await rejectsWith(app.call('auth.changePassword', { token: s.token, oldPassword: password, newPassword: password }), 'QIAO_AUTH_PASSWORD_POLICY', 'newPassword');
    await rejectsWith(app.call('auth.changePassword', { token: s.token, oldPassword: password, newPassword: 'x'.repeat(10_240) }), 'QIAO_VALIDATION', 'newPassword');

    const other = await app.login('reset.me', password, { deviceType: 'android', deviceId: 'reset-phone' });
    await app.call('auth.changePassword', { token: s.token, oldPassword: password, newPassword: 'Fresh#2025a' });
    const me = await app.call('auth.authenticate', { token: s.token });
    assert.equal(me.mustChangePassword, false);
    const r = await rejectsWith(app.call('auth.authenticate', { token: other.token }), 'QIAO_UNAUTHENTICATED');
    assert.equal(r.reason, 'password-changed');
    await rejectsWith(app.login('reset.me', password), 'QIAO_AUTH_BAD_CREDENTIALS');
    assert.equal((await app.login('reset.me', 'Fresh#2025a')).mustChangePassword, false);
    const events = (await app.admin('audit.userEvents.query', { userId: id })).entries.map((e: { event: string; actor: string }) => `${e.event}/${e.actor}`);
    assert.ok(events.includes('password.changed/user'));
    assert.ok(events.includes('password.reset/admin:admin'));
  });

  it('forces a change once the password is older than the expiry', async () => {
    await app.admin('auth.settings.set', { passwordExpiryDays: 90 });
    const id = await app.person('expiring');
    assert.equal((await app.login('expiring')).mustChangePassword, false);
    app.travel(new Date(Date.now() + 91 * DAY));
    try {
      const s = await app.login('expiring');
      assert.equal(s.mustChangePassword, true);
      assert.equal((await app.admin('auth.users.get', { userId: id })).passwordExpired, true);
      await app.call('auth.changePassword', { token: s.token, oldPassword: PASSWORD, newPassword: 'Renewed#2025' });
      assert.equal((await app.login('expiring', 'Renewed#2025')).mustChangePassword, false);
    } finally {
      app.travel(null);
      await app.admin('auth.settings.set', { passwordExpiryDays: 0 });
    }
  });

  it('lets an admin require a change at next login', async () => {
    const id = await app.person('must.change');
    await app.admin('auth.users.requirePasswordChange', { userIds: [id] });
    assert.equal((await app.login('must.change')).mustChangePassword, true);
    await app.admin('auth.users.requirePasswordChange', { userIds: [id], required: false });
    assert.equal((await app.login('must.change')).mustChangePassword, false);
  });

  it('counts wrong old passwords on a change towards the lockout', async () => {
    await app.admin('auth.settings.set', { lockoutThreshold: 2 });
    await app.person('guess.old');
    const s = await app.login('guess.old');
    await rejectsWith(app.call('auth.changePassword', { token: s.token, oldPassword: 'Guess#1aaa', newPassword: 'Fresh#2025a' }), 'QIAO_AUTH_BAD_CREDENTIALS', 'oldPassword');
    await rejectsWith(app.call('auth.changePassword', { token: s.token, oldPassword: 'Guess#2aaa', newPassword: 'Fresh#2025a' }), 'QIAO_AUTH_LOCKED');
    await rejectsWith(app.call('auth.authenticate', { token: s.token }), 'QIAO_UNAUTHENTICATED');
    await app.admin('auth.settings.set', { lockoutThreshold: 5 });
  });
});
