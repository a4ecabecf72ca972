import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import iconv from 'iconv-lite';
import { forEachDatabase } from '../../../../test/support/databases.ts';
import { readEvents } from '../../eventlog/event-log.ts';
import { select } from '../../db/sql.ts';
import { rejectsWith, startOrgApp, type OrgApp } from '../test-kit.ts';
import { importRtx } from './transfer.ts';
import { sampleBuffer } from './rtx-sample.ts';

const gbk = (s: string) => iconv.encode(s, 'gbk');
const b64 = (b: Buffer) => b.toString('base64');

const ORG = `<?xml version="1.0" encoding="gb2312"?>
<enterprise name="腾讯通样例">
  <departments>
    <department name="总经办" describe="公司领导">
      <user uid="boss" name="王总" rtxno="10001" mobile="13900000001" email="boss@example.com" phone="0755-1" gender="0" position="总经理"/>
      <department name="秘书处">
        <user uid="secretary" name="李秘书" gender="1"/>
      </department>
    </department>
    <department name="研发中心">
      <user uid="dev.a" name="张工" gender="男" mobile="13800000002"/>
      <user uid="boss" name="王总" rtxno="10001" mobile="13900000001" email="boss@example.com" phone="0755-1" gender="0" position="技术顾问"/>
    </department>
  </departments>
</enterprise>
`;

forEachDatabase('org RTX organisation XML import/export', ({ url }) => {
  let app: OrgApp;
  const count = async (table: string) => Number((await select<{ n: number | string }>(app.db, `SELECT COUNT(*) AS n FROM ${table}`))[0].n);

  before(async function () {
    this.timeout(30_000);
    app = await startOrgApp(url());
  });
  after(async () => app?.stop());

  it('imports a GB2312 file: nested departments, people in several departments with positions, gender, rtxno', async () => {
    const r = await app.org('import.rtx', { data: b64(gbk(ORG)) });
    assert.equal(r.encoding, 'gb2312');
    assert.deepEqual(r.departments, { created: 3, updated: 0, unchanged: 0 });
    assert.deepEqual(r.users, { created: 3, updated: 0, unchanged: 0 });
    const { tree } = await app.org('departments.tree');
    const top = tree.find((n: { name: string }) => n.name === '总经办');
    assert.equal(top.description, '公司领导');
    assert.deepEqual(top.children.map((c: { name: string }) => c.name), ['秘书处']);
    const boss = (await app.org('users.list', { search: 'boss' })).users[0];
    assert.equal(boss.name, '王总');
    assert.equal(boss.gender, 'male');
    assert.equal(boss.externalId, '10001');
    assert.deepEqual(boss.departments.map((m: { position: string }) => m.position).sort(), ['总经理', '技术顾问'].sort());
    assert.equal((await app.org('users.list', { search: 'secretary' })).users[0].gender, 'female');
    assert.equal(boss.authorised, false);
    const [ev] = (await readEvents(app.db, 0, 1000, ['org.imported'])).slice(-1);
    assert.deepEqual((ev.payload as { users: object }).users, { created: 3, updated: 0, unchanged: 0 });
  });

  it('reads the file exactly as RTX writes it: one line, every attribute, GBK-only characters under a gb2312 label, people outside departments', async () => {
    // RTX's USERSYNC export: declared gb2312, written in code page 936 (镕 and 堃 are GBK-only), no line breaks,
    // fax/homepage/address/age attributes Qiao does not keep, and unassigned people directly under <departments>.
    const rtx =
      '<?xml version="1.0" encoding="gb2312" ?><enterprise name="示例公司" postcode="" address="" phone="" email=""><departments>' +
      '<department name="公司" describe="总部"><user uid="zhurongji" name="朱镕基" email="" mobile="" rtxno="1002" phone="" position="" fax="" homepage="" address="" age="0" gender="0"/>' +
      '<department name="技术部" describe=""><department name="开发组" describe="写代码 &amp; &quot;测试&quot; &lt;一起&gt;">' +
      '<user uid="zhurongji" name="朱镕基" email="" mobile="" rtxno="1002" phone="" position="" fax="" homepage="" address="" age="0" gender="0"/>' +
      '<user uid="wangkun" name="王堃" email="" mobile="" rtxno="8888" phone="" position="组长" fax="" homepage="" address="" age="0" gender="1"/>' +
      '</department></department></department><user uid="floating" name="未分配" email="" mobile="" rtxno="1003" phone="" position="" fax="" homepage="" address="" age="0" gender="0"/>' +
      '</departments></enterprise>';
    const r = await app.org('import.rtx', { data: b64(gbk(rtx)) });
    assert.deepEqual([r.departments.created, r.users.created], [3, 3]);
    const zhu = (await app.org('users.list', { search: 'zhurongji' })).users[0];
    assert.equal(zhu.name, '朱镕基');
    assert.equal(zhu.departments.length, 2);
    const wang = (await app.org('users.list', { search: 'wangkun' })).users[0];
    assert.deepEqual([wang.name, wang.gender, wang.externalId, wang.departments[0].position], ['王堃', 'female', '8888', '组长']);
    assert.deepEqual((await app.org('users.list', { search: 'floating' })).users[0].departments, []);
    const dev = (await app.org('departments.list')).departments.find((x: { name: string }) => x.name === '开发组');
    assert.equal(dev.description, '写代码 & "测试" <一起>');
    const exported = iconv.decode(Buffer.from((await app.org('export.rtx', {})).data, 'base64'), 'gbk');
    assert.match(exported, /^<\?xml version="1.0" encoding="gb2312"\?>/);
    assert.match(exported, /<user uid="floating" name="未分配" rtxno="1003" gender="0"\/>\n  <\/departments>/, 'unassigned people stay directly under <departments>');
    for (const uid of ['zhurongji', 'wangkun', 'floating']) {
      const id = (await app.org('users.list', { search: uid })).users[0].id;
      await app.org('users.resign', { id });
    }
  });

  it('re-importing the same file changes nothing and duplicates nobody; a changed file updates in place', async () => {
    const usersBefore = await count('users');
    const v0 = (await app.org('version')).version;
    const again = await app.org('import.rtx', { data: b64(gbk(ORG)) });
    assert.deepEqual(again.users, { created: 0, updated: 0, unchanged: 3 });
    assert.deepEqual(again.departments, { created: 0, updated: 0, unchanged: 3 });
    assert.equal(await count('users'), usersBefore);
    const raw = await app.org('changes', { since: v0 });
    assert.deepEqual([raw.users.changed, raw.departments.changed], [[], []], 're-import bumps no row, so clients download nothing');
    const changed = ORG.replace('张工', '张工程师').replace('<user uid="secretary" name="李秘书" gender="1"/>', '');
    const r = await app.org('import.rtx', { data: b64(gbk(changed)) });
    assert.deepEqual(r.users, { created: 0, updated: 1, unchanged: 1 });
    assert.equal((await app.org('users.list', { search: 'dev.a' })).users[0].name, '张工程师');
    assert.equal(await count('users'), usersBefore);
  });

  it('reads UTF-8 (declared, undeclared, with a BOM)', async () => {
    const utf = ORG.replace('encoding="gb2312"', 'encoding="UTF-8"').replace(/boss/g, 'boss8').replace(/secretary/g, 'sec8').replace(/dev\.a/g, 'dev8');
    assert.equal((await app.org('import.rtx', { data: b64(Buffer.from(utf)) })).encoding, 'UTF-8');
    const bare = utf.replace(/<\?xml[^>]*\?>\n/, '');
    assert.deepEqual((await app.org('import.rtx', { data: b64(Buffer.from(bare)) })).users.unchanged, 3);
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(utf)]);
    assert.deepEqual((await app.org('import.rtx', { data: b64(bom) })).users.unchanged, 3);
  });

  it('exports RTX XML in GB2312 (characters GBK lacks as character references) and UTF-8, and the export imports back unchanged', async () => {
    const id = (await app.org('users.list', { search: 'dev.a' })).users[0].id;
    await app.org('users.update', { id, name: '张工😀' });
    const out = await app.org('export.rtx', {});
    const xml = Buffer.from(out.data, 'base64');
    assert.match(xml.subarray(0, 60).toString('latin1'), /encoding="gb2312"/);
    assert.match(iconv.decode(xml, 'gbk'), /name="张工&#x1f600;"/);
    const r = await app.org('import.rtx', { data: out.data });
    assert.equal(r.users.created, 0);
    assert.equal(r.users.updated, 0, 'the round trip is lossless');
    assert.equal((await app.org('users.get', { id })).name, '张工😀');
    const utf = Buffer.from((await app.org('export.rtx', { encoding: 'utf-8' })).data, 'base64').toString('utf8');
    assert.match(utf, /name="张工😀"/);
  });

  it('refuses duplicate accounts naming both lines, and writes nothing of that file', async () => {
    const users = await count('users');
    const twice = `<?xml version="1.0" encoding="UTF-8"?><enterprise><departments><department name="重复">
<user uid="dup.one" name="A"/>
<user uid="fine.one" name="B"/>
<user uid="dup.one" name="A"/>
</department></departments></enterprise>`;
    const e = await rejectsWith(app.org('import.rtx', { data: b64(Buffer.from(twice)) }), 'QIAO_VALIDATION');
    assert.match(String(e.message), /"dup\.one" appears twice in the same department: lines 2 and 4/);
    const conflicting = twice.replace('<user uid="dup.one" name="A"/>\n</department>', '</department><department name="别处"><user uid="dup.one" name="Other"/></department>');
    const e2 = await rejectsWith(app.org('import.rtx', { data: b64(Buffer.from(conflicting)) }), 'QIAO_VALIDATION');
    assert.match(String(e2.message), /appears twice with different details/);
    assert.equal(await count('users'), users);
  });

  it('reports every bad row with its line and refuses the whole file', async () => {
    const users = await count('users');
    const depts = await count('departments');
    const bad = `<?xml version="1.0" encoding="UTF-8"?>
<enterprise><departments><department name="好部门">
<user uid="ok.one" name="OK"/>
<user uid="bad mail" name="X"/>
<user uid="mail.two" name="Y" email="not-mail"/>
<user uid="g.two" name="Z" gender="unknown-sex"/>
</department></departments></enterprise>`;
    const e = await rejectsWith(app.org('import.rtx', { data: b64(Buffer.from(bad)) }), 'QIAO_VALIDATION');
    const problems = e.problems as Array<{ line: number; column: string }>;
    assert.deepEqual(problems.map((p) => [p.line, p.column]), [[4, 'uid'], [5, 'email'], [6, 'gender']]);
    assert.equal(await count('users'), users);
    assert.equal(await count('departments'), depts, 'not even the good department of a refused file');
  });

  it('refuses a DOCTYPE: external entities (XXE) and entity expansion bombs never get parsed', async () => {
    const xxe = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE enterprise [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<enterprise><departments><department name="&xxe;"><user uid="x1" name="&xxe;"/></department></departments></enterprise>`;
    const e = await rejectsWith(app.org('import.rtx', { data: b64(Buffer.from(xxe)) }), 'QIAO_VALIDATION', 'data');
    assert.match(String(e.message), /DOCTYPE declarations are not allowed/);
    const lol = ['<!ENTITY lol0 "lol">', ...Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`)].join('\n');
    const laughs = `<?xml version="1.0"?>\n<!DOCTYPE enterprise [\n${lol}\n]>\n<enterprise><departments><department name="&lol9;"/></departments></enterprise>`;
    const before = process.memoryUsage().rss;
    const e2 = await rejectsWith(app.org('import.rtx', { data: b64(Buffer.from(laughs)) }), 'QIAO_VALIDATION', 'data');
    assert.match(String(e2.message), /DOCTYPE/);
    assert.ok(process.memoryUsage().rss - before < 50 * 1024 * 1024, 'no expansion happened');
    // an entity reference without a declaration is simply malformed
    const undeclared = `<enterprise><departments><department name="&lol9;"/></departments></enterprise>`;
    await rejectsWith(app.org('import.rtx', { data: b64(Buffer.from(undeclared)) }), 'QIAO_VALIDATION', 'data');
    assert.equal((await app.org('users.list', { search: 'x1' })).total, 0);
  });

  it('reports malformed XML with line and column', async () => {
    const broken = `<?xml version="1.0" encoding="UTF-8"?>\n<enterprise>\n<departments>\n<department name="A">\n<user uid="a" name="b">\n</department></departments></enterprise>`;
    const e = await rejectsWith(app.org('import.rtx', { data: b64(Buffer.from(broken)) }), 'QIAO_VALIDATION', 'data');
    assert.match(String(e.message), /not well-formed XML at line 6, column \d+/);
    assert.equal(e.line, 6);
    const notRtx = `<html><body/></html>`;
    assert.match(String((await rejectsWith(app.org('import.rtx', { data: b64(Buffer.from(notRtx)) }), 'QIAO_VALIDATION', 'data')).message), /root element must be <enterprise>/);
    await rejectsWith(app.org('import.rtx', { data: '' }), 'QIAO_VALIDATION', 'data');
  });

  it('reports bytes that are not valid GBK (or UTF-8) with their line and column instead of replacing them', async () => {
    const head = gbk('<?xml version="1.0" encoding="GBK"?>\n<enterprise><departments>\n<department name="研发">\n<user uid="u1" name="');
    const bad = Buffer.concat([head, Buffer.from([0xff, 0xfe]), gbk('"/></department></departments></enterprise>')]);
    const e = await rejectsWith(app.org('import.rtx', { data: b64(bad) }), 'QIAO_VALIDATION', 'data');
    assert.match(String(e.message), /not valid GBK at line 4, column 22/);
    const utf = Buffer.concat([Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<enterprise name="'), Buffer.from([0xc3, 0x28]), Buffer.from('"/>')]);
    assert.match(String((await rejectsWith(app.org('import.rtx', { data: b64(utf) }), 'QIAO_VALIDATION', 'data')).message), /not valid UTF-8/);
    const big5 = Buffer.from('<?xml version="1.0" encoding="Big5"?><enterprise/>');
    assert.match(String((await rejectsWith(app.org('import.rtx', { data: b64(big5) }), 'QIAO_VALIDATION', 'data')).message), /"Big5", which is not supported/);
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<enterprise/>', 'utf16le')]);
    assert.match(String((await rejectsWith(app.org('import.rtx', { data: b64(utf16) }), 'QIAO_VALIDATION', 'data')).message), /UTF-16/);
  });

  it('refuses a 200 MB file by its size, without reading it, and a 200 MB stream once it passes the limit', async function () {
    this.timeout(120_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-rtx-big-'));
    try {
      const file = path.join(dir, 'huge.xml');
      const target = 200 * 1024 * 1024;
      await pipeline(Readable.from(padded(target)), fs.createWriteStream(file));
      assert.ok(fs.statSync(file).size >= target);
      const before = process.memoryUsage().rss;
      const e = await rejectsWith(app.org('import.rtx', { file }), 'QIAO_PAYLOAD_TOO_LARGE', 'file');
      assert.match(String(e.message), /import limit is 100 MiB/);
      // through an in-process stream of unknown length: read only up to the limit, in bounded memory
      const streamed = await rejectsWith(importRtx(app.db, {}, { stream: padded(target) }), 'QIAO_PAYLOAD_TOO_LARGE', 'stream');
      assert.match(String(streamed.message), /more than that/);
      assert.ok(process.memoryUsage().rss - before < 150 * 1024 * 1024, 'the file was never held in memory');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes the size limit from the org.import.maxBytes setting; ordinary admins may not read server files', async () => {
    await app.broker.call('system.settings.set', { key: 'org.import.maxBytes', value: 100 });
    await rejectsWith(app.org('import.rtx', { data: b64(Buffer.from(ORG)) }), 'QIAO_PAYLOAD_TOO_LARGE', 'data');
    await app.broker.call('system.settings.set', { key: 'org.import.maxBytes', value: 0 });
    await rejectsWith(app.org('import.rtx', { file: '/etc/passwd' }, { admin: { id: 5, account: 'helpdesk', role: 'admin' } }), 'QIAO_FORBIDDEN', 'file');
    await rejectsWith(app.org('import.rtx', { file: '/nonexistent/org.xml' }), 'QIAO_NOT_FOUND', 'file');
  });

  it('imports a generated organisation from a server-side file and from a stream', async function () {
    this.timeout(60_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-rtx-'));
    try {
      const file = path.join(dir, 'org.xml');
      fs.writeFileSync(file, await sampleBuffer({ departments: 120, users: 2000 }));
      const r = await app.org('import.rtx', { file });
      assert.deepEqual(r.users, { created: 2000, updated: 0, unchanged: 0 });
      assert.equal(r.departments.created, 120);
      const user7 = (await app.org('users.list', { search: 'user7', pageSize: 500 })).users.find((u: { account: string }) => u.account === 'user7');
      assert.equal(user7.name, '用户7');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A well-formed start, then comments forever: the parser keeps nothing, so only the byte limit stops it. */
async function* padded(total: number): AsyncGenerator<Buffer> {
  yield Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<enterprise><departments><department name="pad">\n');
  const block = Buffer.from(`<!-- ${'x'.repeat(1 << 16)} -->\n`);
  for (let sent = 0; sent < total; sent += block.length) yield block;
}
