import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { startOrgApp, type OrgApp } from './test-kit.ts';

forEachDatabase('org admin actions over the admin API', ({ url }) => {
  let app: OrgApp;
  let base: string;
  let token: string;
  const http = async (method: string, p: string, body?: object) => {
    const res = await fetch(`${base}/api/admin${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url(), ['system', 'eventlog', 'org', 'admin-api']);
    base = (await app.broker.call<{ url: string }>('admin-api.address')).url;
    token = fs.readFileSync(path.join(app.dataDir, 'cli.token'), 'utf8').trim();
  });
  after(async () => app?.stop());

  it('mounts every org admin action under /api/admin/org without clashes', async () => {
    const routes = await app.broker.call<string[]>('admin-api.routes');
    const org = routes.filter((r) => r.includes('→ org.'));
    for (const r of ['POST /api/admin/org/departments → org.departments.create', 'POST /api/admin/org/departments/:id/move → org.departments.move', 'POST /api/admin/org/import/rtx → org.import.rtx']) {
      assert.ok(org.includes(r), `${r} is mounted`);
    }
    const { collectAdminActions } = await import('../admin-api/admin-actions.ts');
    const declared = [...collectAdminActions(app.broker).actions.values()].filter((a) => a.action.startsWith('org.') && a.route);
    assert.equal(org.length, declared.length, 'no two org actions share a METHOD and path');
    const clientActions = routes.filter((r) => r.includes('org.client.'));
    assert.deepEqual(clientActions, [], 'client reads are not admin routes');
  });

  it('creates, reads, moves and deletes through REST paths, path ids converted, errors as {code, field}', async () => {
    const a = await http('POST', '/org/departments', { name: '总部' });
    assert.equal(a.status, 200);
    const b = await http('POST', '/org/departments', { name: '分部', parentId: a.body.id });
    const moved = await http('POST', `/org/departments/${a.body.id}/move`, { parentId: b.body.id });
    assert.equal(moved.status, 422);
    assert.deepEqual([moved.body.error.code, moved.body.error.field], ['QIAO_VALIDATION', 'parentId']);
    const got = await http('GET', `/org/departments/${b.body.id}`);
    assert.deepEqual(got.body.path, [{ id: a.body.id, name: '总部' }]);
    const list = await http('GET', `/org/users?departmentId=${b.body.id}&page=1&pageSize=10`);
    assert.deepEqual([list.status, list.body.total], [200, 0]);
    const del = await http('DELETE', `/org/departments/${a.body.id}`);
    assert.deepEqual([del.status, del.body.error.code], [409, 'QIAO_CONFLICT']);
    assert.equal((await http('DELETE', `/org/departments/${b.body.id}`)).status, 200);
  });
});
