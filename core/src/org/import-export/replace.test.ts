import assert from 'node:assert/strict';
import { createTestDatabase, forEachDatabase, type TestDatabase } from '../../../../test/support/databases.ts';
import { readEvents } from '../../eventlog/event-log.ts';
import { addUser, buildTree, rejectsWith, startOrgApp, type OrgApp } from '../test-kit.ts';
import type { OrgBackup } from './backup.ts';

interface Dept {
  id: number;
  parentId: number | null;
  name: string;
  alias: string | null;
  sortOrder: number;
}

forEachDatabase('org replace (the whole directory from a list)', ({ dialect }) => {
  // A replace is about the whole directory: each test starts from an empty one.
  let app: OrgApp;
  let db: TestDatabase;
  beforeEach(async function () {
    this.timeout(30_000);
    db = await createTestDatabase(dialect);
    app = await startOrgApp(db.url);
  });
  afterEach(async () => {
    await app?.stop();
    await db?.drop();
  });

  const depts = async () => (await app.org<{ departments: Dept[] }>('departments.list')).departments.sort((a, b) => a.id - b.id);
  const people = async () =>
    (await app.org<{ users: Array<{ account: string; status: string; departments: Array<{ departmentId: number; position: string | null }> }> }>('users.list', { status: 'all', pageSize: 500 })).users;

  it('makes the tree and the people equal the list: matches by id or parent and name, resigns the unlisted, restores the listed, drops the rest', async () => {
    const d = await buildTree(app, { 总部: { 研发: { 平台: {} }, 销售: {} }, 旧部门: { 旧子部门: {} } });
    const alice = await addUser(app, 'alice', [d['研发']]);
    await addUser(app, 'bob', [d['旧子部门']]);
    const carol = await addUser(app, 'carol', [d['销售']]);
    await app.org('users.resign', { id: carol });
    const r = await app.org('import.replace', {
      departments: [
        { key: 'hq', id: d['总部'], parentKey: null, name: '总部', sortOrder: 1 },
        { key: 'rd', parentKey: 'hq', name: '研发', alias: 'RD' },
        { key: 'platform', parentKey: 'rd', name: '平台' },
        { key: 'new', id: 8_001, parentKey: 'hq', name: '市场' },
        // the kept child of a department that goes: moved out before its old parent is dropped
        { key: 'moved', id: d['旧子部门'], parentKey: 'new', name: '品牌' },
      ],
      users: [
        { account: 'alice', name: '爱丽丝', gender: 'female', email: 'alice@example.com', departments: [{ departmentKey: 'platform', position: '架构师', weight: 3 }] },
        { account: 'carol', name: 'Carol', departments: [{ departmentKey: 'moved' }] },
        { account: 'dave', name: 'Dave', mobile: '13800000000', departments: [{ departmentKey: 'new' }, { departmentKey: 'rd' }] },
      ],
    });
    assert.deepEqual(r.departments, { created: 1, updated: 3, unchanged: 1, deleted: 2 });
    assert.deepEqual(r.users, { created: 1, updated: 2, unchanged: 0, resigned: 1 });
    const after = await depts();
    assert.deepEqual(
      after.map((x) => [x.id, x.parentId, x.name, x.alias]),
      [
        [d['总部'], null, '总部', null],
        [d['研发'], d['总部'], '研发', 'RD'],
        [d['平台'], d['研发'], '平台', null],
        [d['旧子部门'], 8_001, '品牌', null],
        [8_001, d['总部'], '市场', null],
      ],
    );
    const byAccount = new Map((await people()).map((u) => [u.account, u]));
    assert.equal(byAccount.get('alice')!.status, 'active');
    assert.deepEqual(byAccount.get('alice')!.departments, [{ departmentId: d['平台'], position: '架构师', weight: 3 }]);
    assert.equal(byAccount.get('bob')!.status, 'resigned', 'not listed: resigned, the record stays');
    assert.equal(byAccount.get('carol')!.status, 'active', 'listed after resigning: back');
    assert.deepEqual(byAccount.get('dave')!.departments.map((m) => m.departmentId).sort((a, b) => a - b), [d['研发'], 8_001].sort((a, b) => a - b));
    assert.equal((await app.org('users.get', { id: alice })).email, 'alice@example.com');
    const events = await readEvents(app.db, 0, 100_000);
    assert.ok(events.some((e) => e.topic === 'org.imported' && (e.payload as { format: string }).format === 'replace'));
  });

  it('without a department list keeps the tree and replaces only the people', async () => {
    const d = await buildTree(app, { A: {}, B: {} });
    await addUser(app, 'x1', [d.A]);
    const r = await app.org('import.replace', { users: [{ account: 'x2', name: 'X2', departments: [{ departmentId: d.B }] }] });
    assert.deepEqual(r.departments.deleted, 0);
    assert.deepEqual((await depts()).map((x) => x.name), ['A', 'B']);
    assert.deepEqual((await people()).map((u) => [u.account, u.status]), [['x1', 'resigned'], ['x2', 'active']]);
  });

  it('is all or nothing: a replace refused by its very last step changes nothing at all', async () => {
    const d = await buildTree(app, { 总部: { 研发: {} }, 外部: { 子部门: {} } });
    await addUser(app, 'keep.me', [d['研发']]);
    await addUser(app, 'moved.me', [d['子部门']], { mobile: '1' });
    // 外部 is managed by a directory sync: the replace may not delete it, and finds out only at the end,
    // after it has moved 子部门 out, created a department, resigned one person and rewritten another.
    await app.db.sequelize.query("UPDATE departments SET source = 'ldap' WHERE id = ?", { replacements: [d['外部']] });
    await app.broker.call('system.settings.set', { key: 'org.readOnlySources', value: ['ldap'] });
    const before = await app.org<OrgBackup>('export.backup');
    const version = (await app.org('version')).version;
    const events = (await readEvents(app.db, 0, 100_000)).length;
    const list = {
      departments: [
        { key: 'hq', id: d['总部'], parentKey: null, name: '新总部' },
        { key: 'n', id: 9_100, parentKey: 'hq', name: '新部门' },
        { key: 'sub', id: d['子部门'], parentKey: 'hq', name: '子部门' },
      ],
      users: [
        { account: 'new.one', name: 'New', departments: [{ departmentKey: 'n' }] },
        { account: 'moved.me', name: 'Moved', mobile: '2', departments: [{ departmentKey: 'sub' }] },
      ],
    };
    await rejectsWith(app.org('import.replace', list), 'QIAO_FORBIDDEN');
    const strip = (b: OrgBackup) => ({ ...b, exportedAt: '' });
    assert.deepEqual(strip(await app.org<OrgBackup>('export.backup')), strip(before));
    assert.equal((await app.org('version')).version, version);
    assert.equal((await readEvents(app.db, 0, 100_000)).length, events);
    // Refused before anything is written: a bad field in the last person.
    list.users.push({ account: 'last', name: 'Last', departments: [{ departmentKey: 'n' }], email: 'not-an-address' } as (typeof list.users)[number]);
    const refused = await rejectsWith(app.org('import.replace', list), 'QIAO_VALIDATION', 'users[2].email');
    assert.match(String(refused.message), /nothing was imported/);
    assert.deepEqual(strip(await app.org<OrgBackup>('export.backup')), strip(before));
  });

  it('refuses a list that contradicts itself, naming every problem', async () => {
    const refused = await rejectsWith(
      app.org('import.replace', {
        departments: [
          { key: 'a', parentKey: 'b', name: 'A' },
          { key: 'b', parentKey: 'a', name: 'B' },
          { key: 'c', parentKey: 'ghost', name: 'C' },
          { key: 'c', parentKey: null, name: 'C2' },
        ],
        users: [
          { account: 'u1', name: 'U', departments: [{ departmentKey: 'zzz' }] },
          { account: 'u1', name: 'U again', departments: [] },
          { account: 'bad account!', name: 'B', departments: [] },
        ],
      }),
      'QIAO_VALIDATION',
    );
    const problems = (refused.problems as Array<{ field: string }>).map((p) => p.field);
    for (const f of ['departments[3].key', 'departments[2].parentKey', 'users[0].departments[0].departmentKey', 'users[1].account', 'users[2].account']) {
      assert.ok(problems.includes(f), `${f} is named: ${problems.join(', ')}`);
    }
    assert.ok(problems.some((f) => /departments\[[01]\]\.parentKey/.test(f)), 'the cycle is named');
    assert.deepEqual(await depts(), []);
  });
});
