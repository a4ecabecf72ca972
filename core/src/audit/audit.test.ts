import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { select } from '../db/sql.ts';
import { PASSWORD, rejectsWith, startAuthApp, type AuthApp } from '../auth/test-kit.ts';
import { redact } from './redact.ts';

const T0 = new Date('2031-03-01T08:00:00Z');
const H = 3_600_000;

describe('audit redaction', () => {
  it('hides credentials at any depth, and bounds big values', () => {
    const out = redact({
      account: 'zhang.san',
      password: 'Secret#1',
      newPassword: 'x',
      externalAuth: { url: 'http://sso', token: 'T0KEN', encodingAesKey: 'k'.repeat(43) },
      list: [{ smsCode: '123456' }, { apiKey: 'abc' }],
      key: 'org.display',
      data: 'A'.repeat(5000),
      many: Array.from({ length: 80 }, (_, i) => i),
      empty: { password: '' },
    }) as Record<string, any>;
    assert.equal(out.account, 'zhang.san');
    assert.equal(out.password, '[redacted]');
    assert.equal(out.newPassword, '[redacted]');
    assert.deepEqual(out.externalAuth, { url: 'http://sso', token: '[redacted]', encodingAesKey: '[redacted]' });
    assert.deepEqual(out.list, [{ smsCode: '[redacted]' }, { apiKey: '[redacted]' }]);
    assert.equal(out.key, 'org.display', 'a setting name is not a secret');
    assert.match(out.data, /^A{100}… \[5000 characters\]$/);
    assert.equal(out.many.length, 51);
    assert.equal(out.empty.password, '');
  });
});

forEachDatabase('audit trails', ({ url }) => {
  let app: AuthApp;
  let a: number;
  let b: number;
  before(async function () {
    this.timeout(30_000);
    app = await startAuthApp(url());
    a = await app.person('audit.a', { name: '审计甲' });
    b = await app.person('audit.b');
    // A day of activity, at known times.
    app.travel(T0);
    const s1 = await app.login('audit.a', PASSWORD, { deviceName: '=HYPERLINK("http://evil","click")', ip: '10.1.1.1' });
    app.travel(new Date(T0.getTime() + 1 * H));
    await rejectsWith(app.login('audit.a', 'Wrong#pass1', { ip: '10.1.1.2' }), 'QIAO_AUTH_BAD_CREDENTIALS');
    app.travel(new Date(T0.getTime() + 2 * H));
    await app.login('audit.b', PASSWORD, { ip: '10.2.2.2', deviceName: 'B, "the" laptop' });
    app.travel(new Date(T0.getTime() + 3 * H));
    await app.call('auth.logout', { token: s1.token, ip: '10.1.1.3' });
    app.travel(new Date(T0.getTime() + 4 * H));
    await app.login('audit.a', PASSWORD, { deviceType: 'ios', deviceId: 'iphone', ip: '10.1.1.4' });
    app.travel(null);
  });
  after(async () => app?.stop());

  it('answers the login log by person and time range, newest first, paged', async () => {
    const all = await app.admin('audit.loginLog.query', { userId: a });
    assert.deepEqual(all.entries.map((e: { event: string }) => e.event), ['login', 'logout', 'failed', 'login']);
    assert.equal(all.entries[1].ip, '10.1.1.3');
    assert.equal(all.entries[3].at, T0.toISOString());
    const window = await app.admin('audit.loginLog.query', { from: new Date(T0.getTime() + 1 * H).toISOString(), to: new Date(T0.getTime() + 3 * H).toISOString() });
    assert.deepEqual(window.entries.map((e: { account: string; event: string }) => `${e.account} ${e.event}`), ['audit.b login', 'audit.a failed']);
    const p2 = await app.admin('audit.loginLog.query', { userId: a, page: 2, pageSize: 3 });
    assert.equal(p2.total, 4);
    assert.deepEqual(p2.entries.map((e: { event: string }) => e.event), ['login']);
    const failed = await app.admin('audit.loginLog.query', { event: 'failed', account: 'audit.a' });
    assert.equal(failed.entries[0].reason, 'wrong password');
    assert.equal((await app.admin('audit.loginLog.query', { search: '10.2.2' })).total, 1);
  });

  it('exports the login log as CSV that spreadsheets open safely', async () => {
    const file = await app.admin('audit.loginLog.export', { userId: a, format: 'csv' });
    assert.equal(file.rows, 4);
    assert.equal(file.truncated, false);
    assert.equal(file.contentType, 'text/csv; charset=utf-8');
    assert.match(file.filename, /^login-log-.*\.csv$/);
    const text = Buffer.from(file.data, 'base64').toString('utf8');
    assert.ok(text.startsWith('\ufeff'), 'a BOM so Excel reads UTF-8');
    const lines = text.slice(1).trimEnd().split('\r\n');
    assert.equal(lines[0], 'time,account,userId,event,reason,ip,deviceType,deviceId,deviceName,sessionId');
    assert.equal(lines.length, 5);
    // The formula a device name smuggled in is neutralised, and quoted as CSV requires.
    assert.ok(lines[4].includes(`"'=HYPERLINK(""http://evil"",""click"")"`), lines[4]);
    const other = Buffer.from((await app.admin('audit.loginLog.export', { userId: b })).data, 'base64').toString('utf8');
    assert.ok(other.includes('"B, ""the"" laptop"'));
  });

  it('exports JSON lines, and says when the limit cut the export short', async () => {
    const file = await app.admin('audit.loginLog.export', { format: 'jsonl', limit: 2 });
    assert.equal(file.rows, 2);
    assert.equal(file.truncated, true);
    const rows = Buffer.from(file.data, 'base64').toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((r) => r.event), ['login', 'logout']);
    assert.equal(rows[0].deviceType, 'ios');
    const everything = await app.admin('audit.loginLog.export', { format: 'jsonl' });
    assert.equal(everything.rows, (await app.admin('audit.loginLog.query', {})).total);
  });

  it('keeps the user event log queryable and exportable', async () => {
    await app.admin('auth.users.requirePasswordChange', { userIds: [b] });
    const q = await app.admin('audit.userEvents.query', { userId: b, event: 'password.changeRequired' });
    assert.equal(q.total, 1);
    assert.equal(q.entries[0].actor, 'admin:admin');
    const file = await app.admin('audit.userEvents.export', { account: 'audit.b', format: 'jsonl' });
    const events = Buffer.from(file.data, 'base64').toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l).event);
    assert.ok(events.includes('password.changeRequired'));
    assert.ok(events.includes('authorised'));
  });

  it('keeps the admin operation log append-only: no action changes it, and the database refuses edits', async () => {
    await app.call('audit.operationLog.append', { adminId: 1, adminAccount: 'admin', action: 'auth.users.setPassword', params: { userId: a, password: 'Visible#1' }, outcome: 'ok', status: 200, ip: '127.0.0.1' });
    const q = await app.admin('audit.operationLog.query', { account: 'admin' });
    assert.equal(q.total, 1);
    assert.deepEqual(q.entries[0].params, { userId: a, password: '[redacted]' });
    const stored = JSON.stringify(await select(app.db, 'SELECT * FROM admin_operation_log'));
    assert.ok(!stored.includes('Visible#1'));

    const auditActions = app.broker.registry.getActionList({}).map((x: { name: string }) => x.name).filter((n: string) => n.startsWith('audit.'));
    assert.deepEqual(auditActions.sort(), [
      'audit.loginLog.export',
      'audit.loginLog.query',
      'audit.operationLog.append',
      'audit.operationLog.export',
      'audit.operationLog.query',
      'audit.userEvents.export',
      'audit.userEvents.query',
    ]);
    // Sequelize wraps SQLite's trigger abort in a generic error; the database's own message is underneath.
    await assert.rejects(app.db.sequelize.query("UPDATE admin_operation_log SET action = 'nothing happened'"), (err: Error & { parent?: Error }) => {
      assert.match((err.parent ?? err).message, /admin_operation_log is append-only/);
      return true;
    });
    assert.equal((await app.admin('audit.operationLog.query', {})).entries[0].action, 'auth.users.setPassword');
  });

  it('answers bad filters with the field named', async () => {
    await rejectsWith(app.admin('audit.loginLog.query', { from: 'yesterday-ish' }), 'QIAO_VALIDATION', 'from');
    await rejectsWith(app.admin('audit.loginLog.query', { account: 'x'.repeat(10_240) }), 'QIAO_VALIDATION', 'account');
    await rejectsWith(app.admin('audit.loginLog.query', { event: "login' OR '1'='1" }), 'QIAO_VALIDATION', 'event');
    await rejectsWith(app.admin('audit.loginLog.query', { pageSize: 10_000 }), 'QIAO_VALIDATION', 'pageSize');
    await rejectsWith(app.admin('audit.loginLog.export', { format: 'xlsx' }), 'QIAO_VALIDATION', 'format');
    await rejectsWith(app.admin('audit.userEvents.query', { userId: "1; DELETE FROM user_event_log" }), 'QIAO_VALIDATION', 'userId');
    assert.equal((await app.admin('audit.loginLog.query', { account: "audit.a' OR '1'='1" })).total, 0);
    assert.equal((await app.admin('audit.operationLog.query', { search: '%' })).total, 0);
  });
});
