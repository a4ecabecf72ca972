import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { PASSWORD, fixtureSms, lastCode, rejectsWith, startAuthApp, type AuthApp } from './test-kit.ts';

const MOBILE = '13812345678';

forEachDatabase('auth two-step login by SMS', ({ url }) => {
  let app: AuthApp;
  const sent: Array<{ mobile: string; text: string }> = [];
  const sms = { fail: false };
  const device = { deviceType: 'android', deviceId: 'phone-1', ip: '10.0.0.9' };
  before(async function () {
    this.timeout(30_000);
    app = await startAuthApp(url(), { fixtures: [fixtureSms(sent, sms)] });
    await app.admin('auth.settings.set', { smsTwoFactor: true, smsCodeTtlSeconds: 300 });
  });
  after(async () => app?.stop());

  it('asks for the code sent to the mobile, and logs in with it', async () => {
    const id = await app.person('sms.user', { mobile: MOBILE });
    const step = await app.login('sms.user', PASSWORD, device);
    assert.equal(step.needSmsCode, true);
    assert.equal(step.mobile, '138****5678');
    assert.equal(step.token, undefined);
    const code = lastCode(sent, MOBILE);
    const done = await app.call('auth.login', { challenge: step.challenge, smsCode: code, ...device });
    assert.equal(done.userId, id);
    await app.call('auth.authenticate', { token: done.token });
  });

  it('uses each code once', async () => {
    const step = await app.login('sms.user', PASSWORD, device);
    const code = lastCode(sent, MOBILE);
    await app.call('auth.login', { challenge: step.challenge, smsCode: code, ...device });
    await rejectsWith(app.call('auth.login', { challenge: step.challenge, smsCode: code, ...device }), 'QIAO_AUTH_SMS_CODE_INVALID', 'challenge');
  });

  it('refuses a wrong code, and spends the challenge after 5 of them', async () => {
    const step = await app.login('sms.user', PASSWORD, device);
    const code = lastCode(sent, MOBILE);
    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 0; i < 5; i++) await rejectsWith(app.call('auth.login', { challenge: step.challenge, smsCode: wrong, ...device }), 'QIAO_AUTH_SMS_CODE_INVALID', 'smsCode');
    await rejectsWith(app.call('auth.login', { challenge: step.challenge, smsCode: code, ...device }), 'QIAO_AUTH_SMS_CODE_INVALID', 'challenge');
  });

  it('lets a code expire', async () => {
    const step = await app.login('sms.user', PASSWORD, device);
    const code = lastCode(sent, MOBILE);
    app.travel(new Date(Date.now() + 301_000));
    try {
      await rejectsWith(app.call('auth.login', { challenge: step.challenge, smsCode: code, ...device }), 'QIAO_AUTH_SMS_CODE_INVALID', 'challenge');
    } finally {
      app.travel(null);
    }
  });

  it('binds the code to the device and account that asked for it', async () => {
    const step = await app.login('sms.user', PASSWORD, device);
    const code = lastCode(sent, MOBILE);
    await rejectsWith(app.call('auth.login', { challenge: step.challenge, smsCode: code, ...device, deviceId: 'attacker' }), 'QIAO_AUTH_SMS_CODE_INVALID', 'challenge');
    await app.person('someone.else', { mobile: '13900000000' });
    await rejectsWith(app.call('auth.login', { account: 'someone.else', challenge: step.challenge, smsCode: code, ...device }), 'QIAO_AUTH_SMS_CODE_INVALID', 'challenge');
    await rejectsWith(app.call('auth.login', { challenge: 'forged-challenge', smsCode: code, ...device }), 'QIAO_AUTH_SMS_CODE_INVALID', 'challenge');
    await rejectsWith(app.call('auth.login', { challenge: step.challenge, ...device }), 'QIAO_VALIDATION', 'smsCode');
  });

  it('sends no code for a wrong password', async () => {
    const before = sent.length;
    await rejectsWith(app.login('sms.user', 'Wrong#pass1', device), 'QIAO_AUTH_BAD_CREDENTIALS');
    assert.equal(sent.length, before);
    await app.admin('auth.users.unlock', { userIds: [(await app.admin('org.users.byAccount', { account: 'sms.user' })).id] });
  });

  it('limits how many codes can be waiting', async () => {
    const id = await app.person('sms.spam', { mobile: '13700000001' });
    for (let i = 0; i < 3; i++) await app.login('sms.spam', PASSWORD, device);
    await rejectsWith(app.login('sms.spam', PASSWORD, device), 'QIAO_RATE_LIMITED', 'account');
    assert.equal(sent.filter((s) => s.mobile === '13700000001').length, 3);
    void id;
  });

  it('says why when there is no mobile number or the SMS gateway fails', async () => {
    await app.person('no.mobile');
    await rejectsWith(app.login('no.mobile', PASSWORD, device), 'QIAO_AUTH_SMS_UNAVAILABLE', 'account');
    sms.fail = true;
    try {
      await rejectsWith(app.login('sms.user', PASSWORD, device), 'QIAO_AUTH_SMS_UNAVAILABLE');
    } finally {
      sms.fail = false;
    }
    await app.admin('auth.settings.set', { smsTwoFactor: false });
    assert.ok((await app.login('no.mobile', PASSWORD, device)).token);
    await app.admin('auth.settings.set', { smsTwoFactor: true });
  });

  it('needs the SMS gateway to be there at all', async () => {
    await app.broker.destroyService(app.broker.getLocalService('sms')!);
    await rejectsWith(app.login('sms.user', PASSWORD, device), 'QIAO_AUTH_SMS_UNAVAILABLE');
  });
});
