import assert from 'node:assert/strict';
import path from 'node:path';
import JSZip from 'jszip';
import { createTestDatabase, forEachDatabase, type TestDatabase } from '../../../test/support/databases.ts';
import { upload } from '../im/test-helpers.ts';
import { ERRCODE } from './errcodes.ts';
import { exportSession } from './session-export.ts';
import { startOpenApi, type OpenApiApp, type YdTestClient } from './test-kit.ts';

/**
 * The org, group and session endpoints beyond the first set (cgi-org-extra.ts, xml-sync.ts,
 * session-export.ts), and the org-side clean-ups the open API now stands on: departments created with
 * Youdu's ids, people found by e-mail, empty groups, and a full replace that applies all or nothing.
 */
forEachDatabase('open API: more org, group and session endpoints', ({ url }) => {
  let app: OpenApiApp;
  let org: YdTestClient;
  let oa: YdTestClient;
  let mail: YdTestClient;

  before(async function () {
    this.timeout(60_000);
    app = await startOpenApi(url());
    org = await app.yd('sysOrgAssistant');
    mail = await app.yd('sysExmailAssistant');
    oa = await app.yd((await app.admin<{ appId: string }>('apps.create', { name: 'OA' })).appId);
    for (const c of [org, oa, mail]) assert.equal((await c.gettoken()).errcode, 0);
    const ok = async (p: Promise<{ errcode: number; errmsg: string }>) => assert.equal((await p).errcode, 0, (await p).errmsg);
    await ok(org.post('/cgi/dept/create', { id: 10, name: '总部', parentId: 0 }));
    await ok(org.post('/cgi/dept/create', { id: 11, name: '研发', parentId: 10 }));
    await ok(org.post('/cgi/dept/create', { id: 12, name: '平台', parentId: 11 }));
    await ok(org.post('/cgi/dept/create', { id: 13, name: '机密', parentId: 10 }));
    await ok(org.post('/cgi/user/create', { userId: 'zhang.san', name: '张三', gender: 0, email: 'Zhang.San@Example.com', dept: [11] }));
    await ok(org.post('/cgi/user/create', { userId: 'li.si', name: '李四', gender: 1, mobile: '13900000001', dept: [12] }));
    await ok(org.post('/cgi/user/create', { userId: 'wang.wu', name: '王五', gender: 0, dept: [13] }));
  });
  after(async () => app?.stop());

  const gid = async (account: string) => (await app.admin<{ id: number }>('org.users.byAccount', { account })).id;

  it('creates departments under Youdu ids at the org layer, and a taken id answers ERRCODE_EXIST_DEPT', async () => {
    assert.equal((await app.admin<{ id: number }>('org.departments.get', { id: 12 })).id, 12);
    assert.equal((await org.post('/cgi/dept/create', { id: 12, name: '另一个', parentId: 10 })).errcode, ERRCODE.ERRCODE_EXIST_DEPT);
    const auto = await org.post('/cgi/dept/create', { name: '自动', parentId: 10 });
    assert.ok(auto.data.id > 13);
    assert.equal((await org.get('/cgi/dept/delete', { id: String(auto.data.id) })).errcode, 0);
  });

  it('gets several people by gid (user/batchget), searches by keyword (user/search), lists a whole department (dept/user/listall)', async () => {
    const [zs, ls] = [await gid('zhang.san'), await gid('li.si')];
    const batch = await org.get('/cgi/user/batchget', { gids: `${ls},${zs},999999` });
    assert.equal(batch.errcode, 0, batch.errmsg);
    assert.deepEqual(batch.data.userList.map((u: { userId: string; gid: number }) => [u.userId, u.gid]), [['li.si', ls], ['zhang.san', zs]]);
    assert.deepEqual(batch.data.userList[0].deptDetail, [{ deptId: 12, position: '', weight: 0, sortId: 0 }]);
    assert.deepEqual((await oa.post('/cgi/user/batchget', { gids: [zs] })).data.userList.map((u: { name: string }) => u.name), ['张三']);
    assert.equal((await org.get('/cgi/user/batchget')).errcode, ERRCODE.ERRCODE_MISS_USERLIST);
    assert.equal((await org.get('/cgi/user/batchget', { gids: 'x' })).errcode, ERRCODE.ERRCODE_INVALID_FORMAT_USERLIST);
    assert.equal((await org.get('/cgi/user/batchget', { gids: Array.from({ length: 1001 }, (_, i) => i + 1).join(',') })).errcode, ERRCODE.ERRCODE_OVERLIMIT_USERLIST);

    assert.deepEqual((await oa.get('/cgi/user/search', { keyword: '李' })).data.userList.map((u: { userId: string }) => u.userId), ['li.si']);
    assert.deepEqual((await oa.get('/cgi/user/search', { keyword: 'ZHANG' })).data.userList.map((u: { userId: string }) => u.userId), ['zhang.san']);
    assert.equal((await oa.get('/cgi/user/search')).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);

    const all = await oa.get('/cgi/dept/user/listall', { deptId: '11' });
    assert.deepEqual(all.data.userList.map((u: { userId: string }) => u.userId).sort(), ['li.si', 'zhang.san'], 'sub-departments included');
    assert.ok(all.data.userList.every((u: { gid: number }) => u.gid > 0));
    assert.equal((await oa.get('/cgi/dept/user/listall', { deptId: '0' })).data.userList.length, 3);
    assert.equal((await oa.get('/cgi/dept/user/listall', { deptId: '404' })).errcode, ERRCODE.ERRCODE_DEPT_NOT_EXIST);
  });

  it('sorts a department after a sibling or first (dept/sort), answering sealed as the Java SDK expects', async () => {
    assert.equal((await org.post('/cgi/dept/create', { id: 14, name: '市场', parentId: 10 })).errcode, 0);
    const order = async () => (await org.get('/cgi/dept/listchildren', { id: '10' })).data.deptList.map((d: { id: number }) => d.id);
    const r = await org.post('/cgi/dept/sort', { id: 11, behindDeptId: 14 });
    assert.equal(r.errcode, 0, r.errmsg);
    assert.ok(r.encrypt, 'an encrypted answer');
    assert.equal(r.data.id, 11);
    assert.deepEqual(await order(), [13, 14, 11]);
    assert.equal((await org.post('/cgi/dept/sort', { id: 14, behindDeptId: 0 })).errcode, 0);
    assert.deepEqual(await order(), [14, 13, 11]);
    assert.equal((await org.post('/cgi/dept/sort', { id: 11, behindDeptId: 12 })).errcode, ERRCODE.ERRCODE_INVALID_DEPTID, 'not a sibling');
    assert.equal((await org.post('/cgi/dept/sort', { id: 404, behindDeptId: 0 })).errcode, ERRCODE.ERRCODE_DEPT_NOT_EXIST);
    assert.equal((await org.post('/cgi/dept/sort', { id: 0, behindDeptId: 0 })).errcode, ERRCODE.ERRCODE_DEPT_ROOT_FORBIDDEN);
    assert.equal((await org.post('/cgi/dept/sort', { behindDeptId: 0 })).errcode, ERRCODE.ERRCODE_MISS_DEPTID);
    assert.equal((await oa.post('/cgi/dept/sort', { id: 11, behindDeptId: 0 })).errcode, ERRCODE.ERRCODE_INVALID_APPID);
    assert.equal((await org.get('/cgi/dept/delete', { id: '14' })).errcode, 0);
  });

  it('expands a department as one person sees it (dept/expand/invisible), visibility rules applied', async () => {
    const rule = await app.admin<{ id: number }>('org.visibility.create', { kind: 'hide', targets: { departments: [13] } });
    try {
      const asLi = await oa.get('/cgi/dept/expand/invisible', { userId: 'li.si', deptId: '10' });
      assert.equal(asLi.errcode, 0, asLi.errmsg);
      assert.deepEqual(asLi.data.deptList.map((d: { id: number }) => d.id), [11], '机密 is hidden from li.si');
      const inside = await oa.get('/cgi/dept/expand/invisible', { userId: 'li.si', deptId: '12' });
      assert.deepEqual(inside.data.userList.map((u: { userId: string; mobile: string }) => [u.userId, u.mobile]), [['li.si', '13900000001']]);
      assert.deepEqual((await oa.get('/cgi/dept/expand/invisible', { userId: 'wang.wu', deptId: '10' })).data.deptList.map((d: { id: number }) => d.id), [13, 11]);
      assert.equal((await oa.get('/cgi/dept/expand/invisible', { userId: 'ghost', deptId: '10' })).errcode, ERRCODE.ERRCODE_USER_NOTEXIST);
    } finally {
      await app.admin('org.visibility.delete', { id: rule.id });
    }
  });

  it('lists resigned people (user/quit/search) and restores by account with gid 0 as the Java SDK sends it; both answer sealed', async () => {
    const quit = await org.post('/cgi/user.quit', { accList: ['wang.wu'] });
    assert.equal(quit.errcode, 0, quit.errmsg);
    assert.ok(quit.encrypt, 'the SDK reads an encrypted answer');
    const found = await org.post('/cgi/user/quit/search', { account: 'wang', buin: app.buin });
    assert.deepEqual(found.data.userList.map((u: { account: string; chsName: string; gid: number }) => [u.account, u.chsName, u.gid]), [['wang.wu', '王五', await gid('wang.wu')]]);
    assert.equal((await org.post('/cgi/user/quit/search', { account: '' })).data.userList.length, 1);
    const back = await org.post('/cgi/user/restore', { account: 'wang.wu', gid: 0 });
    assert.equal(back.errcode, 0, back.errmsg);
    assert.ok(back.encrypt);
    assert.equal((await org.get('/cgi/user/get', { userId: 'wang.wu' })).errcode, 0);
    assert.deepEqual((await org.post('/cgi/user/quit/search', {})).data.userList, []);
  });

  it('serves the older spelling of the change-password switch (user/pwd/changeswitchupdate)', async () => {
    assert.equal((await org.post('/cgi/user/pwd/changeswitchupdate', { userId: 'li.si', value: '1' })).errcode, 0);
    assert.equal((await org.post('/cgi/user/pwd/changeswitchupdate', { userId: 'li.si', value: '2' })).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
  });

  it('finds mail recipients by address at the org layer (toEmail), without case', async () => {
    const r = await mail.post('/cgi/msg/send', { toEmail: 'zhang.san@example.COM|nobody@example.com', msgType: 'mail', mail: { action: 'new', subject: '周报', fromEmail: 'boss@example.com' } });
    assert.equal(r.errcode, 0, r.errmsg);
    assert.match(r.errmsg, /nobody@example\.com/);
    const [row] = (await app.db.sequelize.query("SELECT recipients FROM openapi_app_messages WHERE msg_type = 'mail' ORDER BY id DESC", { type: 'SELECT' })) as Array<{ recipients: unknown }>;
    const recipients = typeof row.recipients === 'string' ? JSON.parse(row.recipients) : row.recipients;
    assert.deepEqual(recipients.userIds, [await gid('zhang.san')]);
    assert.equal((await mail.post('/cgi/msg/send', { toEmail: 'nobody@example.com', msgType: 'mail', mail: { action: 'unread', unreadCount: 2 } })).errcode, ERRCODE.ERRCODE_INVALID_TOUSER);
  });

  it('creates groups as empty im groups at once; groups kept by earlier versions still answer under their old ids', async () => {
    const before = await app.db.sequelize.query('SELECT group_id FROM openapi_groups', { type: 'SELECT' });
    const g = await org.post('/cgi/group/create', { name: '新群' });
    assert.equal(g.errcode, 0, g.errmsg);
    const im = await app.admin<{ id: string; type: string; members: unknown[] }>('im.groups.get', { id: g.data.id });
    assert.deepEqual([im.type, im.members], ['group', []], 'an im group from the start');
    assert.deepEqual(await app.db.sequelize.query('SELECT group_id FROM openapi_groups', { type: 'SELECT' }), before, 'nothing is written to the legacy table');

    // Rows as earlier versions left them: one still waiting for members, one already an im group.
    const made = await app.admin<{ id: string }>('im.groups.create', { name: '旧群二', members: [await gid('li.si')] });
    await app.db.sequelize.query('INSERT INTO openapi_groups (group_id, conversation_id, name, created_at) VALUES (?, NULL, ?, ?), (?, ?, ?, ?)', {
      replacements: ['g:legacy-pending', '旧群一', new Date(), 'g:legacy-made', made.id, '旧群二', new Date()],
    });
    const listed = (await org.get('/cgi/group/list')).data.groupList.map((x: { id: string; name: string }) => `${x.id} ${x.name}`);
    for (const want of [`${g.data.id} 新群`, 'g:legacy-pending 旧群一', 'g:legacy-made 旧群二']) assert.ok(listed.includes(want), `${want} in ${listed.join(', ')}`);
    assert.equal(listed.filter((x: string) => x.endsWith('旧群一')).length, 1, 'an adopted group is listed once, under its old id');
    assert.deepEqual((await org.get('/cgi/group/info', { id: 'g:legacy-pending' })).data, { id: 'g:legacy-pending', name: '旧群一', members: [] });
    assert.equal((await org.post('/cgi/group/addmember', { id: 'g:legacy-pending', userList: ['zhang.san'] })).errcode, 0);
    assert.equal((await org.get('/cgi/group/ismember', { id: 'g:legacy-pending', userId: 'zhang.san' })).data.belong, true);
    assert.deepEqual((await org.get('/cgi/group/list', { userId: 'li.si' })).data.groupList, [{ id: 'g:legacy-made', name: '旧群二' }]);
    assert.equal((await org.get('/cgi/group/delete', { id: 'g:legacy-made' })).errcode, 0);
    assert.equal((await org.get('/cgi/group/info', { id: 'g:legacy-made' })).errcode, ERRCODE.ERRCODE_GROUP_NOTEXIST);
    assert.equal((await org.post('/cgi/group/addmember', { id: g.data.id, userList: ['li.si'] })).errcode, 0);
    assert.deepEqual((await org.get('/cgi/group/info', { id: g.data.id })).data.members.map((m: { account: string }) => m.account), ['li.si']);
  });

  it('sends pictures, files, voice and video into sessions from media (session/send)', async () => {
    const [zs, ls] = [await gid('zhang.san'), await gid('li.si')];
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(64, 3)]);
    const pic = await oa.upload('/cgi/media/upload', { type: 'image', name: 'a.png' }, png);
    const doc = await oa.upload('/cgi/media/upload', { type: 'file', name: '说明.txt' }, Buffer.from('说明'));
    const vid = await oa.upload('/cgi/media/upload', { type: 'video', name: 'v.mp4' }, Buffer.from('not really a video'));
    for (const [msgType, mediaId] of [['image', pic.data!.mediaId], ['file', doc.data!.mediaId], ['voice', doc.data!.mediaId], ['video', vid.data!.mediaId]]) {
      const r = await oa.post('/cgi/session/send', { receiver: 'li.si', sender: 'zhang.san', msgType, [msgType]: { media_id: mediaId } });
      assert.equal(r.errcode, 0, `${msgType}: ${r.errmsg}`);
    }
    const chat = await app.call<{ id: string }>('im.conversations.create', { type: 'single', members: [zs, ls], createdBy: zs });
    const got = (await app.call<{ messages: Array<{ type: string; body: { fileId: string; name: string } }> }>('im.messages.list', { conversationId: chat.id, userId: ls })).messages.slice(-4);
    assert.deepEqual(got.map((m) => [m.type, m.body.name]), [['image', 'a.png'], ['file', '说明.txt'], ['file', '说明.txt'], ['file', 'v.mp4']]);
    const read = await app.call<{ data: string }>('im.files.read', { userId: ls, fileId: got[0].body.fileId, offset: 0 });
    assert.deepEqual(Buffer.from(read.data, 'base64'), png, 'the receiver downloads the picture');
    assert.equal((await oa.post('/cgi/session/send', { receiver: 'li.si', sender: 'zhang.san', msgType: 'image', image: { media_id: 'f'.repeat(32) } })).errcode, ERRCODE.ERRCODE_FILE_NOTEXIST);
    assert.equal((await oa.post('/cgi/session/send', { receiver: 'li.si', sender: 'zhang.san', msgType: 'mpnews', mpnews: {} })).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
    assert.equal((await oa.post('/cgi/session/send', { receiver: 'li.si', sender: 'zhang.san', msgType: 'file' })).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
  });

  it('hands chosen chat messages to an app as a zip (session/msg/download.zip), sealed with its key', async () => {
    const [zs, ls] = [await gid('zhang.san'), await gid('li.si')];
    const chat = await app.call<{ id: string }>('im.conversations.create', { type: 'single', members: [zs, ls], createdBy: zs });
    const send = (senderId: number, type: string, body: object) =>
      app.call<{ id: number }>('im.send', { conversationId: chat.id, senderId, clientMsgId: `z-${Math.random()}`, type, body });
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(100, 7)]);
    const pic = await upload(app, zs, png, { name: 'shot.png', kind: 'image', conversationId: chat.id });
    const doc = await upload(app, ls, Buffer.from('报告正文'), { name: '报告.txt', conversationId: chat.id });
    const m1 = await send(zs, 'text', { text: '你好' });
    const m2 = await send(zs, 'image', { fileId: pic.id, name: 'shot.png', size: png.length });
    const skipped = await send(ls, 'text', { text: '不导出' });
    const m3 = await send(ls, 'file', { fileId: doc.id, name: '报告.txt', size: Buffer.byteLength('报告正文') });
    void skipped;
    const { fileId, messages } = await exportSession(app.broker, { db: app.db, mediaDir: path.join(app.dataDir, 'openapi-media') }, { userId: zs, conversationId: chat.id, messageIds: [m1.id, m2.id, m3.id], appId: oa.appId });
    assert.equal(messages, 3);

    const r = await oa.raw('POST', '/cgi/session/msg/download.zip', { body: JSON.stringify(oa.envelope({ file_id: fileId })), contentType: 'application/json' });
    const zip = await JSZip.loadAsync(oa.open(r.text));
    const json = JSON.parse(await zip.file('chat.json')!.async('string'));
    assert.deepEqual(json.ChatMsgList.map((m: { MsgId: number; Sender: string }) => [m.MsgId, m.Sender]), [[m1.id, '张三 (zhang.san)'], [m2.id, '张三 (zhang.san)'], [m3.id, '李四 (li.si)']]);
    const content = json.ChatMsgList.map((m: { Content: string }) => JSON.parse(Buffer.from(m.Content, 'base64').toString('utf8')));
    assert.deepEqual(content[0], { msgType: 0, text: [{ txt: '你好' }] });
    assert.equal(content[1].msgType, 1);
    assert.equal(content[1].text[0].img.size, png.length);
    assert.deepEqual(content[2], { msgType: 3, name: '报告.txt', size: Buffer.byteLength('报告正文'), id: content[2].id });
    assert.deepEqual(await zip.file(`file/${content[1].text[0].img.id}.png`)!.async('nodebuffer'), png);
    assert.equal(await zip.file(`file/${content[2].id}.txt`)!.async('string'), '报告正文');
    assert.equal(json.CustomAttr.forwarder, '张三 (zhang.san)');

    const other = await org.post('/cgi/session/msg/download.zip', { file_id: fileId });
    assert.equal(other.errcode, ERRCODE.ERRCODE_FILE_NOTEXIST, 'another app does not get it');
    assert.equal((await oa.post('/cgi/session/msg/download.zip', {})).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
    await assert.rejects(exportSession(app.broker, { db: app.db, mediaDir: path.join(app.dataDir, 'openapi-media') }, { userId: await gid('wang.wu'), conversationId: chat.id, messageIds: [m1.id], appId: oa.appId }), /not a member|member/);
  });
});

forEachDatabase('open API: org replace and XML sync apply all or nothing', ({ dialect }) => {
  // Each replaces the whole directory: each starts from an empty one.
  let app: OpenApiApp;
  let org: YdTestClient;
  let db: TestDatabase;

  beforeEach(async function () {
    this.timeout(60_000);
    db = await createTestDatabase(dialect);
    app = await startOpenApi(db.url);
    org = await app.yd('sysOrgAssistant');
    assert.equal((await org.gettoken()).errcode, 0);
  });
  afterEach(async () => {
    await app?.stop();
    await db?.drop();
  });

  const job = async (jobId: string) => {
    for (let i = 0; i < 200; i++) {
      const r = (await org.get('/cgi/getjobresult', { jobId })).data;
      if (r.result !== 1) return r as { type: string; result: number; desc: string };
      await new Promise((x) => setTimeout(x, 50));
    }
    throw new Error(`job ${jobId} still running`);
  };
  const snapshot = async () => {
    const b = await app.admin('org.export.backup');
    return { departments: b.departments, users: b.users };
  };

  it('a replace whose later part is invalid changes nothing', async function () {
    this.timeout(30_000);
    const setup = await org.post('/cgi/org/replaceall', {
      deptList: [
        { id: 1, name: '总部', parentId: 0 },
        { id: 2, name: '外部', parentId: 0 },
        { id: 3, name: '子部门', parentId: 2 },
      ],
      userList: [
        { userId: 'a', name: 'A', gender: 0, dept: [1] },
        { userId: 'b', name: 'B', gender: 1, dept: [3] },
      ],
    });
    assert.deepEqual(await job(setup.data.jobId), { type: 'org_replace_all', result: 3, desc: 'ok' });
    const before = await snapshot();

    // Passes the request's checks; the org refuses the last person's mobile (a control character).
    const bad = await org.post('/cgi/org/replaceall', {
      deptList: [
        { id: 1, name: '新总部', parentId: 0 },
        { id: 9, name: '新部门', parentId: 1 },
        { id: 3, name: '子部门', parentId: 1 },
      ],
      userList: [
        { userId: 'c', name: 'C', gender: 0, dept: [9] },
        { userId: 'b', name: 'B', gender: 1, mobile: '139\u0001', dept: [3] },
      ],
    });
    assert.equal(bad.errcode, 0, bad.errmsg);
    const failed = await job(bad.data.jobId);
    assert.equal(failed.result, 4);
    assert.match(failed.desc, /users\[1\]\.mobile/);
    assert.deepEqual(await snapshot(), before);

    // Fails only inside the write, at its very end: 外部 is managed elsewhere and may not be deleted,
    // which the replace finds after moving 子部门 out, creating 新部门, resigning a and adding c.
    await app.db.sequelize.query("UPDATE departments SET source = 'ldap' WHERE id = 2");
    await app.admin('system.settings.set', { key: 'org.readOnlySources', value: ['ldap'] });
    const before2 = await snapshot();
    const late = await org.post('/cgi/org/replaceall', {
      deptList: [
        { id: 1, name: '新总部', parentId: 0 },
        { id: 9, name: '新部门', parentId: 1 },
        { id: 3, name: '子部门', parentId: 1 },
      ],
      userList: [
        { userId: 'c', name: 'C', gender: 0, dept: [9] },
        { userId: 'b', name: 'B', gender: 1, dept: [3] },
      ],
    });
    const lateResult = await job(late.data.jobId);
    assert.equal(lateResult.result, 4);
    assert.match(lateResult.desc, /外部/);
    assert.deepEqual(await snapshot(), before2);
  });

  it('syncs the org from XML (org/xmlsync): paths, ids, positions, enable states; bad XML is refused at once', async function () {
    this.timeout(30_000);
    const xml = `<?xml version="1.0" encoding="UTF-8" ?>
<root>
  <strategy><dept_spliter>/</dept_spliter></strategy>
  <deptList>
    <dept path="总经办"/>
    <dept path="采购部/国内采购部" id="501"/>
    <dept path="采购部" id="500"/>
    <dept path="研发部/IT部门"/>
  </deptList>
  <userList>
    <user id="cs1" name="测试1" gender="0" mobile="" email="abc@163.com" phone="0756-12345678" authtype="0" password="1a7434b0243d345b4fdb5b3d434c9aba" enableState="1">
      <posInfo deptPath="研发部/IT部门" position="测试部主管" sortId="2"/>
      <posInfo deptPath="总经办"/>
    </user>
    <user id="cs2" name="测试2" gender="1" authType="2" enableState="-1">
      <posInfo deptPath="501" position="采购员"/>
    </user>
  </userList>
</root>`;
    const r = await org.raw('POST', '/cgi/org/xmlsync', { body: xml, contentType: 'application/json' });
    const answer = org.answer<{ jobId: string }>(r.text);
    assert.equal(answer.errcode, 0, answer.errmsg);
    const done = await job(answer.data!.jobId);
    assert.equal(done.result, 3, done.desc);
    assert.equal(done.type, 'org_xml_sync');
    assert.match(done.desc, /^ok; 1 password/);
    const depts = (await app.admin<{ departments: Array<{ id: number; name: string; parentId: number | null }> }>('org.departments.list')).departments;
    const byName = new Map(depts.map((d) => [d.name, d]));
    assert.deepEqual([...byName.keys()].sort(), ['IT部门', '国内采购部', '总经办', '研发部', '采购部'].sort());
    assert.equal(byName.get('国内采购部')!.id, 501);
    assert.equal(byName.get('国内采购部')!.parentId, 500);
    assert.equal(byName.get('IT部门')!.parentId, byName.get('研发部')!.id, 'the implied parent was made');
    const cs1 = await app.admin('org.users.byAccount', { account: 'cs1' });
    assert.deepEqual(cs1.departments.map((m: { departmentId: number; position: string | null }) => [m.departmentId, m.position]).sort(), [[byName.get('IT部门')!.id, '测试部主管'], [byName.get('总经办')!.id, null]].sort());
    assert.equal(cs1.email, 'abc@163.com');
    assert.equal(cs1.authorised, true, 'enableState 1: a seat');
    const cs2 = await app.admin('org.users.byAccount', { account: 'cs2' });
    assert.deepEqual([cs2.status, cs2.authType, cs2.gender], ['disabled', 'external', 'female']);

    // The same XML again changes nothing; without cs2 it resigns cs2.
    const again = org.answer<{ jobId: string }>((await org.raw('POST', '/cgi/org/xmlsync', { body: xml.replace(/<user id="cs2"[\s\S]*?<\/user>/, ''), contentType: 'application/json' })).text);
    assert.equal((await job(again.data!.jobId)).result, 3);
    assert.equal((await app.admin('org.users.byAccount', { account: 'cs2' })).status, 'resigned');

    const bad = async (body: string) => org.answer((await org.raw('POST', '/cgi/org/xmlsync', { body, contentType: 'application/json' })).text).errcode;
    assert.equal(await bad('<root><userList><user id="x" name="X"><posInfo deptPath="nowhere"/></user></userList>'), ERRCODE.ERRCODE_INVALID_REQUEST, 'not well-formed');
    assert.equal(await bad('<root><deptList><dept path="A"/></deptList><userList><user id="x" name="X"><posInfo deptPath="B"/></user></userList></root>'), ERRCODE.ERRCODE_NOTEXIST_DEPT);
    assert.equal(await bad('<root><userList><user id="x"/><user id="x"/></userList></root>'), ERRCODE.ERRCODE_REPEAT_USERID);
    assert.equal(await bad('<root><deptList/></root>'), ERRCODE.ERRCODE_MISS_USERLIST);
    assert.equal(await bad('<!DOCTYPE root [<!ENTITY x "y">]><root><userList/></root>'), ERRCODE.ERRCODE_INVALID_REQUEST);
    const sys = await app.yd('sysMsgAssistant');
    await sys.gettoken();
    assert.equal(sys.answer((await sys.raw('POST', '/cgi/org/xmlsync', { body: xml, contentType: 'application/json' })).text).errcode, ERRCODE.ERRCODE_INVALID_APPID);
  });
});
