import assert from 'node:assert/strict';
import ExcelJS from 'exceljs';
import JSZip from 'jszip';
import { forEachDatabase } from '../../../../test/support/databases.ts';
import { select } from '../../db/sql.ts';
import { addUser, buildTree, rejectsWith, startOrgApp, type OrgApp } from '../test-kit.ts';

async function workbook(rows: unknown[][]): Promise<string> {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet('成员');
  for (const r of rows) ws.addRow(r);
  return Buffer.from(await wb.xlsx.writeBuffer()).toString('base64');
}

async function readSheet(base64: string): Promise<string[][]> {
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(Buffer.from(base64, 'base64') as never);
  const out: string[][] = [];
  wb.worksheets[0].eachRow((row) => out.push((row.values as unknown[]).slice(1).map((v) => (v === null || v === undefined ? '' : String(v)))));
  return out;
}

const HEADER = ['帐号', '姓名', '性别', '手机', '座机', '短号', '邮箱', '职务', '权重', '工龄'];

forEachDatabase('org Excel import/export per department', ({ url }) => {
  let app: OrgApp;
  let d: Record<string, number>;
  const count = async () => Number((await select<{ n: number | string }>(app.db, 'SELECT COUNT(*) AS n FROM users'))[0].n);

  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url());
    d = await buildTree(app, { 公司: { 销售部: {}, 研发部: {} } });
    await app.org('customFields.create', { key: 'seniority', label: '工龄', type: 'number' });
  });
  after(async () => app?.stop());

  it('offers a downloadable template with the standard columns and the custom fields', async () => {
    const t = await app.org('export.xlsxTemplate', { departmentId: d['销售部'] });
    assert.equal(t.contentType, 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    assert.equal(t.filename, '销售部-template.xlsx');
    assert.deepEqual(await readSheet(t.data), [HEADER]);
  });

  it('imports people into the chosen department with position, weight and custom values, keeping their other departments', async () => {
    const existing = await addUser(app, 'already.here', [d['研发部']]);
    const data = await workbook([
      HEADER,
      ['xs.001', '销售一', '男', '13800000001', '0756-1', '601', 'xs1@example.com', '经理', 10, 3],
      ['xs.002', '销售二', '女', 13800000002, '', '', '', '', '', ''],
      [],
      ['already.here', '老员工', '', '', '', '', '', '兼职', 1, ''],
    ]);
    const r = await app.org('import.xlsx', { departmentId: d['销售部'], data });
    assert.deepEqual(r.users, { created: 2, updated: 1, unchanged: 0 });
    const list = await app.org('users.list', { departmentId: d['销售部'] });
    assert.deepEqual(list.users.map((u: { account: string }) => u.account), ['xs.001', 'already.here', 'xs.002']);
    const one = list.users[0];
    assert.equal(one.gender, 'male');
    assert.equal(one.shortNumber, '601');
    assert.deepEqual(one.customFields, { seniority: 3 });
    assert.deepEqual(one.departments, [{ departmentId: d['销售部'], position: '经理', weight: 10 }]);
    assert.equal(list.users[2].mobile, '13800000002', 'a phone number typed as a number stays whole');
    const kept = await app.org('users.get', { id: existing });
    assert.deepEqual(kept.departments.map((m: { departmentId: number }) => m.departmentId).sort(), [d['销售部'], d['研发部']].sort());
    assert.equal(kept.name, '老员工');
  });

  it('is idempotent: the department’s own export imports back with nothing to change', async () => {
    const users = await count();
    const out = await app.org('export.xlsx', { departmentId: d['销售部'] });
    assert.equal(out.filename, '销售部.xlsx');
    const rows = await readSheet(out.data);
    assert.deepEqual(rows[0], HEADER);
    assert.equal(rows.length, 4);
    const r = await app.org('import.xlsx', { departmentId: d['销售部'], data: out.data });
    assert.deepEqual(r.users, { created: 0, updated: 0, unchanged: 3 });
    assert.equal(await count(), users);
  });

  it('reports each bad row with its row number, column and problem, and imports nothing', async () => {
    const users = await count();
    const data = await workbook([
      HEADER,
      ['good.one', '好', '', '', '', '', '', '', '', ''],
      ['bad.mail', '坏', '', '', '', '', 'no-at-sign', '', '', ''],
      ['no.name', '', '', '', '', '', '', '', '', ''],
      ['good.one', '重复', '', '', '', '', '', '', '', ''],
      ['bad.weight', '权', '', '', '', '', '', '', 'heavy', 'x'],
      ['bad acct', '空格', '', '', '', '', '', '', '', ''],
      ['long.name', 'x'.repeat(10_240), '', '', '', '', '', '', '', ''],
    ]);
    const e = await rejectsWith(app.org('import.xlsx', { departmentId: d['销售部'], data }), 'QIAO_VALIDATION');
    const problems = (e.problems as Array<{ row: number; column: string; message: string }>).map((p) => [p.row, p.column?.split(' ')[0], p.message]);
    assert.deepEqual(
      problems.map(([row, col]) => [row, col]),
      [[3, 'G'], [4, 'B'], [5, 'A'], [6, 'I'], [6, 'J'], [7, 'A'], [8, 'B']],
    );
    assert.match(String(problems[2][2]), /appears twice: rows 2 and 5/);
    assert.match(String(e.message), /row 3, column G \(邮箱\)/);
    assert.equal(await count(), users, 'not even the good row');
  });

  it('refuses a file that is not an xlsx, an old .xls, a zip that is not a workbook, and an unknown column', async () => {
    const text = Buffer.from('帐号,姓名\nzhang,张\n').toString('base64');
    assert.match(String((await rejectsWith(app.org('import.xlsx', { departmentId: d['销售部'], data: text }), 'QIAO_VALIDATION', 'data')).message), /not an Excel \.xlsx workbook/);
    const xls = Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(512)]).toString('base64');
    assert.match(String((await rejectsWith(app.org('import.xlsx', { departmentId: d['销售部'], data: xls }), 'QIAO_VALIDATION', 'data')).message), /97-2003/);
    const zip = new JSZip();
    zip.file('hello.txt', 'not a workbook');
    const notBook = (await zip.generateAsync({ type: 'nodebuffer' })).toString('base64');
    assert.match(String((await rejectsWith(app.org('import.xlsx', { departmentId: d['销售部'], data: notBook }), 'QIAO_VALIDATION', 'data')).message), /not an Excel/);
    const truncated = Buffer.from(await workbook([HEADER]), 'base64').subarray(0, 200).toString('base64');
    await rejectsWith(app.org('import.xlsx', { departmentId: d['销售部'], data: truncated }), 'QIAO_VALIDATION', 'data');
    const odd = await workbook([[...HEADER, '爱好']]);
    const e = await rejectsWith(app.org('import.xlsx', { departmentId: d['销售部'], data: odd }), 'QIAO_VALIDATION', 'header');
    assert.match(String(e.message), /row 1, column K: unknown column "爱好"/);
    const noName = await workbook([['帐号', '手机']]);
    assert.match(String((await rejectsWith(app.org('import.xlsx', { departmentId: d['销售部'], data: noName }), 'QIAO_VALIDATION', 'header')).message), /required column "姓名"/);
    await rejectsWith(app.org('import.xlsx', { departmentId: 999999, data: odd }), 'QIAO_NOT_FOUND', 'departmentId');
  });
});
