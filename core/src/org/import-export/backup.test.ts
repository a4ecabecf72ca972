import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createTestDatabase, forEachDatabase, type TestDatabase } from '../../../../test/support/databases.ts';
import { addUser, buildTree, rejectsWith, startOrgApp, type OrgApp } from '../test-kit.ts';
import type { OrgBackup } from './backup.ts';

forEachDatabase('org lossless backup (export and import)', ({ url, dialect }) => {
  let app: OrgApp;
  let backup: OrgBackup;
  let d: Record<string, number>;

  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url());
    d = await buildTree(app, { 总部: { 研发: { 平台: {} }, 销售: {} } });
    await app.org('departments.update', { id: d['研发'], alias: 'RD', description: '研发中心', sortOrder: 2 });
    await app.org('customFields.create', { key: 'political', label: '政治面貌', type: 'select', options: ['群众', '党员'] });
    const a = await addUser(app, 'alice', [d['研发'], d['销售']], { gender: 'female', mobile: '1', email: 'a@x.cn', customFields: { political: '党员' } });
    await app.org('users.setMemberships', { id: a, departments: [{ departmentId: d['研发'], position: '架构师', weight: 7 }, { departmentId: d['销售'] }] });
    await app.org('users.setSecrecy', { userIds: [a], mobile: true });
    const b = await addUser(app, 'bob', [d['平台']], { authType: 'external' });
    await app.org('users.disable', { id: b });
    const c = await addUser(app, 'carol', [d['销售']]);
    await app.org('users.resign', { id: c });
    await app.org('visibility.create', { kind: 'hide', name: '隐藏平台', targets: { departments: [d['平台']] }, whitelist: { users: [a] } });
    await app.org('display.set', { nameFormat: 'name(account)' });
    backup = await app.org<OrgBackup>('export.backup');
  });
  after(async () => app?.stop());

  it('exports every department, person (resigned too), membership, custom field, rule and display setting with their ids', () => {
    assert.equal(backup.format, 'qiao-org-backup');
    assert.equal(backup.departments.length, 4);
    assert.deepEqual(backup.users.map((u) => [u.account, u.status]), [['alice', 'active'], ['bob', 'disabled'], ['carol', 'resigned']]);
    const alice = backup.users[0];
    assert.deepEqual(alice.secrecy, { mobile: true, phone: false, email: false });
    assert.deepEqual(alice.customFields, { political: '党员' });
    assert.equal(backup.users[1].authType, 'external');
    assert.equal(backup.visibilityRules.length, 1);
    assert.deepEqual(backup.display, { nameFormat: 'name(account)', sortRule: 'weight' });
  });

  it('restores into an empty database with the same ids, and the restored directory reads the same', async function () {
    this.timeout(60_000);
    let other: TestDatabase | undefined;
    let restored: OrgApp | undefined;
    try {
      other = await createTestDatabase(dialect);
      restored = await startOrgApp(other.url);
      // a file on the server, as the CLI would hand it over
      const file = path.join(restored.dataDir, 'org-backup.json');
      fs.writeFileSync(file, JSON.stringify(backup));
      const r = await restored.org('import.backup', { file });
      assert.deepEqual(r.users, { created: 3, updated: 0, unchanged: 0 });
      const again = await restored.org<OrgBackup>('export.backup');
      const strip = (b: OrgBackup) => ({ ...b, exportedAt: '', version: 0 });
      assert.deepEqual(strip(again), strip(backup));
      // ids continue after the restored ones (PostgreSQL sequences moved on)
      const next = await addUser(restored, 'after.restore');
      assert.ok(next > Math.max(...backup.users.map((u) => u.id)));
      const dept = await restored.org<{ id: number }>('departments.create', { name: '新部门' });
      assert.ok(dept.id > Math.max(...backup.departments.map((x) => x.id)));
      // importing the same backup again changes nothing
      const twice = await restored.org('import.backup', { backup });
      assert.deepEqual(twice.users, { created: 0, updated: 0, unchanged: 3 });
    } finally {
      await restored?.stop();
      await other?.drop();
    }
  });

  it('refuses a backup whose account belongs to another id here, a cycle, duplicates and bad fields, writing nothing', async () => {
    const clash = structuredClone(backup);
    clash.users[0].id = 4242;
    const e = await rejectsWith(app.org('import.backup', { backup: clash }), 'QIAO_VALIDATION', 'account');
    assert.match(String(e.message), /account "alice" belongs to user \d+ here, but the file gives it id 4242/);
    const cycle = structuredClone(backup);
    cycle.departments[0].parentId = cycle.departments[3].id;
    await rejectsWith(app.org('import.backup', { backup: cycle }), 'QIAO_VALIDATION');
    const dup = structuredClone(backup);
    dup.users.push({ ...dup.users[1], id: 999 });
    assert.match(String((await rejectsWith(app.org('import.backup', { backup: dup }), 'QIAO_VALIDATION')).message), /"bob" appears twice: users\[1\] and users\[3\]/);
    const bad = structuredClone(backup);
    bad.users[0].email = 'x'.repeat(10_240);
    await rejectsWith(app.org('import.backup', { backup: bad }), 'QIAO_VALIDATION', 'users[0].email');
    await rejectsWith(app.org('import.backup', { backup: { format: 'something-else' } }), 'QIAO_VALIDATION', 'format');
    await rejectsWith(app.org('import.backup', { data: Buffer.from('{ not json').toString('base64') }), 'QIAO_VALIDATION', 'data');
    const after = await app.org<OrgBackup>('export.backup');
    assert.deepEqual(after.users.map((u) => u.id), backup.users.map((u) => u.id));
  });
});
