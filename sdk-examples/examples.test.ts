import assert from 'node:assert/strict';
import { chatWithApp, startOpenApi, type OpenApiApp } from '../core/src/openapi/test-kit.ts';
import { forEachDatabase } from '../test/support/databases.ts';
import type { AppCredentials } from './client/src/index.ts';
import { syncIncremental, syncReplaceAll, type HrSnapshot } from './hr-sync/src/hr-sync.ts';
import { MailNotifier } from './mail-notifier/src/mail-notifier.ts';
import { startOaTodo } from './oa-todo/src/oa-todo.ts';
import { PasswordStore, startPasswordAuth } from './password-auth/src/password-auth.ts';
import { memoryProvider, startSmsGateway } from './sms-gateway/src/sms-gateway.ts';
import { startSsoWebApp } from './sso-webapp/src/sso-webapp.ts';

/** Every example, run against a real core (org, auth, im, apps and the gateway) on each storage dialect. */
forEachDatabase('sdk-examples against a running Qiao', ({ url }) => {
  let app: OpenApiApp;
  const creds = async (appId: string): Promise<AppCredentials & { callbackToken: string }> => {
    const info = await app.appInfo(appId);
    return { baseUrl: app.base, buin: app.buin, appId: info.appId, encodingAesKey: info.encodingAesKey, callbackToken: info.callbackToken ?? '' };
  };
  const login = (account: string, password: string) =>
    fetch(`${app.base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ account, password, deviceType: 'web', deviceId: `web-${account}` }) });
  const broadcasts = () => app.admin<{ broadcasts: Array<{ type: string; title: string; body: any; audience: any }> }>('im.broadcasts.list');

  before(async function () {
    this.timeout(60_000);
    app = await startOpenApi(url());
  });
  after(async () => app?.stop());

  it('hr-sync: syncs an org chart incrementally, then by a full replace', async function () {
    this.timeout(60_000);
    const org = await creds('sysOrgAssistant');
    const hr: HrSnapshot = {
      departments: [
        { id: 10, name: '集团', parentId: 0, sortId: 1 },
        { id: 11, name: '人力', parentId: 10, sortId: 1, alias: 'hr' },
        { id: 12, name: '财务', parentId: 10, sortId: 2 },
      ],
      people: [
        { userId: 'hr.li', name: '李人力', gender: 1, email: 'li@example.com', dept: [11] },
        { userId: 'fin.wang', name: '王财务', gender: 0, mobile: '13800000012', dept: [12] },
      ],
    };
    assert.deepEqual(await syncIncremental(org, hr), { departments: { created: 3, updated: 0, deleted: 0 }, people: { created: 2, updated: 0, deleted: 0 } });
    assert.deepEqual(await syncIncremental(org, hr), { departments: { created: 0, updated: 0, deleted: 0 }, people: { created: 0, updated: 0, deleted: 0 } }, 'a second run changes nothing');
    hr.departments[2].name = '财务部';
    hr.departments.push({ id: 13, name: '法务', parentId: 10, sortId: 3 });
    hr.people[1].dept = [13];
    hr.people.push({ userId: 'law.zhao', name: '赵法务', gender: 0, dept: [13] });
    hr.people.splice(0, 1);
    hr.departments.splice(1, 1);
    assert.deepEqual(await syncIncremental(org, hr), { departments: { created: 1, updated: 1, deleted: 1 }, people: { created: 1, updated: 1, deleted: 1 } });
    const depts = (await app.admin<{ departments: Array<{ id: number; name: string }> }>('org.departments.list')).departments.map((d) => `${d.id}:${d.name}`).sort();
    assert.deepEqual(depts, ['10:集团', '12:财务部', '13:法务']);
    const full = await syncReplaceAll(org, { departments: [{ id: 10, name: '集团', parentId: 0 }, { id: 20, name: '运营', parentId: 10 }], people: [{ userId: 'ops.sun', name: '孙运营', gender: 1, dept: [20] }] }, { pollMs: 50 });
    assert.equal(full.result, 3, full.desc);
    const people = await app.admin<{ users: Array<{ account: string }> }>('org.users.list', { pageSize: 500 });
    assert.deepEqual(people.users.map((u) => u.account), ['ops.sun']);
  });

  it('oa-todo: pushes a link message that signs the assignee in through $TOKEN$', async () => {
    const oaApp = await app.admin<{ appId: string }>('apps.create', { name: 'OA 待办' });
    const oa = await startOaTodo(await creds(oaApp.appId));
    try {
      await app.admin('apps.update', { appId: oaApp.appId, homeUrl: `${oa.url}/sso?token=$TOKEN$` });
      await oa.assign('ops.sun', '审批报销单');
      const sun = await app.admin<{ id: number }>('org.users.byAccount', { account: 'ops.sun' });
      // The to-do arrives in the person's chat with the OA app.
      const link = (await chatWithApp(app, oaApp.appId, sun.id)).at(-1)!;
      assert.equal(link.type, 'link');
      assert.deepEqual(link.body, { title: '待办：审批报销单', url: `${oa.url}/todos/1`, appendSsoToken: true });
      // What the client does when the person opens the link or the app: fetch an SSO token and append it.
      const t1 = await app.call<{ token: string }>('apps.sso.issue', { userId: sun.id });
      const page = await fetch(`${link.body.url}?token=${t1.token}`);
      assert.equal(page.status, 200);
      assert.equal(((await page.json()) as { todo: { title: string } }).todo.title, '审批报销单');
      const home = await app.call<{ url: string }>('apps.sso.issue', { userId: sun.id, appId: oaApp.appId });
      const list = (await (await fetch(home.url)).json()) as { user: string; todos: unknown[] };
      assert.equal(list.user, 'ops.sun');
      assert.equal(list.todos.length, 1);
      assert.equal((await fetch(`${link.body.url}?token=forged`)).status, 401);
    } finally {
      await oa.close();
    }
  });

  it('sso-webapp: verifies $TOKEN$ with identify and keeps its own session', async () => {
    const web = await startSsoWebApp(app.base);
    try {
      const sun = await app.admin<{ id: number }>('org.users.byAccount', { account: 'ops.sun' });
      const { token } = await app.call<{ token: string }>('apps.sso.issue', { userId: sun.id });
      const res = await fetch(`${web.url}/login?token=${token}`, { redirect: 'manual' });
      assert.equal(res.status, 302);
      const cookie = res.headers.get('set-cookie')!.split(';')[0];
      const me = (await (await fetch(`${web.url}/`, { headers: { cookie } })).json()) as { account: string; gid: number };
      assert.deepEqual(me, { hello: '孙运营', account: 'ops.sun', gid: sun.id });
      assert.equal((await fetch(`${web.url}/login?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`)).status, 401);
      assert.equal((await fetch(`${web.url}/`)).status, 401);
    } finally {
      await web.close();
    }
  });

  it('sms-gateway: receives SMS sent from the client, answers per number, delivers replies', async () => {
    const provider = memoryProvider();
    // The admin sets the callback token in the console; the gateway is configured with the same one.
    await app.admin('apps.update', { appId: 'sysSmsAssistant', callbackToken: 'smsToken42' });
    const gateway = await startSmsGateway(await creds('sysSmsAssistant'), provider);
    try {
      await app.admin('apps.update', { appId: 'sysSmsAssistant', callbackUrl: gateway.url });
      const sun = await app.admin<{ id: number }>('org.users.byAccount', { account: 'ops.sun' });
      const r = await app.call('apps.sms.send', { userId: sun.id, mobiles: ['13900000001', 'not-a-number'], content: '明早九点开会' });
      assert.deepEqual(r, { success: ['13900000001'], fail: ['not-a-number'] });
      assert.deepEqual(provider.sent, [{ mobile: '13900000001', text: '明早九点开会【ops.sun】' }]);
      await gateway.deliverReply('13900000001', '收到', 'ops.sun');
      const sms = (await broadcasts()).broadcasts[0];
      assert.equal(sms.type, 'text');
      assert.equal(sms.body.text, '13900000001: 收到');
    } finally {
      await gateway.close();
    }
  });

  it('password-auth: a third-party person logs in with the password server\'s password', async () => {
    const org = await creds('sysOrgAssistant');
    const store = new PasswordStore();
    store.set('ops.sun', 'Corp#Pass2024');
    const server = await startPasswordAuth({ appId: org.appId, encodingAesKey: org.encodingAesKey, callbackToken: 'authToken7' }, store);
    try {
      await app.admin('auth.settings.set', { externalAuth: { url: server.url, token: 'authToken7', appId: org.appId, encodingAesKey: org.encodingAesKey, timeoutMs: 5000 } });
      const { YouduClient } = await import('./client/src/index.ts');
      await new YouduClient(org).setAuth('ops.sun', 2);
      const sun = await app.admin<{ id: number }>('org.users.byAccount', { account: 'ops.sun' });
      await app.admin('auth.users.authorise', { userIds: [sun.id] }).catch(() => undefined);
      const wrong = await login('ops.sun', 'Wrong#Pass1');
      assert.equal(wrong.status, 401, await wrong.text());
      const ok = await login('ops.sun', 'Corp#Pass2024');
      assert.equal(ok.status, 200, await ok.clone().text());
      assert.ok(((await ok.json()) as { token?: string }).token);
      assert.deepEqual(server.checks, ['ops.sun:wrong', 'ops.sun:ok']);
    } finally {
      await server.close();
    }
  });

  it('mail-notifier: new-mail and unread notices by account and by e-mail address', async () => {
    const mail = new MailNotifier(await creds('sysExmailAssistant'));
    await app.admin('org.users.update', { id: (await app.admin<{ id: number }>('org.users.byAccount', { account: 'ops.sun' })).id, email: 'sun@example.com' });
    await mail.newMail({ to: { email: 'SUN@example.com' }, from: { email: 'boss@example.com' }, subject: '季度报告', link: 'https://mail.example.com/m/1' });
    await mail.unread('ops.sun', 7);
    const [unread, fresh] = (await broadcasts()).broadcasts;
    assert.equal(fresh.type, 'system');
    assert.deepEqual(fresh.body, { title: '新邮件：季度报告', text: '发件人：boss@example.com', links: [{ title: '打开邮件', url: 'https://mail.example.com/m/1' }] });
    assert.equal(unread.body.text, '您有 7 封未读邮件');
    const oa = await app.admin<{ appId: string }>('apps.create', { name: 'not mail' });
    const other = new MailNotifier(await creds(oa.appId));
    await assert.rejects(other.unread('ops.sun', 1), /errcode 100005/);
  });
});
