import assert from 'node:assert/strict';
import iconv from 'iconv-lite';
import { startRtxEmulator } from './emulator.ts';
import { exportOrgXml, exportOrgXmlString, importOrgXml, ORG_XML_DECLARATION, parseOrgXml } from './org-xml.ts';
import { RtxOrg } from './rtx-org.ts';
import { control, rawRequest } from './test-support.ts';

function sampleOrg(): RtxOrg {
  const org = new RtxOrg();
  org.ensureDepartment('公司', '总部');
  org.ensureDepartment('公司\\技术部\\开发组', '写代码 & "测试" <一起>');
  org.addUser({ uid: 'zhangsan', name: '张三', gender: 0, mobile: '13800000001', email: 'zs@example.cn', phone: '010-1', position: '经理', departments: ['公司\\技术部'] });
  org.addUser({ uid: 'zhurongji', name: '朱镕基', gender: 0, departments: ['公司\\技术部\\开发组', '公司'] });
  org.addUser({ uid: 'wangkun', name: '王堃', gender: 1, rtxno: 8888, departments: ['公司\\技术部\\开发组'] });
  org.addUser({ uid: 'floating', name: '未分配' });
  return org;
}

describe('rtx emulator: organisation XML (USERSYNC)', () => {
  it('exports GBK bytes under a gb2312 declaration, GBK-only characters included', () => {
    const bytes = exportOrgXml(sampleOrg(), { name: '示例公司' });
    assert.ok(bytes.subarray(0, ORG_XML_DECLARATION.length).equals(Buffer.from(ORG_XML_DECLARATION, 'latin1')));
    // 镕 is E9 46 in GBK and has no GB2312 code: RTX writes the GBK bytes anyway.
    assert.ok(bytes.includes(Buffer.from([0xe9, 0x46])));
    assert.equal(bytes.includes(Buffer.from('镕', 'utf8')), false);
    const text = iconv.decode(bytes, 'gbk');
    assert.match(text, /<enterprise name="示例公司"/);
    assert.match(text, /<department name="开发组" describe="写代码 &amp; &quot;测试&quot; &lt;一起&gt;">/);
    assert.match(text, /<user uid="zhangsan" name="张三" email="zs@example.cn" mobile="13800000001" rtxno="1001" phone="010-1" position="经理" fax="" homepage="" address="" age="0" gender="0"\/>/);
  });

  it('round-trips: export → import into an empty server → export gives the same bytes', () => {
    const first = exportOrgXml(sampleOrg(), { name: '示例公司' });
    const fresh = new RtxOrg();
    const r = importOrgXml(fresh, first, 'replace');
    assert.deepEqual(r, { departments: 3, users: 4, created: 4, updated: 0 });
    assert.ok(exportOrgXml(fresh, { name: '示例公司' }).equals(first));
    const zhu = fresh.user('ZhuRongJi')!;
    assert.equal(zhu.name, '朱镕基');
    assert.deepEqual(zhu.departmentIds.map((id) => fresh.deptPath(id)).sort(), ['公司', '公司\\技术部\\开发组']);
    assert.equal(fresh.user('wangkun')!.gender, 1);
    assert.equal(fresh.user('wangkun')!.rtxno, 8888);
    assert.deepEqual(fresh.user('floating')!.departmentIds, []);
    assert.equal(fresh.findDeptByPath('公司\\技术部\\开发组')!.describe, '写代码 & "测试" <一起>');
  });

  it('merges: adds and updates what the file lists, leaves the rest, and moves listed users', () => {
    const org = sampleOrg();
    const xml = iconv.encode(
      `${ORG_XML_DECLARATION}<enterprise name="x"><departments><department name="公司" describe="总部"><department name="市场部" describe="">` +
        '<user uid="zhangsan" name="张三丰" rtxno="1001" gender="0"/><user uid="newbie" name="新人" gender="1"/>' +
        '</department></department></departments></enterprise>',
      'gbk',
    );
    const r = importOrgXml(org, xml, 'merge');
    assert.deepEqual(r, { departments: 2, users: 2, created: 1, updated: 1 });
    assert.equal(org.user('zhangsan')!.name, '张三丰');
    assert.deepEqual(org.user('zhangsan')!.departmentIds.map((id) => org.deptPath(id)), ['公司\\市场部']);
    assert.equal(org.user('newbie')!.gender, 1);
    assert.ok(org.user('wangkun'));
    assert.ok(org.findDeptByPath('公司\\技术部\\开发组'));
  });

  it('reads UTF-8 files by their declaration and refuses broken ones with the reason', () => {
    const utf8 = Buffer.from('<?xml version="1.0" encoding="utf-8"?><enterprise name="e"><departments><department name="部门"><user uid="a" name="甲"/></department></departments></enterprise>', 'utf8');
    assert.equal(parseOrgXml(utf8).users[0]!.name, '甲');
    assert.throws(() => parseOrgXml('<enterprise><departments><department name="x"></departments></enterprise>'), /close tag/);
    assert.throws(() => parseOrgXml('<!DOCTYPE enterprise [<!ENTITY big "x">]><enterprise/>'), /DOCTYPE/);
    assert.throws(() => parseOrgXml('<organisation/>'), /expected <enterprise>/);
    assert.throws(() => parseOrgXml('<enterprise><departments><department name="d"><user name="no uid"/></department></departments></enterprise>'), /has no uid/);
  });

  it('serves the same export on the RTX-host interface and takes imports on the control API', async () => {
    const emu = await startRtxEmulator({ port: 0, hostPort: 0, enterpriseName: '示例公司' });
    try {
      const source = exportOrgXml(sampleOrg(), { name: '示例公司' });
      const put = await rawRequest(`${emu.controlUrl}/org.xml?mode=replace`, { method: 'PUT', headers: { 'content-type': 'text/xml' }, body: source });
      assert.equal(put.status, 200);
      assert.deepEqual(JSON.parse(put.raw.toString('utf8')), { departments: 3, users: 4, created: 4, updated: 0 });
      const got = await rawRequest(`${emu.hostUrl}/org.xml`);
      assert.equal(got.status, 200);
      assert.equal(got.headers['content-type'], 'text/xml; charset=gb2312');
      assert.ok(got.raw.equals(source));
      const bad = await rawRequest(`${emu.controlUrl}/org.xml`, { method: 'PUT', body: '<enterprise>' });
      assert.equal(bad.status, 422);
      assert.equal(JSON.parse(bad.raw.toString('utf8')).field, 'body');
      assert.equal((await control(emu, 'GET', '/state')).users, 4);
    } finally {
      await emu.stop();
    }
  });

  it('exports several thousand users in one pass', () => {
    const org = new RtxOrg();
    for (let d = 0; d < 50; d++) for (let i = 0; i < 100; i++) org.addUser({ uid: `u${d}_${i}`, name: `员工${d}-${i}`, departments: [`集团\\事业部${d % 5}\\部门${d}`] });
    const xml = exportOrgXmlString(org, { name: '集团' });
    const parsed = parseOrgXml(xml);
    assert.equal(parsed.users.length, 5000);
    assert.equal(parsed.departments.length, 1 + 5 + 50);
  });
});
