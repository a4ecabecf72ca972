import assert from 'node:assert/strict';
import iconv from 'iconv-lite';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { rejectsWith, startOrgApp, type OrgApp } from './test-kit.ts';

const RTX = { orgSyncSource: 'rtx' };

forEachDatabase('org records owned by an external master (RTX bridge hook)', ({ url }) => {
  let app: OrgApp;
  let dept: number;
  let user: number;
  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url());
    await app.broker.call('system.settings.set', { key: 'org.readOnlySources', value: ['rtx'] });
    // The sync writes its records through the same actions, saying which source it is.
    dept = (await app.org<{ id: number }>('departments.create', { name: 'RTX部门', source: 'rtx', externalId: '10' }, RTX)).id;
    user = (await app.org<{ id: number }>('users.create', { account: 'rtx.user', name: 'R', source: 'rtx', departments: [{ departmentId: dept }] }, RTX)).id;
  });
  after(async () => app?.stop());

  it('refuses admin edits of RTX-managed people and departments with QIAO_FORBIDDEN saying RTX manages them', async () => {
    const e = await rejectsWith(app.org('users.update', { id: user, name: 'changed' }), 'QIAO_FORBIDDEN');
    assert.match(String(e.message), /managed by RTX/);
    await rejectsWith(app.org('users.setMemberships', { id: user, departments: [] }), 'QIAO_FORBIDDEN');
    await rejectsWith(app.org('users.resign', { id: user }), 'QIAO_FORBIDDEN');
    await rejectsWith(app.org('departments.update', { id: dept, name: 'x' }), 'QIAO_FORBIDDEN');
    await rejectsWith(app.org('departments.move', { id: dept, parentId: null, sortOrder: 3 }), 'QIAO_FORBIDDEN');
    await rejectsWith(app.org('departments.delete', { id: dept }), 'QIAO_FORBIDDEN');
    await rejectsWith(app.org('users.create', { account: 'fake.rtx', name: 'F', source: 'rtx' }), 'QIAO_FORBIDDEN');
    assert.equal((await app.org('users.get', { id: user })).name, 'R');
  });

  it('an import cannot change them either, and nothing of that import is written', async () => {
    const xml = iconv.encode(
      `<?xml version="1.0" encoding="gb2312"?><enterprise><departments><department name="新部门"><user uid="fresh.one" name="F"/><user uid="rtx.user" name="改名"/></department></departments></enterprise>`,
      'gbk',
    );
    const e = await rejectsWith(app.org('import.rtx', { data: xml.toString('base64') }), 'QIAO_VALIDATION');
    assert.match(String(e.message), /managed by RTX/);
    assert.equal((await app.org('users.list', { search: 'fresh.one' })).total, 0);
  });

  it('lets the sync itself write, and Qiao-only settings (enable/disable, secrecy) stay with the admin', async () => {
    assert.equal((await app.org('users.update', { id: user, name: 'R2' }, RTX)).name, 'R2');
    assert.equal((await app.org('users.disable', { id: user })).status, 'disabled');
    assert.equal((await app.org('users.enable', { id: user })).status, 'active');
    await app.org('users.setSecrecy', { userIds: [user], mobile: true });
    await rejectsWith(app.org('users.update', { id: user, name: 'x' }, { orgSyncSource: 'ldap' }), 'QIAO_FORBIDDEN');
  });

  it('allows edits again once the source is no longer read-only', async () => {
    await app.broker.call('system.settings.set', { key: 'org.readOnlySources', value: [] });
    assert.equal((await app.org('users.update', { id: user, name: 'local' })).name, 'local');
    assert.equal((await app.org('departments.update', { id: dept, name: '本地' })).name, '本地');
  });
});
