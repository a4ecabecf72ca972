import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import { queryRows } from '../db/sql.ts';
import { ADMIN, eventually, rejectsWith, startImApp, syncAll } from './test-helpers.ts';

forEachDatabase('im department groups', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  const dept: Record<string, number> = {};
  const person: Record<string, number> = {};

  const org = <T = any>(action: string, params: object) => app.broker.call<T, object>(`org.${action}`, params, { meta: ADMIN });
  const im = <T = any>(action: string, params: object, meta?: object) => app.broker.call<T, object>(`im.${action}`, params, meta ? { meta } : undefined);
  const hire = async (account: string, ...departments: number[]) =>
    (person[account] = (await org<{ id: number }>('users.create', { account, name: account, departments: departments.map((departmentId) => ({ departmentId })) })).id);
  const membersOf = async (id: string) =>
    (await queryRows<{ user_id: number }>(app.db, 'SELECT user_id FROM conversation_members WHERE conversation_id = ? ORDER BY user_id', [id])).map((r) => Number(r.user_id));
  const sorted = (...ids: number[]) => [...ids].sort((a, b) => a - b);

  before(async () => {
    app = await startImApp(url(), ['system', 'eventlog', 'org', 'im']);
    dept.sales = (await org<{ id: number }>('departments.create', { name: 'Sales' })).id;
    dept.east = (await org<{ id: number }>('departments.create', { name: 'Sales East', parentId: dept.sales })).id;
    dept.eng = (await org<{ id: number }>('departments.create', { name: 'Engineering' })).id;
    await hire('ann', dept.sales);
    await hire('ben', dept.east);
    await hire('cat', dept.eng);
  });
  after(async () => app?.stop());

  let sales: Conversation, salesAll: Conversation, eng: Conversation;

  it('are created by admins with the department’s people, with or without sub-departments', async () => {
    sales = await im<Conversation>('groups.createForDepartment', { departmentId: dept.sales }, ADMIN);
    salesAll = await im<Conversation>('groups.createForDepartment', { departmentId: dept.sales, includeSubDepartments: true, name: 'All of sales' }, ADMIN);
    eng = await im<Conversation>('groups.createForDepartment', { departmentId: dept.eng }, ADMIN);
    assert.equal(sales.type, 'department');
    assert.equal(sales.name, 'Sales');
    assert.equal(sales.departmentId, dept.sales);
    assert.equal(salesAll.includeSubDepartments, true);
    assert.deepEqual(sales.members.map((m) => m.userId), [person.ann]);
    assert.deepEqual(salesAll.members.map((m) => m.userId), sorted(person.ann, person.ben));
    assert.deepEqual(sales.permissions, { invite: 'nobody', leave: false, rename: 'admins', announce: 'admins', upload: 'members' });
    await rejectsWith(im('groups.createForDepartment', { departmentId: dept.sales }, ADMIN), 'QIAO_CONFLICT', 'departmentId');
    await rejectsWith(im('groups.createForDepartment', { departmentId: 999_999 }, ADMIN), 'QIAO_NOT_FOUND', 'departmentId');
  });

  it('takes in a new hire by itself, from the durable org log', async () => {
    await hire('dan', dept.east);
    await eventually('dan in the department group', async () => (await membersOf(salesAll.id)).includes(person.dan));
    assert.deepEqual(await membersOf(sales.id), [person.ann]);
    const dans = (await syncAll(app, person.dan)).filter((i) => i.kind === 'conversation');
    assert.deepEqual(dans.map((i) => [i.conversationId, (i.data as { change: string; by: unknown }).change, (i.data as { by: unknown }).by]), [
      [salesAll.id, 'membersAdded', { directory: true }],
    ]);
    // The new hire's own record reaches their devices as an org entry.
    assert.ok((await syncAll(app, person.dan)).some((i) => i.kind === 'org' && (i.data as { change: string }).change === 'created'));
  });

  it('lets go of a person who resigns, and tells the rest of the group', async () => {
    await org('users.resign', { id: person.ann });
    await eventually('ann out of both sales groups', async () => !(await membersOf(sales.id)).includes(person.ann) && !(await membersOf(salesAll.id)).includes(person.ann));
    const bens = (await syncAll(app, person.ben)).filter((i) => i.kind === 'conversation' && i.conversationId === salesAll.id);
    assert.deepEqual(bens.at(-1)?.data, { conversationId: salesAll.id, change: 'membersRemoved', type: 'department', name: 'All of sales', userIds: [person.ann], by: { directory: true } });
  });

  it('moves people between groups when they move between departments, and when departments move', async () => {
    await org('users.update', { id: person.cat, departments: [{ departmentId: dept.sales }] });
    await eventually('cat moved from engineering to sales', async () => (await membersOf(sales.id)).includes(person.cat) && !(await membersOf(eng.id)).includes(person.cat));
    await org('departments.move', { id: dept.east, parentId: dept.eng });
    await eventually('sales east no longer under sales', async () => !(await membersOf(salesAll.id)).includes(person.ben));
    assert.deepEqual(await membersOf(salesAll.id), [person.cat]);
    assert.deepEqual(await membersOf(eng.id), []);
  });

  it('applies each org change exactly once, however often it is asked to catch up', async () => {
    await im('departments.follow', {});
    const count = async () => Number((await queryRows<{ n: number }>(app.db, "SELECT COUNT(*) AS n FROM event_log WHERE topic = 'conversation.changed'", []))[0].n);
    const before = await count();
    await Promise.all([im('departments.follow', {}), im('departments.follow', {}), im('departments.follow', {})]);
    assert.equal(await count(), before);
    const [{ position }] = await queryRows<{ position: number }>(app.db, "SELECT position FROM plugin_cursors WHERE plugin_id = 'core.im' AND stream = 'org'", []);
    const [{ head }] = await queryRows<{ head: number }>(app.db, "SELECT MAX(seq) AS head FROM event_log WHERE topic LIKE 'org.%'", []);
    assert.equal(Number(position), Number(head));
  });

  it('cuts a disabled member off at once without waiting for the directory, and lets them back in', async () => {
    const m = await im<StoredMessage>('send', { conversationId: sales.id, senderId: person.cat, clientMsgId: 'before', type: 'text', body: { text: 'hello sales' } });
    await org('users.disable', { id: person.cat });
    await rejectsWith(im('send', { conversationId: sales.id, senderId: person.cat, clientMsgId: 'during', type: 'text', body: { text: 'x' } }), 'QIAO_NOT_A_MEMBER', 'senderId');
    await rejectsWith(im('messages.list', { conversationId: sales.id, userId: person.cat }), 'QIAO_NOT_A_MEMBER', 'userId');
    await rejectsWith(im('sync', { userId: person.cat, since: 0 }), 'QIAO_FORBIDDEN', 'userId');
    await rejectsWith(im('messages.search', { userId: person.cat, keyword: 'hello' }), 'QIAO_FORBIDDEN', 'userId');
    await im('departments.follow', {});
    // Disabled is not resigned: still in the group, so re-enabling restores everything.
    assert.ok((await membersOf(sales.id)).includes(person.cat));
    await org('users.enable', { id: person.cat });
    assert.deepEqual((await im('messages.list', { conversationId: sales.id, userId: person.cat })).messages, [m]);
  });

  it('catches up with directory changes made while the im service was down', async () => {
    await app.broker.destroyService(app.broker.getLocalService('im')!);
    await hire('eli', dept.eng);
    await org('users.resign', { id: person.dan });
    const factory = (await import('./im.service.ts')).default;
    app.broker.createService(factory({ config: app.config, db: app.db }));
    await app.broker.waitForServices('im', 5000, 10);
    await eventually('eli in engineering and dan gone', async () => (await membersOf(eng.id)).includes(person.eli) && !(await membersOf(salesAll.id)).includes(person.dan));
    assert.deepEqual(await membersOf(eng.id), [person.eli]);
  });

  it('refuse invites and leaving by members, since the directory decides', async () => {
    await rejectsWith(im('conversations.invite', { userId: person.cat, conversationId: sales.id, userIds: [person.dan] }), 'QIAO_FORBIDDEN', 'conversationId');
    await rejectsWith(im('conversations.leave', { userId: person.cat, conversationId: sales.id }), 'QIAO_FORBIDDEN', 'conversationId');
    await rejectsWith(im('groups.update', { id: sales.id, permissions: { invite: 'members' } }, ADMIN), 'QIAO_VALIDATION', 'permissions.invite');
    await rejectsWith(im('groups.addMembers', { id: sales.id, userIds: [person.dan] }, ADMIN), 'QIAO_CONVERSATION_NOT_FOUND', 'id');
  });
});
