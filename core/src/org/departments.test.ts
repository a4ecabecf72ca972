import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { readEvents } from '../eventlog/event-log.ts';
import { addUser, buildTree, rejectsWith, startOrgApp, type OrgApp } from './test-kit.ts';

forEachDatabase('org departments', ({ url }) => {
  let app: OrgApp;
  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url());
  });
  after(async () => app?.stop());

  it('creates a tree of any depth, lists it flat and nested, and gives a department its path and counts', async () => {
    const ids = await buildTree(app, { 总部: { 研发部: { 平台组: { 存储小组: {} } }, 销售部: {} } });
    const flat = await app.org<{ departments: Array<{ id: number; parentId: number | null }> }>('departments.list');
    assert.equal(flat.departments.filter((d) => Object.values(ids).includes(d.id)).length, 5);
    const { tree } = await app.org<{ tree: Array<{ name: string; children: Array<{ name: string; children: unknown[] }> }> }>('departments.tree');
    const root = tree.find((n) => n.name === '总部')!;
    assert.deepEqual(root.children.map((c) => c.name).sort(), ['研发部', '销售部'].sort());
    const detail = await app.org('departments.get', { id: ids['存储小组'] });
    assert.deepEqual(detail.path.map((p: { name: string }) => p.name), ['总部', '研发部', '平台组']);
    assert.equal(detail.childCount, 0);
    assert.equal(detail.memberCount, 0);
  });

  it('renames, re-sorts and sets an alias; refuses a sibling with the same name and an alias in use', async () => {
    const ids = await buildTree(app, { A公司: { 财务: {}, 人事: {} } });
    const renamed = await app.org('departments.update', { id: ids['财务'], name: '财务部', sortOrder: 5, alias: 'FIN-001' });
    assert.equal(renamed.name, '财务部');
    assert.equal(renamed.sortOrder, 5);
    assert.equal(renamed.alias, 'FIN-001');
    await rejectsWith(app.org('departments.update', { id: ids['人事'], name: '财务部' }), 'QIAO_CONFLICT', 'name');
    await rejectsWith(app.org('departments.update', { id: ids['人事'], alias: 'FIN-001' }), 'QIAO_CONFLICT', 'alias');
    await rejectsWith(app.org('departments.create', { name: '人事', parentId: ids['A公司'] }), 'QIAO_CONFLICT', 'name');
    await rejectsWith(app.org('departments.create', { name: 'x', parentId: 999999 }), 'QIAO_NOT_FOUND', 'parentId');
    // clearing the alias frees it
    await app.org('departments.update', { id: ids['财务'], alias: null });
    assert.equal((await app.org('departments.update', { id: ids['人事'], alias: 'FIN-001' })).alias, 'FIN-001');
  });

  it('moves a department, and refuses moving it under itself or its own descendant naming parentId', async () => {
    const ids = await buildTree(app, { M1: { M2: { M3: {} } }, N1: {} });
    const moved = await app.org('departments.move', { id: ids.M2, parentId: ids.N1 });
    assert.equal(moved.parentId, ids.N1);
    const err = await rejectsWith(app.org('departments.move', { id: ids.M2, parentId: ids.M3 }), 'QIAO_VALIDATION', 'parentId');
    assert.match(String(err.message), /own sub-departments/);
    await rejectsWith(app.org('departments.move', { id: ids.N1, parentId: ids.M3 }), 'QIAO_VALIDATION', 'parentId');
    await rejectsWith(app.org('departments.move', { id: ids.M2, parentId: ids.M2 }), 'QIAO_VALIDATION', 'parentId');
    // to the top level
    assert.equal((await app.org('departments.move', { id: ids.M3, parentId: null })).parentId, null);
  });

  it('two concurrent moves that would together make a cycle: org writes run one at a time, so one is refused', async () => {
    const ids = await buildTree(app, { C1: {}, C2: {} });
    const results = await Promise.allSettled([
      app.org('departments.move', { id: ids.C1, parentId: ids.C2 }),
      app.org('departments.move', { id: ids.C2, parentId: ids.C1 }),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    await rejectsWith(Promise.reject(refused.reason), 'QIAO_VALIDATION', 'parentId');
    const c1 = await app.org('departments.get', { id: ids.C1 });
    const c2 = await app.org('departments.get', { id: ids.C2 });
    assert.ok(c1.parentId === null || c2.parentId === null, 'no cycle was stored');
  });

  it('refuses deleting a department with sub-departments or members, saying why, and deletes an empty one', async () => {
    const ids = await buildTree(app, { D1: { D2: {} } });
    const sub = await rejectsWith(app.org('departments.delete', { id: ids.D1 }), 'QIAO_CONFLICT', 'id');
    assert.match(String(sub.message), /1 sub-department/);
    assert.equal(sub.reason, 'has-sub-departments');
    const u = await addUser(app, 'd2member', [ids.D2]);
    const mem = await rejectsWith(app.org('departments.delete', { id: ids.D2 }), 'QIAO_CONFLICT', 'id');
    assert.match(String(mem.message), /1 member/);
    assert.equal(mem.reason, 'has-members');
    // a resigned person does not block the deletion, and loses the membership
    await app.org('users.resign', { id: u });
    assert.deepEqual(await app.org('departments.delete', { id: ids.D2 }), { id: ids.D2, deleted: true });
    assert.deepEqual((await app.org('users.get', { id: u })).departments, []);
    await rejectsWith(app.org('departments.get', { id: ids.D2 }), 'QIAO_NOT_FOUND', 'id');
  });

  it('appends every change to the durable event log, in the same transaction, and wakes readers after commit', async () => {
    const woken: Array<{ seq: number; topic: string }> = [];
    const changed: number[] = [];
    await app.broker.createService({
      name: 'wake-listener',
      events: {
        'eventlog.appended'(ctx: { params: { seq: number; topic: string } }) {
          woken.push(ctx.params);
        },
        'org.changed'(ctx: { params: { version: number } }) {
          changed.push(ctx.params.version);
        },
      },
    });
    const before = (await readEvents(app.db, 0, 100000)).length;
    const ids = await buildTree(app, { Logged: {} });
    await app.org('departments.update', { id: ids.Logged, name: 'Logged2' });
    await app.org('departments.delete', { id: ids.Logged });
    const events = (await readEvents(app.db, 0, 100000)).slice(before);
    assert.deepEqual(events.map((e) => e.topic), ['org.department.changed', 'org.department.changed', 'org.department.deleted']);
    assert.equal(events[0].subject, `department:${ids.Logged}`);
    const versions = events.map((e) => (e.payload as { version: number }).version);
    assert.ok(versions[0] < versions[1] && versions[1] < versions[2]);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(woken.map((w) => w.seq), events.map((e) => e.seq));
    assert.deepEqual(changed, versions);
  });

  it('creates a department with the id the caller chose, refuses a taken id, and assigns ids after it', async () => {
    const chosen = await app.org('departments.create', { id: 70_001, name: '指定编号' });
    assert.equal(chosen.id, 70_001);
    assert.equal((await app.org('departments.create', { id: 70_002, name: '子部门', parentId: 70_001 })).parentId, 70_001);
    await rejectsWith(app.org('departments.create', { id: 70_001, name: '另一个' }), 'QIAO_CONFLICT', 'id');
    const next = await app.org('departments.create', { name: '自动编号' });
    assert.ok(next.id > 70_002, `an assigned id (${next.id}) never collides with a chosen one`);
  });

  it('places a department after a sibling or first (Youdu dept/sort), renumbering the siblings', async () => {
    const ids = await buildTree(app, { 排序: { 甲: {}, 乙: {}, 丙: {} }, 别处: { 丁: {} } });
    const order = async () => (await app.org<{ departments: Array<{ id: number; parentId: number | null; sortOrder: number }> }>('departments.list')).departments
      .filter((d) => d.parentId === ids['排序'])
      .sort((a, b) => a.sortOrder - b.sortOrder || a.id - b.id)
      .map((d) => d.id);
    await app.org('departments.reorder', { id: ids['甲'], afterId: ids['丙'] });
    assert.deepEqual(await order(), [ids['乙'], ids['丙'], ids['甲']]);
    await app.org('departments.reorder', { id: ids['丙'], afterId: null });
    assert.deepEqual(await order(), [ids['丙'], ids['乙'], ids['甲']]);
    await rejectsWith(app.org('departments.reorder', { id: ids['甲'], afterId: ids['丁'] }), 'QIAO_VALIDATION', 'afterId');
    await rejectsWith(app.org('departments.reorder', { id: ids['甲'], afterId: ids['甲'] }), 'QIAO_VALIDATION', 'afterId');
    await rejectsWith(app.org('departments.reorder', { id: ids['甲'], afterId: 987_654 }), 'QIAO_NOT_FOUND', 'afterId');
  });

  it('a refused change writes nothing: no row, no log entry, no version', async () => {
    const ids = await buildTree(app, { Keep: { Child: {} } });
    const v0 = (await app.org('version')).version;
    const e0 = (await readEvents(app.db, 0, 100000)).length;
    await rejectsWith(app.org('departments.move', { id: ids.Keep, parentId: ids.Child }), 'QIAO_VALIDATION', 'parentId');
    await rejectsWith(app.org('departments.delete', { id: ids.Keep }), 'QIAO_CONFLICT', 'id');
    assert.equal((await app.org('version')).version, v0);
    assert.equal((await readEvents(app.db, 0, 100000)).length, e0);
  });
});
