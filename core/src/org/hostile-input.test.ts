import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { select } from '../db/sql.ts';
import { rejectsWith, startOrgApp, type OrgApp } from './test-kit.ts';

/** Text that breaks naive SQL, LIKE patterns, Sequelize replacements and HTML, in one go. */
const NASTY = [`Robert'); DROP TABLE users;--`, `" OR 1=1 --`, `%_?$1:name\\'`, `<script>alert(1)</script>`, `中文'"\``, `:id ? $2`];
const HUGE = 'x'.repeat(10 * 1024);

forEachDatabase('org hostile input: SQL metacharacters, 10 KB strings, control characters', ({ url }) => {
  let app: OrgApp;
  let dept: number;
  let user: number;
  let rule: number;
  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url());
    dept = (await app.org<{ id: number }>('departments.create', { name: 'base' })).id;
    user = (await app.org<{ id: number }>('users.create', { account: 'base.user', name: 'B', departments: [{ departmentId: dept }] })).id;
    await app.org('customFields.create', { key: 'note', label: '备注', type: 'text' });
    rule = (await app.org<{ id: number }>('visibility.create', { kind: 'hide', targets: { users: [user] } })).id;
  });
  after(async () => app?.stop());

  // [action, params builder, the field as the error names it]
  const cases = (): Array<[string, (v: string) => object, string]> => [
    ['departments.create', (v) => ({ name: v }), 'name'],
    ['departments.create', (v) => ({ name: 'n', alias: v }), 'alias'],
    ['departments.create', (v) => ({ name: 'n', description: v }), 'description'],
    ['departments.create', (v) => ({ name: 'n', externalId: v }), 'externalId'],
    ['departments.update', (v) => ({ id: dept, name: v }), 'name'],
    ['departments.update', (v) => ({ id: dept, alias: v }), 'alias'],
    ['departments.update', (v) => ({ id: dept, description: v }), 'description'],
    ['users.create', (v) => ({ account: 'acc', name: v }), 'name'],
    ['users.create', (v) => ({ account: v, name: 'n' }), 'account'],
    ['users.update', (v) => ({ id: user, name: v }), 'name'],
    ['users.update', (v) => ({ id: user, mobile: v }), 'mobile'],
    ['users.update', (v) => ({ id: user, phone: v }), 'phone'],
    ['users.update', (v) => ({ id: user, shortNumber: v }), 'shortNumber'],
    ['users.update', (v) => ({ id: user, email: v }), 'email'],
    ['users.update', (v) => ({ id: user, externalId: v }), 'externalId'],
    ['users.update', (v) => ({ id: user, customFields: { note: v } }), 'customFields.note'],
    ['users.setMemberships', (v) => ({ id: user, departments: [{ departmentId: dept, position: v }] }), 'departments[0].position'],
    ['customFields.create', (v) => ({ key: 'k1', label: v, type: 'text' }), 'label'],
    ['customFields.create', (v) => ({ key: 'k2', label: 'l', type: 'select', options: [v] }), 'options[0]'],
    ['visibility.update', (v) => ({ id: rule, kind: 'hide', name: v, targets: { users: [user] } }), 'name'],
    ['users.list', (v) => ({ search: v }), 'search'],
  ];

  it('refuses a 10 KB string in every text field with a validation error naming that field', async () => {
    for (const [action, params, field] of cases()) {
      await rejectsWith(app.org(action, params(HUGE)), 'QIAO_VALIDATION', field).catch((err: Error) => {
        throw new Error(`${action} ${field}: ${err.message}`);
      });
    }
  });

  it('refuses control characters (NUL included) in every text field, naming it', async () => {
    for (const [action, params, field] of cases()) {
      await rejectsWith(app.org(action, params('a\u0000b')), 'QIAO_VALIDATION', field).catch((err: Error) => {
        throw new Error(`${action} ${field}: ${err.message}`);
      });
    }
  });

  it('stores SQL metacharacters verbatim in every free-text field and reads them back unchanged', async () => {
    for (const [i, s] of NASTY.entries()) {
      const d = await app.org('departments.create', { name: `${s}${i}`, alias: `${s}${i}`, description: s, externalId: s });
      assert.deepEqual([d.name, d.alias, d.description, d.externalId], [`${s}${i}`, `${s}${i}`, s, s]);
      const email = `o'brien${i}+x@ex"ample.com`;
      const u = await app.org('users.create', {
        account: `nasty.${i}`,
        name: s,
        mobile: s.slice(0, 60),
        phone: s.slice(0, 60),
        shortNumber: s.slice(0, 30),
        email,
        externalId: s,
        customFields: { note: s },
        departments: [{ departmentId: d.id, position: s }],
      });
      const back = await app.org('users.get', { id: u.id });
      assert.deepEqual(
        [back.name, back.mobile, back.phone, back.shortNumber, back.email, back.externalId, back.customFields.note, back.departments[0].position],
        [s, s.slice(0, 60), s.slice(0, 60), s.slice(0, 30), email, s, s, s],
      );
      assert.equal((await app.org('users.list', { search: s })).users.some((x: { id: number }) => x.id === u.id), true, 'search treats them as text');
      const r = await app.org('visibility.update', { id: rule, kind: 'hide', name: s, targets: { users: [user] } });
      assert.equal(r.name, s);
    }
    const f = await app.org('customFields.create', { key: 'k3', label: NASTY[0], type: 'select', options: NASTY });
    assert.deepEqual(f.options, NASTY);
    const [{ n }] = await select<{ n: number | string }>(app.db, 'SELECT COUNT(*) AS n FROM users');
    assert.ok(Number(n) >= NASTY.length + 1, 'the users table is still there');
  });

  it('imports: metacharacters arrive verbatim through the RTX XML, a 10 KB attribute is a line error', async () => {
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
    const xml = (name: string) =>
      `<?xml version="1.0" encoding="UTF-8"?>\n<enterprise><departments><department name="${esc(NASTY[0])}">\n<user uid="xml.nasty" name="${esc(name)}" position="${esc(NASTY[2])}"/>\n</department></departments></enterprise>`;
    await app.org('import.rtx', { data: Buffer.from(xml(NASTY[1])).toString('base64') });
    const u = (await app.org('users.list', { search: 'xml.nasty' })).users[0];
    assert.equal(u.name, NASTY[1]);
    assert.equal(u.departments[0].position, NASTY[2]);
    const e = await rejectsWith(app.org('import.rtx', { data: Buffer.from(xml(HUGE)).toString('base64') }), 'QIAO_VALIDATION');
    assert.deepEqual((e.problems as Array<{ line: number; column: string }>).map((p) => [p.line, p.column]), [[3, 'name']]);
  });

  it('refuses malformed ids and unknown ids in every place they are taken, never crashing', async () => {
    for (const [action, params, field] of [
      ['departments.get', { id: 'abc' }, 'id'],
      ['departments.get', { id: -1 }, 'id'],
      ['users.get', { id: "1' OR '1'='1" }, 'id'],
      ['client.snapshot', { viewer: '1;DROP TABLE users' }, 'viewer'],
      ['client.changes', { viewer: user, since: -5 }, 'since'],
      ['users.move', { userIds: [], toDepartmentId: dept }, 'userIds'],
    ] as Array<[string, object, string]>) {
      await rejectsWith(app.org(action, params), 'QIAO_VALIDATION', field);
    }
    await rejectsWith(app.org('users.get', { id: 2147483000 }), 'QIAO_NOT_FOUND', 'id');
  });
});
