import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Changes, ClientDepartment, ClientUser, Snapshot } from './directory.ts';
import { addUser, buildTree, startOrgApp, type OrgApp } from './test-kit.ts';

/** What a client does with a delta: upsert, then drop the deletions. */
function apply(s: Snapshot, c: Changes): { departments: ClientDepartment[]; users: ClientUser[] } {
  const depts = new Map(s.departments.map((x) => [x.id, x]));
  const users = new Map(s.users.map((x) => [x.id, x]));
  for (const x of c.departments.upserts) depts.set(x.id, x);
  for (const id of c.departments.deletions) depts.delete(id);
  for (const x of c.users.upserts) users.set(x.id, x);
  for (const id of c.users.deletions) users.delete(id);
  const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;
  return { departments: [...depts.values()].sort(byId), users: [...users.values()].sort(byId) };
}

const sorted = (s: Snapshot) => ({ departments: [...s.departments].sort((a, b) => a.id - b.id), users: [...s.users].sort((a, b) => a.id - b.id) });

forEachDatabase('org incremental client sync', ({ url }) => {
  let app: OrgApp;
  let d: Record<string, number>;
  let viewer: number;
  const version = async () => (await app.org<{ version: number }>('version')).version;
  const snapshot = (v = viewer) => app.org<Snapshot>('client.snapshot', { viewer: v });
  const changes = (since: number, v = viewer) => app.org<Changes>('client.changes', { viewer: v, since });

  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url());
    d = await buildTree(app, { 总部: { 研发: {}, 销售: {}, 保密: {} } });
    viewer = await addUser(app, 'viewer', [d['研发']]);
    for (let i = 0; i < 20; i++) await addUser(app, `p${i}`, [i % 2 ? d['研发'] : d['销售']]);
  });
  after(async () => app?.stop());

  it('every change bumps the version; a snapshot carries the version it is current to', async () => {
    const v0 = await version();
    const s = await snapshot();
    assert.equal(s.version, v0);
    await addUser(app, 'bump');
    assert.equal(await version(), v0 + 1);
    const nothing = await changes(await version());
    assert.equal(nothing.reset, false);
    assert.deepEqual([nothing.users.upserts, nothing.users.deletions, nothing.departments.upserts, nothing.departments.deletions], [[], [], [], []]);
  });

  it('the delta since N holds exactly the N+ changes: upserts for changed rows, deletions as tombstones and removals', async () => {
    const s0 = await snapshot();
    const v0 = s0.version;
    const byAccount = new Map(s0.users.map((x) => [x.account, x.id]));
    const created = await addUser(app, 'new.person', [d['销售']]);
    await app.org('users.update', { id: byAccount.get('p1')!, mobile: '139' });
    await app.org('users.update', { id: byAccount.get('p2')!, departments: [{ departmentId: d['研发'], weight: 3 }] });
    await app.org('users.resign', { id: byAccount.get('p3')! });
    await app.org('users.setSecrecy', { userIds: [byAccount.get('p4')!], phone: true });
    const dept = (await app.org<{ id: number }>('departments.create', { name: '临时', parentId: d['总部'] })).id;
    await app.org('departments.delete', { id: dept });
    await app.org('departments.update', { id: d['销售'], name: '销售部' });
    const c = await changes(v0);
    assert.equal(c.reset, false);
    assert.equal(c.version, await version());
    assert.deepEqual(c.users.upserts.map((x) => x.id).sort((a, b) => a - b), [created, byAccount.get('p1')!, byAccount.get('p2')!, byAccount.get('p4')!].sort((a, b) => a - b));
    assert.deepEqual(c.users.deletions, [byAccount.get('p3')!]);
    assert.deepEqual(c.departments.upserts.map((x) => x.id), [d['销售']]);
    assert.deepEqual(c.departments.deletions, [dept]);
    // and applying it to the old snapshot gives exactly the new one
    assert.deepEqual(apply(s0, c), sorted(await snapshot()));
  });

  it('a delta over a partial range sees only that range', async () => {
    const v0 = await version();
    const a = await addUser(app, 'range.a');
    const v1 = await version();
    const b = await addUser(app, 'range.b');
    assert.deepEqual((await changes(v0)).users.upserts.map((x) => x.id), [a, b]);
    assert.deepEqual((await changes(v1)).users.upserts.map((x) => x.id), [b]);
  });

  it('a department moved under a hidden one takes its people out of view: they arrive as deletions', async () => {
    const hidden = (await app.org<{ id: number }>('visibility.create', { kind: 'hide', targets: { departments: [d['保密']] } })).id;
    const s0 = await snapshot();
    const team = (await app.org<{ id: number }>('departments.create', { name: '特别小组', parentId: d['总部'] })).id;
    const member = await addUser(app, 'special.member', [team]);
    const s1 = await snapshot();
    assert.ok(s1.users.some((x) => x.id === member));
    await app.org('departments.move', { id: team, parentId: d['保密'] });
    const c = await changes(s1.version);
    assert.equal(c.reset, false);
    assert.deepEqual(c.departments.deletions, [team]);
    assert.deepEqual(c.users.deletions, [member]);
    assert.deepEqual(apply(s1, c), sorted(await snapshot()));
    // someone inside the hidden department still sees them
    const insider = await addUser(app, 'insider', [d['保密']]);
    assert.ok((await snapshot(insider)).users.some((x) => x.id === member));
    // and a hidden person editing their phone is not announced to others at all
    const v = await version();
    await app.org('users.update', { id: member, phone: '123' });
    const quiet = await changes(v);
    assert.deepEqual([quiet.users.upserts, quiet.users.deletions], [[], []]);
    await app.org('visibility.delete', { id: hidden });
    assert.ok(s0.version < s1.version);
  });

  it('tells the client to reset when the rules or display changed, when it is ahead, or behind the oldest tombstone', async () => {
    const v0 = await version();
    assert.deepEqual([(await changes(v0 + 100)).reset, (await changes(v0 + 100)).reason], [true, 'ahead']);
    const rule = (await app.org<{ id: number }>('visibility.create', { kind: 'hide', targets: { users: [viewer] } })).id;
    assert.deepEqual([(await changes(v0)).reset, (await changes(v0)).reason], [true, 'view-changed']);
    const v1 = await version();
    assert.equal((await changes(v1)).reset, false);
    await app.org('display.set', { nameFormat: 'account' });
    assert.equal((await changes(v1)).reason, 'view-changed');
    const v2 = await version();
    // the viewer's own placement decides what the rules show them
    await app.org('users.update', { id: viewer, departments: [{ departmentId: d['销售'] }] });
    assert.equal((await changes(v2)).reason, 'viewer-moved');
    await app.org('visibility.delete', { id: rule });
    // tombstones pruned: a client older than them cannot be sure it saw every deletion
    const v3 = await version();
    const gone = (await app.org<{ id: number }>('departments.create', { name: '将删除', parentId: d['总部'] })).id;
    await app.org('departments.delete', { id: gone });
    const v4 = await version();
    assert.deepEqual((await changes(v3)).departments.deletions, [gone]);
    const pruned = await app.org('tombstones.prune', { upToVersion: v4 });
    assert.ok(pruned.pruned >= 1, 'the tombstones up to that version are gone');
    assert.equal(pruned.floor, v4);
    assert.deepEqual([(await changes(v3)).reset, (await changes(v3)).reason], [true, 'too-old']);
    assert.equal((await changes(v4)).reset, false);
  });

  it('the unfiltered delta for trusted consumers lists changed and deleted ids', async () => {
    const v0 = await version();
    const a = await addUser(app, 'raw.a');
    const gone = (await app.org<{ id: number }>('departments.create', { name: '原始', parentId: d['总部'] })).id;
    await app.org('departments.delete', { id: gone });
    const raw = await app.org('changes', { since: v0 });
    assert.deepEqual(raw.users.changed, [a]);
    assert.deepEqual(raw.departments.deleted, [gone]);
    assert.deepEqual(raw.departments.changed, []);
  });
});
