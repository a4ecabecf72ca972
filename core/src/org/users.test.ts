import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { readEvents } from '../eventlog/event-log.ts';
import { select } from '../db/sql.ts';
import { addUser, buildTree, rejectsWith, startOrgApp, type OrgApp } from './test-kit.ts';

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

forEachDatabase('org users', ({ url }) => {
  let app: OrgApp;
  let ids: Record<string, number>;
  const statusEvents: Array<{ userId: number; status: string }> = [];
  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url());
    await app.broker.createService({
      name: 'status-listener',
      events: { 'org.user.statusChanged'(ctx: { params: { userId: number; status: string } }) { statusEvents.push(ctx.params); } },
    });
    ids = await buildTree(app, { 公司: { 研发: {}, 销售: {}, 市场: {} } });
  });
  after(async () => app?.stop());

  it('creates a person with every directory field and several departments, each with its own position and weight', async () => {
    const u = await app.org('users.create', {
      account: 'zhang.san',
      name: '张三',
      gender: 'male',
      mobile: '13800000000',
      phone: '0756-8888888',
      shortNumber: '6001',
      email: 'zhang.san@example.com',
      departments: [
        { departmentId: ids['研发'], position: '工程师', weight: 10 },
        { departmentId: ids['市场'], position: '顾问', weight: 1 },
      ],
    });
    assert.equal(u.account, 'zhang.san');
    assert.equal(u.status, 'active');
    assert.equal(u.authType, 'password');
    assert.equal(u.authorised, false, 'creating a person never grants a seat: that is the auth service’s decision');
    assert.deepEqual(
      u.departments.map((m: { departmentId: number; position: string; weight: number }) => [m.departmentId, m.position, m.weight]).sort(),
      [[ids['研发'], '工程师', 10], [ids['市场'], '顾问', 1]].sort(),
    );
    await rejectsWith(app.org('users.create', { account: 'zhang.san', name: 'dup' }), 'QIAO_CONFLICT', 'account');
    await rejectsWith(app.org('users.create', { account: 'bad account', name: 'x' }), 'QIAO_VALIDATION', 'account');
  });

  it('refuses bad fields naming them: account characters, e-mail, gender, unknown department, the same department twice', async () => {
    await rejectsWith(app.org('users.create', { account: "o'brien", name: 'x' }), 'QIAO_VALIDATION', 'account');
    await rejectsWith(app.org('users.create', { account: 'mail1', name: 'x', email: 'not-an-address' }), 'QIAO_VALIDATION', 'email');
    await rejectsWith(app.org('users.create', { account: 'g1', name: 'x', gender: 'other' }), 'QIAO_VALIDATION', 'gender');
    await rejectsWith(app.org('users.create', { account: 'dep1', name: 'x', departments: [{ departmentId: 987654 }] }), 'QIAO_NOT_FOUND', 'departments[0].departmentId');
    await rejectsWith(
      app.org('users.create', { account: 'dep2', name: 'x', departments: [{ departmentId: ids['研发'] }, { departmentId: ids['研发'] }] }),
      'QIAO_VALIDATION',
      'departments[1].departmentId',
    );
  });

  it('updates fields, clears one with null, and leaves authorised alone', async () => {
    const id = await addUser(app, 'li.si', [ids['销售']], { mobile: '1', email: 'a@b.c' });
    await app.db.sequelize.query('UPDATE users SET authorised = ? WHERE id = ?', { replacements: [true, id] });
    const u = await app.org('users.update', { id, name: '李四', mobile: null, shortNumber: '7001' });
    assert.equal(u.name, '李四');
    assert.equal(u.mobile, null);
    assert.equal(u.shortNumber, '7001');
    assert.equal(u.email, 'a@b.c');
    assert.equal(u.authorised, true);
    await rejectsWith(app.org('users.update', { id: 99999999, name: 'x' }), 'QIAO_NOT_FOUND', 'id');
  });

  it('lists a department’s people paged, larger weight first, with search and sub-departments', async () => {
    const dept = (await app.org('departments.create', { name: '分页', parentId: ids['公司'] })).id;
    const child = (await app.org('departments.create', { name: '分页子', parentId: dept })).id;
    for (let i = 0; i < 7; i++) {
      await app.org('users.create', { account: `page${i}`, name: `P${i}`, departments: [{ departmentId: dept, weight: i === 3 ? 100 : 0 }] });
    }
    await addUser(app, 'pagechild', [child]);
    const p1 = await app.org('users.list', { departmentId: dept, page: 1, pageSize: 3 });
    assert.equal(p1.total, 7);
    assert.deepEqual(p1.users.map((u: { account: string }) => u.account), ['page3', 'page0', 'page1']);
    const p3 = await app.org('users.list', { departmentId: dept, page: 3, pageSize: 3 });
    assert.deepEqual(p3.users.map((u: { account: string }) => u.account), ['page6']);
    assert.equal((await app.org('users.list', { departmentId: dept, includeSub: true })).total, 8);
    assert.equal((await app.org('users.list', { search: 'PAGE5' })).total, 1);
    assert.equal((await app.org('users.list', { search: '%' })).total, 0, 'LIKE wildcards in a search are literal');
  });

  it('moves people between departments keeping position and weight, and sets memberships wholesale', async () => {
    const a = await app.org('users.create', { account: 'mover', name: 'M', departments: [{ departmentId: ids['研发'], position: 'lead', weight: 5 }, { departmentId: ids['市场'] }] });
    const { moved } = await app.org('users.move', { userIds: [a.id], fromDepartmentId: ids['研发'], toDepartmentId: ids['销售'] });
    assert.deepEqual(moved, [a.id]);
    const after = await app.org('users.get', { id: a.id });
    assert.deepEqual(after.departments.map((m: { departmentId: number }) => m.departmentId).sort(), [ids['销售'], ids['市场']].sort());
    assert.equal(after.departments.find((m: { departmentId: number }) => m.departmentId === ids['销售']).position, 'lead');
    await rejectsWith(app.org('users.move', { userIds: [a.id], fromDepartmentId: ids['研发'], toDepartmentId: ids['市场'] }), 'QIAO_VALIDATION', 'fromDepartmentId');
    // without a source department the person ends up in the target only
    await app.org('users.move', { userIds: [a.id], toDepartmentId: ids['研发'] });
    assert.deepEqual((await app.org('users.get', { id: a.id })).departments.map((m: { departmentId: number }) => m.departmentId), [ids['研发']]);
    const set = await app.org('users.setMemberships', { id: a.id, departments: [{ departmentId: ids['市场'], position: '总监', weight: 9 }] });
    assert.deepEqual(set.departments, [{ departmentId: ids['市场'], position: '总监', weight: 9 }]);
    await rejectsWith(app.org('users.move', { userIds: [a.id], toDepartmentId: 424242 }), 'QIAO_NOT_FOUND', 'toDepartmentId');
  });

  it('disables, enables, marks resigned (离职) and restores, and tells auth and im through org.user.statusChanged', async () => {
    const id = await addUser(app, 'wang.wu', [ids['研发']]);
    statusEvents.length = 0;
    assert.equal((await app.org('users.disable', { id })).status, 'disabled');
    assert.equal((await app.org('users.enable', { id })).status, 'active');
    assert.equal((await app.org('users.resign', { id })).status, 'resigned');
    await rejectsWith(app.org('users.enable', { id }), 'QIAO_CONFLICT', 'id');
    assert.equal((await app.org('users.list', { status: 'resigned', search: 'wang.wu' })).total, 1);
    assert.equal((await app.org('users.list', { search: 'wang.wu' })).total, 0, 'the default list leaves resigned people out');
    const restored = await app.org('users.restore', { id, departmentId: ids['销售'] });
    assert.equal(restored.status, 'active');
    assert.deepEqual(restored.departments.map((m: { departmentId: number }) => m.departmentId), [ids['销售']]);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(statusEvents, [
      { userId: id, status: 'disabled' },
      { userId: id, status: 'active' },
      { userId: id, status: 'resigned' },
      { userId: id, status: 'active' },
    ]);
    const log = (await readEvents(app.db, 0, 100000, ['org.user.changed'])).filter((e) => e.subject === `user:${id}`);
    assert.deepEqual(log.map((e) => (e.payload as { change: string }).change), ['created', 'status', 'status', 'status', 'status']);
  });

  it('defines custom fields (工龄, 政治面貌) and checks values against them', async () => {
    await app.org('customFields.create', { key: 'seniority', label: '工龄', type: 'number' });
    await app.org('customFields.create', { key: 'political', label: '政治面貌', type: 'select', options: ['群众', '党员', '团员'] });
    await app.org('customFields.create', { key: 'joined', label: '入职日期', type: 'date', clientVisible: false });
    await rejectsWith(app.org('customFields.create', { key: 'seniority', label: 'x', type: 'text' }), 'QIAO_CONFLICT', 'key');
    await rejectsWith(app.org('customFields.create', { key: 'sel', label: 'x', type: 'select' }), 'QIAO_VALIDATION', 'options');
    const id = await addUser(app, 'custom.one', [], { customFields: { seniority: 5, political: '党员', joined: '2020-02-29' } });
    assert.deepEqual((await app.org('users.get', { id })).customFields, { seniority: 5, political: '党员', joined: '2020-02-29' });
    await rejectsWith(app.org('users.update', { id, customFields: { political: '无党派' } }), 'QIAO_VALIDATION', 'customFields.political');
    await rejectsWith(app.org('users.update', { id, customFields: { seniority: 'five' } }), 'QIAO_VALIDATION', 'customFields.seniority');
    await rejectsWith(app.org('users.update', { id, customFields: { joined: '2020-13-45' } }), 'QIAO_VALIDATION', 'customFields.joined');
    await rejectsWith(app.org('users.update', { id, customFields: { hobby: 'go' } }), 'QIAO_VALIDATION', 'customFields.hobby');
    const cleared = await app.org('users.update', { id, customFields: { seniority: null } });
    assert.deepEqual(cleared.customFields, { political: '党员', joined: '2020-02-29' });
    const updated = await app.org('customFields.update', { key: 'political', label: '政治面貌（新）' });
    assert.equal(updated.label, '政治面貌（新）');
    await app.org('customFields.delete', { key: 'joined' });
    assert.deepEqual((await app.org('customFields.list')).fields.map((f: { key: string }) => f.key).sort(), ['political', 'seniority']);
  });

  it('stores an avatar under the data dir, checking type and size, and serves it back', async () => {
    const id = await addUser(app, 'avatar.one');
    const set = await app.org('users.avatar.set', { id, data: PNG.toString('base64') });
    assert.match(set.avatar, new RegExp(`^${id}-[0-9a-f]{16}\\.png$`));
    const got = await app.org('users.avatar.get', { id });
    assert.equal(got.contentType, 'image/png');
    assert.deepEqual(Buffer.from(got.data, 'base64'), PNG);
    await rejectsWith(app.org('users.avatar.set', { id, data: Buffer.from('<svg onload=alert(1)>').toString('base64') }), 'QIAO_VALIDATION', 'data');
    await rejectsWith(app.org('users.avatar.set', { id, data: Buffer.concat([PNG, Buffer.alloc(1024 * 1024)]).toString('base64') }), 'QIAO_PAYLOAD_TOO_LARGE', 'data');
    await app.org('users.avatar.remove', { id });
    await rejectsWith(app.org('users.avatar.get', { id }), 'QIAO_NOT_FOUND', 'userId');
  });

  it('keeps secrecy flags per person', async () => {
    const a = await addUser(app, 'secret.a', [], { mobile: '1' });
    const b = await addUser(app, 'secret.b', [], { mobile: '2' });
    const r = await app.org('users.setSecrecy', { userIds: [a, b], mobile: true, email: true });
    assert.deepEqual(r.users.map((u: { secrecy: object }) => u.secrecy), [
      { mobile: true, phone: false, email: true },
      { mobile: true, phone: false, email: true },
    ]);
    await app.org('users.setSecrecy', { userIds: [b], email: false });
    assert.deepEqual((await app.org('users.get', { id: b })).secrecy, { mobile: true, phone: false, email: false });
  });

  it('finds a person by account for other services', async () => {
    const id = await addUser(app, 'by.account');
    assert.equal((await app.broker.call<{ id: number }, object>('org.users.byAccount', { account: 'by.account' })).id, id);
    await rejectsWith(app.broker.call('org.users.byAccount', { account: 'nobody.here' }), 'QIAO_NOT_FOUND', 'account');
    const [{ n }] = await select<{ n: number | string }>(app.db, 'SELECT COUNT(*) AS n FROM users WHERE account = ?', ['by.account']);
    assert.equal(Number(n), 1);
  });

  it('finds several people by id for other services, in the order asked, leaving out unknown ids', async () => {
    const a = await addUser(app, 'ids.a');
    const b = await addUser(app, 'ids.b');
    await app.org('users.resign', { id: b });
    const found = await app.broker.call<{ users: Array<{ id: number; status: string }> }, object>('org.users.byIds', { ids: [b, 999_999, a, b] });
    assert.deepEqual(found.users.map((u) => [u.id, u.status]), [[b, 'resigned'], [a, 'active']]);
  });

  it('finds current people by e-mail for other services, without case, every holder of a shared address', async () => {
    const a = await addUser(app, 'mail.a', [], { email: 'Team@Example.com' });
    const b = await addUser(app, 'mail.b', [], { email: 'team@example.com' });
    const c = await addUser(app, 'mail.c', [], { email: 'c@example.com' });
    const gone = await addUser(app, 'mail.gone', [], { email: 'c@example.com' });
    await app.org('users.resign', { id: gone });
    const found = await app.broker.call<{ users: Array<{ id: number; account: string }> }, object>('org.users.byEmail', { emails: ['TEAM@example.com', 'c@example.com', 'nobody@example.com'] });
    assert.deepEqual(found.users.map((u) => u.id), [a, b, c], 'resigned people are not found');
    await rejectsWith(app.broker.call('org.users.byEmail', { emails: [] }), 'QIAO_VALIDATION', 'emails');
  });
});
