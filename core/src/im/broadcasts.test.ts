import assert from 'node:assert/strict';
import type { Service } from 'moleculer';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Broadcast } from './broadcasts.ts';
import { ADMIN, rejectsWith, startImApp, syncAll } from './test-helpers.ts';

forEachDatabase('im broadcasts and system messages', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  const dept: Record<string, number> = {};
  const person: Record<string, number> = {};

  const org = <T = any>(action: string, params: object) => app.broker.call<T, object>(`org.${action}`, params, { meta: ADMIN });
  const broadcast = (params: object) => app.broker.call<Broadcast, object>('im.broadcasts.send', params, { meta: ADMIN });
  const received = async (userId: number) => (await syncAll(app, userId)).filter((i) => i.kind === 'broadcast').map((i) => (i.data as Broadcast).id);
  const notice = { type: 'system', title: 'Maintenance', body: { text: 'Mail is down tonight', links: [{ title: 'Status page', url: 'https://status.example.com', appendSsoToken: true }] } };

  before(async () => {
    app = await startImApp(url(), ['system', 'eventlog', 'org', 'im']);
    dept.hq = (await org<{ id: number }>('departments.create', { name: 'HQ' })).id;
    dept.it = (await org<{ id: number }>('departments.create', { name: 'IT', parentId: dept.hq })).id;
    dept.shop = (await org<{ id: number }>('departments.create', { name: 'Shop' })).id;
    for (const [account, d] of [['boss', dept.hq], ['geek', dept.it], ['clerk', dept.shop], ['temp', dept.shop]] as const) {
      person[account] = (await org<{ id: number }>('users.create', { account, name: account, departments: [{ departmentId: d }] })).id;
    }
    await org('users.disable', { id: person.temp });
  });
  after(async () => app?.stop());

  it('reaches everyone active, including people offline, who get it on their next sync, with its pop-up time', async () => {
    const b = await broadcast({ audience: { all: true }, popupSeconds: 60, ...notice });
    assert.equal(b.recipientCount, 3);
    assert.deepEqual(b.sender, { kind: 'admin', id: null, name: 'admin' });
    assert.equal(b.popupSeconds, 60);
    for (const p of ['boss', 'geek', 'clerk']) {
      const item = (await syncAll(app, person[p])).find((i) => i.kind === 'broadcast');
      assert.deepEqual(item?.data, b);
    }
    await org('users.enable', { id: person.temp });
    assert.deepEqual(await received(person.temp), []);
    await org('users.disable', { id: person.temp });
  });

  it('reaches departments (with sub-departments when asked) and named people', async () => {
    const top = await broadcast({ audience: { departmentIds: [dept.hq] }, type: 'text', body: { text: 'HQ only' } });
    const tree = await broadcast({ audience: { departmentIds: [dept.hq], includeSubDepartments: true }, type: 'text', body: { text: 'HQ and IT' } });
    const named = await broadcast({ audience: { userIds: [person.clerk], departmentIds: [dept.it] }, type: 'link', body: { title: 'Form', url: 'https://oa.example.com/f' }, popupSeconds: null });
    assert.deepEqual([top.recipientCount, tree.recipientCount, named.recipientCount], [1, 2, 2]);
    assert.deepEqual((await received(person.boss)).slice(-2), [top.id, tree.id]);
    assert.deepEqual((await received(person.geek)).slice(-2), [tree.id, named.id]);
    assert.deepEqual((await received(person.clerk)).slice(-1), [named.id]);
  });

  it('goes only to people online when asked, if presence is known; to everyone in the audience otherwise', async () => {
    const unknown = await broadcast({ audience: { all: true }, onlineOnly: true, type: 'text', body: { text: 'nobody knows who is online' } });
    assert.equal(unknown.recipientCount, 3);
    const presence: Service = app.broker.createService({ name: 'presence', actions: { online: () => ({ userIds: [person.geek] }) } });
    await app.broker.waitForServices('presence', 5000, 10);
    try {
      const online = await broadcast({ audience: { all: true }, onlineOnly: true, type: 'text', body: { text: 'quick, who is here?' } });
      assert.equal(online.recipientCount, 1);
      assert.equal(online.onlineOnly, true);
      assert.deepEqual((await received(person.geek)).at(-1), online.id);
      assert.notEqual((await received(person.boss)).at(-1), online.id);
    } finally {
      await app.broker.destroyService(presence);
    }
  });

  it('lets users with broadcast permission send as themselves, and nobody else', async () => {
    const mine = { senderId: person.clerk, audience: { departmentIds: [dept.shop] }, type: 'text', body: { text: 'shop closes early' } };
    await rejectsWith(app.broker.call('im.broadcasts.sendAsUser', mine), 'QIAO_FORBIDDEN', 'senderId');
    await app.broker.call('im.settings.update', { broadcastSenders: [person.clerk] }, { meta: ADMIN });
    const b = await app.broker.call<Broadcast, object>('im.broadcasts.sendAsUser', mine);
    assert.deepEqual(b.sender, { kind: 'user', id: person.clerk, name: 'clerk' });
    await app.broker.call('im.settings.update', { sensitiveWords: { enabled: true, mode: 'mask', words: ['early'] } }, { meta: ADMIN });
    const masked = await app.broker.call<Broadcast, object>('im.broadcasts.sendAsUser', mine);
    assert.deepEqual(masked.body, { text: 'shop closes *****' });
    await app.broker.call('im.settings.update', { sensitiveWords: { enabled: false } }, { meta: ADMIN });
    const history = await app.broker.call<{ broadcasts: Broadcast[]; total: number }, object>('im.broadcasts.list', { pageSize: 2 }, { meta: ADMIN });
    assert.deepEqual(history.broadcasts, [masked, b]);
    assert.ok(history.total >= 6);
  });

  it('names the sender: a plugin by the name it chose or its own; an admin as chosen; nobody else may choose', async () => {
    const text = { audience: { userIds: [person.geek] }, type: 'text', body: { text: 'from elsewhere' } };
    const send = (params: object, meta: object) => app.broker.call<Broadcast, object>('im.broadcasts.send', { ...text, ...params }, { meta });
    // The plugin host sets meta.plugin on every call a plugin makes; its own meta cannot remove it.
    const chosen = await send({ senderName: ' RTX 通知 ' }, { plugin: 'com.acme.rtx' });
    assert.deepEqual(chosen.sender, { kind: 'plugin', id: null, name: 'RTX 通知' });
    const seen = (await syncAll(app, person.geek)).find((i) => i.kind === 'broadcast' && (i.data as Broadcast).id === chosen.id);
    assert.deepEqual((seen?.data as Broadcast).sender, chosen.sender, 'recipients see who sent it');
    assert.deepEqual((await send({}, { plugin: 'com.acme.rtx' })).sender, { kind: 'plugin', id: null, name: 'com.acme.rtx' }, 'no plugin host to ask: its id');
    const host: Service = app.broker.createService({ name: 'plugins', actions: { get: (ctx) => ({ id: ctx.params.id, name: 'Acme RTX link' }) } });
    await app.broker.waitForServices('plugins', 5000, 10);
    try {
      assert.deepEqual((await send({}, { plugin: 'com.acme.rtx' })).sender, { kind: 'plugin', id: null, name: 'Acme RTX link' });
      // A plugin acting on an admin's request is still the sender of what it sends.
      assert.equal((await send({}, { ...ADMIN, plugin: 'com.acme.rtx' })).sender.kind, 'plugin');
    } finally {
      await app.broker.destroyService(host);
    }
    assert.deepEqual((await send({ senderName: 'IT 部' }, ADMIN)).sender, { kind: 'admin', id: null, name: 'IT 部' });
    // Anyone else reaching the action (an internal caller, a misrouted request) cannot pass it off as someone else's.
    await rejectsWith(send({ senderName: '总经理' }, {}), 'QIAO_FORBIDDEN', 'senderName');
    assert.deepEqual((await send({}, {})).sender, { kind: 'system', id: null, name: 'system' });
    await rejectsWith(send({ senderName: 'x'.repeat(101) }, ADMIN), 'QIAO_VALIDATION', 'senderName');
    await rejectsWith(send({ senderName: '   ' }, { plugin: 'com.acme.rtx' }), 'QIAO_VALIDATION', 'senderName');
  });

  it('refuses an empty or unknown audience, bad bodies and pop-up times, naming the field', async () => {
    await rejectsWith(broadcast({ audience: {}, ...notice }), 'QIAO_VALIDATION', 'audience');
    await rejectsWith(broadcast({ audience: { userIds: [person.boss, 999_999] }, ...notice }), 'QIAO_NOT_FOUND', 'audience.userIds[1]');
    await rejectsWith(broadcast({ audience: { departmentIds: [999_999] }, ...notice }), 'QIAO_NOT_FOUND', 'audience.departmentIds[0]');
    await rejectsWith(broadcast({ audience: { all: true }, ...notice, popupSeconds: 5 }), 'QIAO_VALIDATION', 'popupSeconds');
    await rejectsWith(broadcast({ audience: { all: true }, type: 'system', body: { text: 'x', links: [{ title: 'x', url: 'file:///etc/passwd' }] } }), 'QIAO_VALIDATION', 'body.links[0].url');
    await rejectsWith(broadcast({ audience: { all: true }, type: 'vote', body: {} }), 'QIAO_VALIDATION', 'type');
    await rejectsWith(broadcast({ audience: { all: true, everyone: true }, ...notice }), 'QIAO_VALIDATION');
  });
});
