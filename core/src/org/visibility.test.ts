import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { ClientUser, Snapshot } from './directory.ts';
import { addUser, buildTree, rejectsWith, startOrgApp, type OrgApp } from './test-kit.ts';

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

forEachDatabase('org visibility rules on client reads', ({ url }) => {
  let app: OrgApp;
  let d: Record<string, number>;
  let u: Record<string, number>;

  const snap = (viewer: number) => app.org<Snapshot>('client.snapshot', { viewer });
  const sees = async (viewer: number) => {
    const s = await snap(viewer);
    return { depts: new Set(s.departments.map((x) => x.id)), users: new Set(s.users.map((x) => x.id)), s };
  };
  async function withRule<T>(rule: object, fn: () => Promise<T>): Promise<T> {
    const r = await app.org<{ id: number }>('visibility.create', rule);
    try {
      return await fn();
    } finally {
      await app.org('visibility.delete', { id: r.id });
    }
  }

  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url());
    d = await buildTree(app, { 公司: { 董事会: {}, 研发: { 平台: {} }, 销售: { 华南: {} }, 外包: {} } });
    u = {};
    u.ceo = await addUser(app, 'ceo', [d['董事会']], { mobile: '13900000000' });
    u.dev = await addUser(app, 'dev', [d['研发']], { mobile: '13800000001', email: 'dev@example.com', phone: '0756-1' });
    u.plat = await addUser(app, 'plat', [d['平台']]);
    u.sales = await addUser(app, 'sales', [d['销售']]);
    u.south = await addUser(app, 'south', [d['华南']]);
    u.out = await addUser(app, 'out', [d['外包']]);
    u.loose = await addUser(app, 'loose');
    u.multi = await addUser(app, 'multi', [d['董事会'], d['销售']]);
  });
  after(async () => app?.stop());

  it('with no rules everybody sees the whole directory, themselves included', async () => {
    const { depts, users } = await sees(u.sales);
    assert.deepEqual(depts, new Set(Object.values(d)));
    assert.deepEqual(users, new Set(Object.values(u)));
  });

  it('hide a department: gone with its sub-tree and its people for others; its own people and the whitelist still see it', async () => {
    await withRule({ kind: 'hide', targets: { departments: [d['董事会']] }, whitelist: { users: [u.dev], departments: [d['销售']] } }, async () => {
      const out = await sees(u.out);
      assert.ok(!out.depts.has(d['董事会']));
      assert.ok(!out.users.has(u.ceo), 'the hidden department’s people are hidden');
      assert.ok(out.users.has(u.multi), 'someone also in a visible department stays visible');
      const multi = out.s.users.find((x) => x.id === u.multi)!;
      assert.deepEqual(multi.departments.map((m) => m.id), [d['销售']], 'without the hidden membership');
      const ceo = await sees(u.ceo);
      assert.ok(ceo.depts.has(d['董事会']) && ceo.users.has(u.ceo), 'its own members see it');
      const dev = await sees(u.dev);
      assert.ok(dev.depts.has(d['董事会']) && dev.users.has(u.ceo), 'whitelisted person');
      const south = await sees(u.south);
      assert.ok(south.depts.has(d['董事会']) && south.users.has(u.ceo), 'whitelisted department includes its sub-departments');
      await rejectsWith(app.org('client.user', { viewer: u.out, userId: u.ceo }), 'QIAO_NOT_FOUND', 'userId');
    });
  });

  it('hide a person: gone for everyone but themselves and the whitelist; their department stays', async () => {
    await app.org('users.avatar.set', { id: u.ceo, data: PNG.toString('base64') });
    await withRule({ kind: 'hide', targets: { users: [u.ceo] }, whitelist: { users: [u.sales] } }, async () => {
      const out = await sees(u.out);
      assert.ok(out.depts.has(d['董事会']));
      assert.ok(!out.users.has(u.ceo));
      await rejectsWith(app.org('client.user', { viewer: u.out, userId: u.ceo }), 'QIAO_NOT_FOUND', 'userId');
      await rejectsWith(app.org('client.avatar', { viewer: u.out, userId: u.ceo }), 'QIAO_NOT_FOUND', 'userId');
      assert.ok((await sees(u.ceo)).users.has(u.ceo));
      assert.ok((await sees(u.sales)).users.has(u.ceo));
      assert.equal((await app.org('client.avatar', { viewer: u.sales, userId: u.ceo })).contentType, 'image/png');
    });
  });

  it('restrict to own department: sub-departments and the path to them are shown, nobody else; extras and the whitelist work', async () => {
    await withRule({ kind: 'restrict', targets: { departments: [d['销售']] }, whitelist: { users: [u.south] } }, async () => {
      const sales = await sees(u.sales);
      assert.deepEqual(sales.depts, new Set([d['公司'], d['销售'], d['华南']]));
      assert.deepEqual(sales.users, new Set([u.sales, u.multi, u.south]), 'own department and the one below it');
      const south = await sees(u.south);
      assert.deepEqual(south.users, new Set(Object.values(u)), 'the whitelisted person is not restricted');
    });
  });

  it('restrict: people in the viewer’s sub-departments are visible; extra departments and people widen the view', async () => {
    await withRule({ kind: 'restrict', targets: { departments: [d['销售']] }, extraVisible: { departments: [d['研发']], users: [u.ceo] } }, async () => {
      const sales = await sees(u.sales);
      assert.ok(sales.users.has(u.south), 'sub-department people');
      assert.ok(sales.users.has(u.dev) && sales.users.has(u.plat), 'extra department with its sub-tree');
      assert.ok(sales.users.has(u.ceo), 'extra person');
      assert.ok(!sales.users.has(u.out) && !sales.users.has(u.loose));
      assert.ok(!sales.depts.has(d['外包']));
      const dev = await sees(u.dev);
      assert.deepEqual(dev.users, new Set(Object.values(u)), 'people outside the rule see everything');
    });
    await withRule({ kind: 'restrict', targets: { users: [u.dev] }, whitelist: {} }, async () => {
      const dev = await sees(u.dev);
      assert.deepEqual(dev.users, new Set([u.dev, u.plat]));
    });
    await withRule({ kind: 'restrict', targets: { departments: [d['公司']] }, whitelist: { users: [u.south] } }, async () => {
      const south = await sees(u.south);
      assert.deepEqual(south.users, new Set(Object.values(u)), 'the whitelisted person is exempt');
      const out = await sees(u.out);
      assert.deepEqual(out.users, new Set([u.out]));
    });
  });

  it('forbid: the viewer gets no directory but themselves, on snapshot, delta and single reads; the whitelist is exempt', async () => {
    const v0 = (await app.org('version')).version;
    await withRule({ kind: 'forbid', targets: { departments: [d['外包']] }, whitelist: { users: [] } }, async () => {
      const s = await snap(u.out);
      assert.equal(s.forbidden, true);
      assert.deepEqual(s.departments, []);
      assert.deepEqual(s.users.map((x) => x.id), [u.out]);
      await rejectsWith(app.org('client.user', { viewer: u.out, userId: u.dev }), 'QIAO_NOT_FOUND', 'userId');
      const v = (await app.org('version')).version;
      await app.org('users.update', { id: u.dev, shortNumber: '1234' });
      const delta = await app.org('client.changes', { viewer: u.out, since: v });
      assert.equal(delta.forbidden, true);
      assert.deepEqual(delta.users.upserts, []);
      assert.equal((await snap(u.dev)).forbidden, false);
    });
    await withRule({ kind: 'forbid', targets: { users: [u.out] }, whitelist: { departments: [d['外包']] } }, async () => {
      assert.equal((await snap(u.out)).forbidden, false);
    });
    assert.ok(v0 > 0);
  });

  it('secrecy hides mobile / phone / email from other people’s reads, never from the person themselves', async () => {
    await app.org('users.setSecrecy', { userIds: [u.dev], mobile: true, email: true });
    const other = (await snap(u.sales)).users.find((x) => x.id === u.dev)!;
    assert.equal(other.mobile, undefined);
    assert.equal(other.email, undefined);
    assert.equal(other.phone, '0756-1');
    const single = await app.org<ClientUser>('client.user', { viewer: u.sales, userId: u.dev });
    assert.equal(single.mobile, undefined);
    const self = (await snap(u.dev)).users.find((x) => x.id === u.dev)!;
    assert.equal(self.mobile, '13800000001');
    assert.equal(self.email, 'dev@example.com');
    await app.org('users.setSecrecy', { userIds: [u.dev], mobile: false, email: false });
  });

  it('resigned people are never shown and may not read; custom fields reach clients only when marked visible', async () => {
    const gone = await addUser(app, 'gone', [d['研发']]);
    await app.org('users.resign', { id: gone });
    assert.ok(!(await sees(u.dev)).users.has(gone));
    await rejectsWith(app.org('client.snapshot', { viewer: gone }), 'QIAO_FORBIDDEN', 'viewer');
    await rejectsWith(app.org('client.snapshot', { viewer: 987654 }), 'QIAO_NOT_FOUND', 'viewer');
    await app.org('customFields.create', { key: 'seniority', label: '工龄', type: 'number' });
    await app.org('customFields.create', { key: 'salaryBand', label: '薪级', type: 'text', clientVisible: false });
    await app.org('users.update', { id: u.plat, customFields: { seniority: 3, salaryBand: 'P7' } });
    const s = await snap(u.dev);
    assert.deepEqual(s.customFields, [{ key: 'seniority', label: '工龄', type: 'number' }]);
    assert.deepEqual(s.users.find((x) => x.id === u.plat)!.custom, { seniority: 3 });
  });

  it('display settings (name format, sort rule) reach clients with the directory', async () => {
    assert.deepEqual((await snap(u.dev)).display, { nameFormat: 'name', sortRule: 'weight' });
    await app.org('display.set', { nameFormat: 'name(account)', sortRule: 'online' });
    assert.deepEqual((await snap(u.dev)).display, { nameFormat: 'name(account)', sortRule: 'online' });
    assert.deepEqual(await app.org('display.get'), { nameFormat: 'name(account)', sortRule: 'online' });
    await rejectsWith(app.org('display.set', { nameFormat: 'nickname' }), 'QIAO_VALIDATION', 'nameFormat');
  });

  it('refuses rules that name unknown departments or people, have no targets, or put extras on a non-restrict rule', async () => {
    await rejectsWith(app.org('visibility.create', { kind: 'hide', targets: { departments: [999999] } }), 'QIAO_NOT_FOUND', 'targets.departments[0]');
    await rejectsWith(app.org('visibility.create', { kind: 'hide', targets: {} }), 'QIAO_VALIDATION', 'targets');
    await rejectsWith(app.org('visibility.create', { kind: 'forbid', targets: { users: [u.out] }, extraVisible: { users: [u.dev] } }), 'QIAO_VALIDATION', 'extraVisible');
    await rejectsWith(app.org('visibility.create', { kind: 'everyone', targets: { users: [u.out] } }), 'QIAO_VALIDATION', 'kind');
    const r = await app.org('visibility.create', { kind: 'hide', name: 'VIP', targets: { users: [u.ceo] } });
    const upd = await app.org('visibility.update', { id: r.id, kind: 'hide', name: 'VIP2', targets: { users: [u.ceo, u.dev] } });
    assert.deepEqual(upd.targets.users, [u.ceo, u.dev]);
    assert.equal((await app.org('visibility.list')).rules.length, 1);
    await app.org('visibility.delete', { id: r.id });
    await rejectsWith(app.org('visibility.delete', { id: r.id }), 'QIAO_NOT_FOUND', 'id');
  });
});
