import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { PASSWORD, eventually, listen, rejectsWith, startAuthApp, type AuthApp } from './test-kit.ts';

forEachDatabase('auth devices and sessions', ({ url }) => {
  let app: AuthApp;
  let seen: ReturnType<typeof listen>;
  const login = (account: string, deviceType: string, deviceId: string, deviceName?: string) => app.login(account, PASSWORD, { deviceType, deviceId, deviceName });
  before(async function () {
    this.timeout(30_000);
    app = await startAuthApp(url());
    seen = listen(app, ['auth.session.revoked', 'auth.session.wipe']);
  });
  after(async () => app?.stop());

  it('lets only the allowed device types log in', async () => {
    await app.person('dev.types');
    await app.admin('auth.settings.set', { allowedDeviceTypes: ['windows', 'android', 'web'] });
    await login('dev.types', 'android', 'phone-1');
    await rejectsWith(login('dev.types', 'ios', 'iphone-1'), 'QIAO_AUTH_DEVICE_NOT_ALLOWED', 'deviceType');
    await rejectsWith(login('dev.types', 'linux', 'box-1'), 'QIAO_AUTH_DEVICE_NOT_ALLOWED', 'deviceType');
    await rejectsWith(app.admin('auth.settings.set', { allowedDeviceTypes: [] }), 'QIAO_VALIDATION', 'allowedDeviceTypes');
    await rejectsWith(app.admin('auth.settings.set', { allowedDeviceTypes: ['windows', 'toaster'] }), 'QIAO_VALIDATION', 'allowedDeviceTypes[1]');
    await app.admin('auth.settings.set', { allowedDeviceTypes: ['windows', 'mac', 'linux', 'android', 'ios', 'web'] });
    await login('dev.types', 'ios', 'iphone-1');
    const failed = await app.admin('audit.loginLog.query', { account: 'dev.types', event: 'failed' });
    assert.deepEqual(failed.entries.map((e: { deviceType: string }) => e.deviceType).sort(), ['ios', 'linux']);
  });

  it('keeps one session per device type: a second Windows login ends the first', async () => {
    const id = await app.person('one.per.type');
    const pc1 = await login('one.per.type', 'windows', 'pc-1', 'Office PC');
    const phone = await login('one.per.type', 'android', 'phone-1', 'Mate 60');
    const pc2 = await login('one.per.type', 'windows', 'pc-2', 'Home PC');
    const r = await rejectsWith(app.call('auth.authenticate', { token: pc1.token }), 'QIAO_UNAUTHENTICATED');
    assert.equal(r.reason, 'replaced');
    await app.call('auth.authenticate', { token: phone.token });
    await app.call('auth.authenticate', { token: pc2.token });
    await eventually(async () => assert.ok(seen.some((e) => e.event === 'auth.session.revoked' && e.params.sessionId === pc1.sessionId && e.params.reason === 'replaced')));
    const sessions = (await app.admin('auth.sessions.list', { userId: id })).sessions;
    assert.deepEqual(sessions.map((s: { deviceName: string }) => s.deviceName).sort(), ['Home PC', 'Mate 60']);
    const kicked = await app.admin('audit.loginLog.query', { userId: id, event: 'kicked' });
    assert.equal(kicked.entries[0].deviceName, 'Office PC');
    assert.equal(kicked.entries[0].reason, 'replaced');
  });

  it('allows several devices of a type when the setting is off, but the same device only once', async () => {
    await app.admin('auth.settings.set', { onePerDeviceType: false });
    const id = await app.person('many.pcs');
    const a = await login('many.pcs', 'windows', 'pc-a');
    const b = await login('many.pcs', 'windows', 'pc-b');
    await app.call('auth.authenticate', { token: a.token });
    await app.call('auth.authenticate', { token: b.token });
    const a2 = await login('many.pcs', 'windows', 'pc-a');
    await rejectsWith(app.call('auth.authenticate', { token: a.token }), 'QIAO_UNAUTHENTICATED');
    assert.equal((await app.admin('auth.sessions.list', { userId: id })).sessions.length, 2);
    await app.call('auth.authenticate', { token: a2.token });
    await app.admin('auth.settings.set', { onePerDeviceType: true });
  });

  it('lists a person their own devices and lets an admin force one or all offline', async () => {
    const id = await app.person('kick.me');
    const pc = await login('kick.me', 'mac', 'mac-1', 'MacBook');
    const phone = await login('kick.me', 'ios', 'iphone-1', 'iPhone');
    const web = await login('kick.me', 'web', 'browser-1');
    const mine = await app.call('auth.mySessions', { token: phone.token });
    assert.deepEqual(mine.sessions.map((s: { deviceType: string; current: boolean }) => `${s.deviceType}:${s.current}`).sort(), ['ios:true', 'mac:false', 'web:false']);

    await app.admin('auth.sessions.revoke', { sessionId: pc.sessionId });
    const r = await rejectsWith(app.call('auth.authenticate', { token: pc.token }), 'QIAO_UNAUTHENTICATED');
    assert.equal(r.reason, 'forced-offline');
    await app.call('auth.authenticate', { token: phone.token });

    const all = await app.admin('auth.users.kick', { userId: id });
    assert.deepEqual(all.revoked.sort(), [phone.sessionId, web.sessionId].sort());
    await rejectsWith(app.call('auth.authenticate', { token: web.token }), 'QIAO_UNAUTHENTICATED');
    const ended = await app.admin('auth.sessions.list', { userId: id, includeEnded: true });
    assert.deepEqual(ended.sessions.map((s: { endReason: string }) => s.endReason), ['forced-offline', 'forced-offline', 'forced-offline']);
    await rejectsWith(app.admin('auth.sessions.revoke', { sessionId: 987654 }), 'QIAO_NOT_FOUND', 'sessionId');
    const events = await app.admin('audit.userEvents.query', { userId: id, event: 'sessions.revoked' });
    assert.equal(events.total, 2);
  });

  it('delivers a remote wipe order to the device, and ends the session as wiped when the device logs out', async () => {
    const id = await app.person('lost.phone');
    const phone = await login('lost.phone', 'android', 'lost-1', 'Lost phone');
    const pc = await login('lost.phone', 'windows', 'desk-1');
    await app.admin('auth.sessions.wipe', { sessionId: phone.sessionId });
    await eventually(async () => assert.ok(seen.some((e) => e.event === 'auth.session.wipe' && e.params.sessionId === phone.sessionId)));
    const me = await app.call('auth.authenticate', { token: phone.token });
    assert.equal(me.wipe, true);
    assert.equal((await app.call('auth.authenticate', { token: pc.token })).wipe, false);
    const list = await app.admin('auth.sessions.list', { userId: id });
    assert.deepEqual(list.sessions.map((s: { deviceId: string; remoteWipe: boolean }) => `${s.deviceId}:${s.remoteWipe}`).sort(), ['desk-1:false', 'lost-1:true']);
    await app.call('auth.logout', { token: phone.token });
    const after = await rejectsWith(app.call('auth.authenticate', { token: phone.token }), 'QIAO_UNAUTHENTICATED');
    assert.equal(after.reason, 'wiped');
    assert.equal(after.wipe, true, 'a device that comes back later still hears the order');
    const log = await app.admin('audit.loginLog.query', { userId: id, event: 'logout' });
    assert.equal(log.entries[0].reason, 'wiped');
  });

  it('keeps the order when the session was forced offline before the device heard it', async () => {
    await app.person('stolen.pc');
    const pc = await login('stolen.pc', 'windows', 'stolen-1');
    await app.admin('auth.sessions.wipe', { sessionId: pc.sessionId });
    await app.admin('auth.sessions.revoke', { sessionId: pc.sessionId });
    const r = await rejectsWith(app.call('auth.authenticate', { token: pc.token }), 'QIAO_UNAUTHENTICATED');
    assert.equal(r.wipe, true);
  });
});
