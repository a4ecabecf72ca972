import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { aesKey, decrypt, signature } from './crypto.ts';
import { ERRCODE } from './errcodes.ts';
import { until } from '../gateway/client/test-kit.ts';
import { chatWithApp, receiver, startOpenApi, writeToApp, type OpenApiApp, type YdTestClient } from './test-kit.ts';

forEachDatabase('open API endpoints', ({ url }) => {
  let app: OpenApiApp;
  let org: YdTestClient;
  let oa: YdTestClient;
  let sys: YdTestClient;

  before(async function () {
    this.timeout(60_000);
    app = await startOpenApi(url());
    org = await app.yd('sysOrgAssistant');
    sys = await app.yd('sysMsgAssistant');
    const created = await app.admin<{ appId: string }>('apps.create', { name: 'OA', homeUrl: 'https://oa.example.com/?t=$TOKEN$' });
    oa = await app.yd(created.appId);
    for (const c of [org, sys, oa]) assert.equal((await c.gettoken()).errcode, 0);
  });
  after(async () => app?.stop());

  it('manages departments: create with and without ids, update, move, list, get, getid, delete', async () => {
    const a = await org.post('/cgi/dept/create', { id: 100, name: '总部', parentId: 0, sortId: 1, alias: 'hq' });
    assert.equal(a.errcode, 0, a.errmsg);
    assert.equal(a.data.id, 100);
    const b = await org.post('/cgi/dept/create', { name: '研发', parentId: 100 });
    assert.equal(b.errcode, 0, b.errmsg);
    const rd = b.data.id as number;
    assert.equal((await org.post('/cgi/dept/create', { id: rd, name: 'taken', parentId: 0 })).errcode, ERRCODE.ERRCODE_EXIST_DEPT);
    assert.equal((await org.post('/cgi/dept/create', { id: 101 + 200, name: '测试', parentId: rd, alias: 'qa' })).errcode, 0);
    assert.equal((await org.post('/cgi/dept/create', { id: 100, name: 'dup', parentId: 0 })).errcode, ERRCODE.ERRCODE_EXIST_DEPT);
    assert.equal((await org.post('/cgi/dept/create', { name: 'x', parentId: 9999 })).errcode, ERRCODE.ERRCODE_INVALID_DEPTPARENTID);
    assert.equal((await org.post('/cgi/dept/create', { parentId: 0 })).errcode, ERRCODE.ERRCODE_MISS_DEPTNAME);
    assert.equal((await org.post('/cgi/dept/create', { name: 'x' })).errcode, ERRCODE.ERRCODE_MISS_DEPTPARENTID);
    assert.equal((await org.post('/cgi/dept/create', { name: 'x', parentId: 'abc' })).errcode, ERRCODE.ERRCODE_INVALID_FORMAT_DEPTPARENTID);
    assert.equal((await org.post('/cgi/dept/update', { id: 0, name: 'root' })).errcode, ERRCODE.ERRCODE_DEPT_ROOT_FORBIDDEN);
    assert.equal((await org.post('/cgi/dept/update', { id: 4242, name: 'ghost' })).errcode, ERRCODE.ERRCODE_DEPT_NOT_EXIST);
    assert.equal((await org.post('/cgi/dept/update', { id: 301, name: '质量', parentId: 100, sortId: 5 })).errcode, 0);
    const list = await org.get('/cgi/dept/list', { id: '100' });
    assert.deepEqual(
      list.data.deptList.map((d: { id: number; name: string; parentId: number }) => [d.id, d.name, d.parentId]),
      [[100, '总部', 0], [rd, '研发', 100], [301, '质量', 100]],
    );
    assert.deepEqual((await org.get('/cgi/dept/get', { id: '301' })).data, { id: 301, name: '质量', parentId: 100, sortId: 5, alias: 'qa' });
    assert.equal((await org.get('/cgi/dept/getid', { alias: 'hq' })).data.id, 100);
    assert.equal((await org.get('/cgi/dept/getid', { alias: '"qa"' })).data.id, 301);
    assert.equal((await org.get('/cgi/dept/getid', { alias: 'none' })).errcode, ERRCODE.ERRCODE_INVALID_DEPTALIAS);
    assert.deepEqual((await org.get('/cgi/dept/getid')).data.aliasList.map((x: { id: number }) => x.id).sort(), [100, 301]);
    assert.equal((await org.get('/cgi/dept/delete', { id: '100' })).errcode, ERRCODE.ERRCODE_DEPT_HAS_SUBDEPT);
    assert.equal((await org.get('/cgi/dept/delete', { id: String(rd) })).errcode, 0);
    assert.equal((await org.get('/cgi/dept/delete', { id: String(rd) })).errcode, ERRCODE.ERRCODE_DEPT_NOT_EXIST);
  });

  it('manages people: create, get, update, positions, lists, enable state, delete, quit and restore (both spellings)', async () => {
    const create = await org.post('/cgi/user/create', { userId: 'zhang.san', name: '张三', gender: 0, mobile: '13800000001', email: 'zs@example.com', dept: [100], enableState: null });
    assert.equal(create.errcode, 0, create.errmsg);
    assert.equal((await org.post('/cgi/user/create', { userId: 'zhang.san', name: 'again', gender: 0, dept: [100] })).errcode, ERRCODE.ERRCODE_USER_EXIST);
    assert.equal((await org.post('/cgi/user/create', { name: 'x', gender: 0, dept: [100] })).errcode, ERRCODE.ERRCODE_MISS_USERID);
    assert.equal((await org.post('/cgi/user/create', { userId: 'x1', name: 'x', dept: [100] })).errcode, ERRCODE.ERRCODE_MISS_GENDER);
    assert.equal((await org.post('/cgi/user/create', { userId: 'x1', name: 'x', gender: 0 })).errcode, ERRCODE.ERRCODE_MISS_USERDEPT);
    assert.equal((await org.post('/cgi/user/create', { userId: 'x1', name: 'x', gender: 0, dept: [777] })).errcode, ERRCODE.ERRCODE_NOTEXIST_DEPT);
    assert.equal((await org.post('/cgi/user/create', { userId: 'x1', name: 'x', gender: 5, dept: [100] })).errcode, ERRCODE.ERRCODE_INVALID_FORMAT_USERGENDER);
    assert.equal((await org.post('/cgi/user/create', { userId: 'li.si', name: '李四', gender: 1, dept: [100, 301], phone: '' })).errcode, 0);
    const got = await org.get('/cgi/user/get', { userId: 'zhang.san' });
    assert.equal(got.errcode, 0);
    assert.equal(got.data.userId, 'zhang.san');
    assert.equal(got.data.name, '张三');
    assert.equal(got.data.gender, 0);
    assert.deepEqual(got.data.dept, [100]);
    assert.ok(got.data.gid > 0);
    assert.equal((await org.post('/cgi/user/update', { userId: 'zhang.san', name: '张三丰', dept: [100, 301], mobile: null })).errcode, 0);
    assert.equal((await org.post('/cgi/user/positionupdate', { userId: 'zhang.san', deptId: 301, position: '工程师', weight: 3 })).errcode, 0);
    assert.equal((await org.post('/cgi/user/positionupdate', { userId: 'li.si', deptId: 555, position: 'x' })).errcode, ERRCODE.ERRCODE_USER_NOTIN_DEPT);
    const full = await org.get('/cgi/user/list', { deptId: '301' });
    const zs = full.data.userList.find((u: { userId: string }) => u.userId === 'zhang.san');
    assert.equal(zs.name, '张三丰');
    assert.deepEqual(zs.deptDetail.find((d: { deptId: number }) => d.deptId === 301), { deptId: 301, position: '工程师', weight: 3, sortId: 0 });
    const simple = await org.get('/cgi/user/simplelist', { deptId: '100' });
    assert.deepEqual(simple.data.userList.map((u: { userId: string }) => u.userId).sort(), ['li.si', 'zhang.san']);
    assert.equal((await org.get('/cgi/user/enable/state', { userId: 'li.si' })).data.enableState, 0);
    assert.equal((await org.post('/cgi/user/enable/stateupdate', { userIdList: ['li.si'], enableState: -1 })).errcode, 0);
    assert.equal((await org.get('/cgi/user/enable/state', { userId: 'li.si' })).data.enableState, -1);
    assert.equal((await org.post('/cgi/user/enable/stateupdate', { userIdList: ['li.si'], enableState: 0 })).errcode, 0);
    assert.equal((await org.post('/cgi/user/setauth', { userId: 'li.si', authType: 2 })).errcode, 0);
    assert.equal((await app.admin('org.users.byAccount', { account: 'li.si' })).authType, 'external');
    assert.equal((await org.post('/cgi/user/setauth', { userId: 'li.si', authType: 1 })).errcode, ERRCODE.ERRCODE_INVALID_FORMAT_AUTHTYPE);

    assert.equal((await org.post('/cgi/user/batchdelete', { delList: ['li.si', 'nobody'] })).errcode, ERRCODE.ERRCODE_USER_NOTEXIST);
    assert.equal((await org.get('/cgi/user/get', { userId: 'li.si' })).errcode, 0, 'one unknown account and nobody is removed');
    assert.equal((await org.post('/cgi/user.quit', { accList: ['li.si'], buin: app.buin })).errcode, 0);
    assert.equal((await org.get('/cgi/user/get', { userId: 'li.si' })).errcode, ERRCODE.ERRCODE_USER_NOTEXIST);
    const gid = (await app.admin('org.users.byAccount', { account: 'li.si' })).id;
    assert.equal((await org.post('/cgi/user/restore', { gid })).errcode, 0);
    assert.equal((await org.get('/cgi/user/get', { userId: 'li.si' })).errcode, 0);
    assert.equal((await org.post('/cgi/user/quit', { accList: ['li.si'] })).errcode, 0);
    assert.equal((await org.post('/cgi/user.restore', { gid })).errcode, 0);
    assert.equal((await org.get('/cgi/user/delete', { userId: 'li.si' })).errcode, 0);
    assert.equal((await org.get('/cgi/user/delete', { userId: 'li.si' })).errcode, ERRCODE.ERRCODE_USER_NOTEXIST);
    assert.equal((await org.post('/cgi/user/create', { userId: 'li.si', name: '李四', gender: 1, dept: [301] })).errcode, 0, 'a deleted account can be created again');
    assert.deepEqual((await org.get('/cgi/user/get', { userId: 'li.si' })).data.dept, [301]);
  });

  it('sets and gets avatars with the file encrypted both ways', async () => {
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(64, 1)]);
    const set = await org.upload('/cgi/avatar/set', {}, png, { userId: 'zhang.san' });
    assert.equal(set.errcode, 0, set.errmsg);
    const r = await org.raw('GET', '/cgi/avatar/get', { query: { userId: 'zhang.san' } });
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.deepEqual(JSON.parse(org.open(r.headers.get('encrypt')!).toString()), { size: png.length });
    assert.deepEqual(org.open(r.text), png);
  });

  it('uploads, searches and downloads media; the bytes travel encrypted', async () => {
    const bytes = Buffer.from('第一行\nline two\n'.repeat(100));
    const up = await oa.upload('/cgi/media/upload', { type: 'file', name: '报告.txt' }, bytes);
    assert.equal(up.errcode, 0, up.errmsg);
    const mediaId = up.data!.mediaId;
    assert.deepEqual((await oa.post('/cgi/media/search', { mediaId })).data, { name: '报告.txt', size: bytes.length });
    const r = await oa.raw('POST', '/cgi/media/get', { body: JSON.stringify(oa.envelope({ mediaId })), contentType: 'application/json' });
    assert.deepEqual(JSON.parse(oa.open(r.headers.get('encrypt')!).toString()), { name: '报告.txt', size: bytes.length });
    assert.deepEqual(oa.open(r.text), bytes);
    assert.equal((await oa.post('/cgi/media/search', { mediaId: 'f'.repeat(32) })).errcode, ERRCODE.ERRCODE_FILE_NOTEXIST);
    assert.equal((await oa.upload('/cgi/media/upload', { type: 'exe', name: 'x' }, bytes)).errcode, ERRCODE.ERRCODE_INVALID_FILETYPE);
  });

  it('sends text, link, news, exlink, image and file from an app and sysMsg from the system-message app', async () => {
    const before = (await app.admin<{ total: number }>('im.broadcasts.list')).total;
    const up = await oa.upload('/cgi/media/upload', { type: 'image', name: 'a.png' }, Buffer.from('png-bytes'));
    const sends: Array<[YdTestClient, object]> = [
      [oa, { toUser: 'zhang.san', msgType: 'text', text: { content: '你有一个待办' } }],
      [oa, { toUser: 'zhang.san|li.si', msgType: 'link', link: { title: '请审批', url: 'https://oa.example.com/task/1', action: 1 } }],
      [oa, { toDept: '100', msgType: 'mpnews', mpnews: [{ title: '新闻', media_id: up.data!.mediaId, content: '正文', digest: '摘要', showFront: 1 }] }],
      [oa, { toUser: 'zhang.san', msgType: 'exlink', exlink: [{ title: '外链', url: 'https://example.com', digest: 'd', media_id: up.data!.mediaId }] }],
      [oa, { toUser: 'zhang.san', msgType: 'image', image: { media_id: up.data!.mediaId } }],
      [sys, { toUser: 'zhang.san', msgType: 'sysMsg', sysMsg: { title: '停电通知', popDuration: 6, msg: [{ text: { content: '今晚停电' } }, { link: { title: '详情', url: 'https://x.example.com', action: 0 } }] } }],
      [sys, { toAll: { onliyOnline: false }, msgType: 'sysMsg', sysMsg: { title: '全员', msg: [{ text: { content: 'hi' } }] } }],
    ];
    for (const [c, m] of sends) {
      const r = await c.post('/cgi/msg/send', m);
      assert.equal(r.errcode, 0, `${JSON.stringify(m)} → ${r.errmsg}`);
    }
    // A custom app's messages land in each person's chat with the app; system notices are broadcasts.
    const zs = (await app.admin<{ id: number }>('org.users.byAccount', { account: 'zhang.san' })).id;
    const ls = (await app.admin<{ id: number }>('org.users.byAccount', { account: 'li.si' })).id;
    const chat = async (userId: number) =>
      (await app.call<{ messages: Array<{ type: string; senderId: number; senderApp?: string; body: any }> }>('im.messages.list', { conversationId: `a:${oa.appId}:${userId}`, userId })).messages;
    const mine = await chat(zs);
    assert.deepEqual(mine.map((m) => m.type), ['text', 'link', 'card', 'card', 'image']);
    assert.ok(mine.every((m) => m.senderApp === oa.appId && m.senderId === 0));
    assert.deepEqual(mine[1].body, { title: '请审批', url: 'https://oa.example.com/task/1', appendSsoToken: true });
    assert.deepEqual(mine[2].body.articles, [{ title: '新闻', description: '摘要' }]);
    assert.deepEqual((await chat(ls)).map((m) => m.type), ['link', 'card']);
    const img = await app.call<{ data: string }>('im.files.read', { userId: zs, fileId: mine[4].body.fileId, offset: 0 });
    assert.equal(Buffer.from(img.data, 'base64').toString(), 'png-bytes', 'the picture is downloadable from the chat');
    await assert.rejects(app.call('im.files.read', { userId: ls, fileId: mine[4].body.fileId, offset: 0 }), /does not exist/, 'only its recipients may read it');
    const conversations = await app.call<{ conversations: Array<{ id: string; type: string; name: string; unread: number }> }>('im.conversations.list', { userId: zs });
    assert.deepEqual(
      conversations.conversations.filter((c) => c.type === 'app').map((c) => [c.id, c.name, c.unread]),
      [[`a:${oa.appId}:${zs}`, 'OA', 5]],
    );
    const list = await app.admin<{ total: number; broadcasts: Array<{ type: string; title: string; body: any }> }>('im.broadcasts.list');
    assert.equal(list.total - before, 2);
    const notice = list.broadcasts.find((b) => b.type === 'system' && b.body.title === '停电通知')!;
    assert.deepEqual(notice.body.links, [{ title: '详情', url: 'https://x.example.com', appendSsoToken: false }]);
    const partial = await oa.post('/cgi/msg/send', { toUser: 'zhang.san|ghost', msgType: 'text', text: { content: 'x' } });
    assert.equal(partial.errcode, 0);
    assert.match(partial.errmsg, /ghost/);
    assert.equal((await oa.post('/cgi/msg/send', { toUser: 'ghost', msgType: 'text', text: { content: 'x' } })).errcode, ERRCODE.ERRCODE_INVALID_TOUSER);
    assert.equal((await oa.post('/cgi/msg/send', { toUser: Array.from({ length: 1001 }, (_, i) => `u${i}`).join('|'), msgType: 'text', text: { content: 'x' } })).errcode, ERRCODE.ERRCODE_TOUSER_OVERLIMIT);
    assert.equal((await oa.post('/cgi/msg/send', { toUser: 'zhang.san', msgType: 'image', image: { media_id: 'nope' } })).errcode, ERRCODE.ERRCODE_FILE_NOTEXIST);
    assert.equal((await oa.post('/cgi/msg/send', { toUser: 'zhang.san', msgType: 'text' })).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
    assert.equal((await chat(zs)).length, 6, 'refused sends deliver nothing (the partial send delivers once)');
    assert.equal((await oa.post('/cgi/set.ent.notice', { account: 'zhang.san', tip: '3 个待办', count: 3 })).errcode, 0);
    const env = oa.envelope({ toUser: 'zhang.san', popWindow: { url: 'https://oa.example.com', title: '提醒', duration: 10, notice_id: 'n1' } });
    const pop = await oa.raw('POST', '/cgi/popwindow', { body: JSON.stringify({ app_id: env.appId, msg_encrypt: env.encrypt, buin: env.buin }), contentType: 'application/json', token: null });
    assert.equal(JSON.parse(pop.text).errcode, 0, pop.text);
  });

  it('manages groups, including one created empty that gets its members later', async () => {
    const g = await org.post('/cgi/group/create', { name: '项目组' });
    assert.equal(g.errcode, 0, g.errmsg);
    const id = g.data.id as string;
    assert.deepEqual((await org.get('/cgi/group/info', { id })).data, { id, name: '项目组', members: [] });
    assert.equal((await org.post('/cgi/group/addmember', { id, userList: ['zhang.san', 'li.si'] })).errcode, 0);
    assert.equal((await org.post('/cgi/group/addmember', { id, userList: ['ghost'] })).errcode, ERRCODE.ERRCODE_INVALID_GROUP_USERID);
    assert.equal((await org.post('/cgi/group/update', { id, name: '项目一组' })).errcode, 0);
    const info = await org.get('/cgi/group/info', { id });
    assert.equal(info.data.name, '项目一组');
    assert.deepEqual(info.data.members.map((m: { account: string }) => m.account).sort(), ['li.si', 'zhang.san']);
    assert.equal((await org.get('/cgi/group/ismember', { id, userId: 'li.si' })).data.belong, true);
    assert.equal((await org.post('/cgi/group/delmember', { id, userList: ['li.si'] })).errcode, 0);
    assert.equal((await org.get('/cgi/group/ismember', { id, userId: 'li.si' })).data.belong, false);
    assert.ok((await org.get('/cgi/group/list')).data.groupList.some((x: { id: string }) => x.id === id));
    assert.deepEqual((await org.get('/cgi/group/list', { userId: 'zhang.san' })).data.groupList, [{ id, name: '项目一组' }]);
    assert.equal((await org.post('/cgi/group/create', {})).errcode, ERRCODE.ERRCODE_MISS_GROUPNAME);
    assert.equal((await org.get('/cgi/group/delete', { id })).errcode, 0);
    assert.equal((await org.get('/cgi/group/info', { id })).errcode, ERRCODE.ERRCODE_GROUP_NOTEXIST);
  });

  it('creates, reads, updates and sends to sessions', async () => {
    assert.equal((await org.post('/cgi/user/create', { userId: 'wang.wu', name: '王五', gender: 0, dept: [100] })).errcode, 0);
    const s = await oa.post('/cgi/session/create', { title: '讨论', creator: 'zhang.san', type: 'multi', member: ['zhang.san', 'li.si', 'wang.wu'] });
    assert.equal(s.errcode, 0, s.errmsg);
    assert.equal(s.data.owner, 'zhang.san');
    const sessionId = s.data.sessionId as string;
    assert.equal((await oa.get('/cgi/session/get', { sessionId })).data.title, '讨论');
    const u = await oa.post('/cgi/session/update', { sessionId, opUser: 'zhang.san', title: '新讨论', delMember: ['wang.wu'] });
    assert.equal(u.errcode, 0, u.errmsg);
    assert.deepEqual(u.data.member.sort(), ['li.si', 'zhang.san']);
    assert.equal((await oa.post('/cgi/session/send', { sessionId, sender: 'li.si', msgType: 'text', text: { content: '大家好' } })).errcode, 0);
    assert.equal((await oa.post('/cgi/session/send', { receiver: 'li.si', sender: 'zhang.san', msgType: 'text', text: { content: '单聊' } })).errcode, 0);
    const zs = (await app.admin('org.users.byAccount', { account: 'zhang.san' })).id;
    const msgs = await app.call<{ messages: Array<{ body: { text: string } }> }>('im.messages.list', { conversationId: sessionId, userId: zs });
    assert.ok(msgs.messages.some((m) => m.body.text === '大家好'));
    assert.equal((await org.post('/cgi/session/create', { title: 'x', creator: 'zhang.san', member: ['li.si'] })).errcode, ERRCODE.ERRCODE_INVALID_APPID);
  });

  it('issues 3-minute identify tokens for $TOKEN$ and answers /cgi/identify with userInfo.gid', async () => {
    const zs = await app.admin('org.users.byAccount', { account: 'zhang.san' });
    const issued = await app.call<{ token: string; url: string }>('apps.sso.issue', { userId: zs.id, appId: oa.appId });
    assert.equal(issued.url, `https://oa.example.com/?t=${encodeURIComponent(issued.token)}`);
    const r = await fetch(`${app.base}/cgi/identify?token=${issued.token}`).then((x) => x.json() as Promise<any>);
    assert.equal(r.status.code, 0);
    assert.deepEqual({ ...r.userInfo }, { gid: zs.id, account: 'zhang.san', chsName: '张三丰', gender: 0, mobile: '13800000001', phone: '', email: 'zs@example.com' });
    const bad = await fetch(`${app.base}/cgi/identify?token=nonsense`).then((x) => x.json() as Promise<any>);
    assert.equal(bad.status.code, 10);
    assert.equal((await fetch(`${app.base}/cgi/identify`).then((x) => x.json() as Promise<any>)).status.code, 2);
    await app.db.sequelize.query('UPDATE openapi_sso_tokens SET expires_at = ?', { replacements: [new Date(Date.now() - 1)] });
    assert.equal((await fetch(`${app.base}/cgi/identify?token=${issued.token}`).then((x) => x.json() as Promise<any>)).status.code, 10);
  });

  it('signs callbacks, retries a receiver that fails the first attempts, and logs every attempt', async () => {
    const rx = await receiver((_b, n) => (n <= 2 ? { status: 500, text: 'busy' } : { status: 200, text: '{"errcode":0,"errmsg":"ok"}' }));
    try {
      const info = await app.admin('apps.update', { appId: oa.appId, callbackUrl: rx.url, autoReply: [{ match: 'exact', keyword: '帮助', reply: '回复 1 查询待办' }] });
      assert.match(info.callbackToken, /^[0-9a-f]{32}$/);
      const zs = (await app.admin('org.users.byAccount', { account: 'zhang.san' })).id;
      const help = await writeToApp(app, oa.appId, zs, '帮助');
      await until('the apps service to act', async () => (await chatWithApp(app, oa.appId, zs)).some((m) => m.senderApp === oa.appId && m.body.text === '回复 1 查询待办'));
      const sent = { packageId: `chat-${(await writeToApp(app, oa.appId, zs, '1')).id}` };
      // The first attempt goes out at once; later ones are run with the clock moved past each pause.
      await until('the first attempt', async () => (await app.admin('apps.callbacks.list', { appId: oa.appId })).callbacks.some((c: { package_id: string; attempts: number }) => c.package_id === sent.packageId && c.attempts >= 1));
      const t0 = Date.now();
      await app.admin('apps.callbacks.run', { at: new Date(t0 + 11_000).toISOString() });
      await app.admin('apps.callbacks.run', { at: new Date(t0 + 40_000).toISOString() });
      assert.equal(rx.hits.length, 3);
      for (const h of rx.hits) {
        assert.equal(h.body.toApp, oa.appId);
        assert.equal(h.body.toBuin, app.buin);
        assert.equal(h.query.get('msg_signature'), signature(info.callbackToken, h.query.get('timestamp')!, h.query.get('nonce')!, h.body.encrypt));
        const msg = JSON.parse(decrypt(h.body.encrypt, aesKey(info.encodingAesKey), oa.appId).toString());
        assert.deepEqual({ ...msg, createTime: 0 }, { fromUser: 'zhang.san', createTime: 0, msgType: 'text', text: { content: '1' }, packageId: sent.packageId });
      }
      const { callbacks } = await app.admin('apps.callbacks.list', { appId: oa.appId });
      const cb = callbacks.find((c: { package_id: string }) => c.package_id === sent.packageId);
      assert.equal(cb.status, 'delivered');
      assert.ok(!callbacks.some((c: { package_id: string }) => c.package_id === `chat-${help.id}`), 'an auto-replied message is not called back');
      assert.deepEqual(cb.log.map((l: { outcome: string; http_status: number }) => `${l.outcome} ${l.http_status}`), ['failed 500', 'failed 500', 'ok 200']);
      await app.admin('apps.callbacks.run', { at: new Date(t0 + 3_600_000).toISOString() });
      assert.equal(rx.hits.length, 3, 'an acknowledged callback is not sent again');
    } finally {
      await rx.close();
    }
  });

  it('gives up on a callback after 24 hours of failures', async () => {
    const rx = await receiver(() => ({ status: 503, text: '' }));
    try {
      await app.admin('apps.update', { appId: oa.appId, callbackUrl: rx.url });
      const zs = (await app.admin('org.users.byAccount', { account: 'zhang.san' })).id;
      const sent = { packageId: `chat-${(await writeToApp(app, oa.appId, zs, 'anyone?')).id}` };
      // The first attempt goes out at once; the clock is moved only after it, so no two attempts overlap.
      await until('the apps service to act', async () => (await app.admin('apps.callbacks.list', { appId: oa.appId })).callbacks.some((c: { package_id: string; attempts: number }) => c.package_id === sent.packageId && c.attempts >= 1));
      const t0 = Date.now();
      for (let hour = 1; hour <= 26; hour++) await app.admin('apps.callbacks.run', { at: new Date(t0 + hour * 3_600_000 + 60_000).toISOString() });
      const cb = (await app.admin('apps.callbacks.list', { appId: oa.appId })).callbacks.find((c: { package_id: string }) => c.package_id === sent.packageId);
      assert.equal(cb.status, 'failed');
      assert.ok(cb.attempts >= 20 && cb.attempts <= 40, String(cb.attempts));
      assert.equal(cb.log.length, cb.attempts);
    } finally {
      await rx.close();
    }
  });

  it('replaces the whole org in a job, reports it by getjobresult and a signed callback', async function () {
    this.timeout(30_000);
    const rx = await receiver((body) => ({ status: 200, text: '' + JSON.parse(decrypt(body.encrypt, org.key, 'sysOrgAssistant').toString()).packageId }));
    try {
      const bad = await org.post('/cgi/org/replaceall', { deptList: [{ id: 1, name: 'A', parentId: 0 }], userList: [{ userId: 'a', name: 'A', gender: 0, dept: [2] }] });
      assert.equal(bad.errcode, ERRCODE.ERRCODE_NOTEXIST_DEPT);
      assert.equal((await org.post('/cgi/org/replaceall', { deptList: [] })).errcode, ERRCODE.ERRCODE_MISS_USERLIST);
      assert.equal((await org.post('/cgi/org/replaceall', { userList: [{ userId: 'a', name: 'A', gender: 0, dept: [100] }, { userId: 'a', name: 'B', gender: 0, dept: [100] }] })).errcode, ERRCODE.ERRCODE_REPEAT_USERID);
      const r = await org.post('/cgi/org/replaceall', {
        deptList: [
          { id: 100, name: '总部', parentId: 0, sortId: 1 },
          { id: 200, name: '销售', parentId: 100, sortId: 2, alias: 'sales' },
        ],
        userList: [
          { userId: 'zhang.san', name: '张三', gender: 0, dept: [200], deptDetail: [{ deptId: 200, position: '经理', weight: 5, sortId: 1 }] },
          { userId: 'zhao.liu', name: '赵六', gender: 1, mobile: '13900000009', dept: [100, 200], authType: 2 },
        ],
        callback: { url: rx.url, token: 'replaceToken' },
      });
      assert.equal(r.errcode, 0, r.errmsg);
      const jobId = r.data.jobId as string;
      let result: any;
      for (let i = 0; i < 100; i++) {
        result = (await org.get('/cgi/getjobresult', { jobId })).data;
        if (result.result !== 1) break;
        await new Promise((x) => setTimeout(x, 100));
      }
      assert.deepEqual(result, { type: 'org_replace_all', result: 3, desc: 'ok' });
      const depts = (await app.admin<{ departments: Array<{ id: number; name: string; parentId: number | null }> }>('org.departments.list')).departments;
      assert.deepEqual(depts.map((d) => [d.id, d.name, d.parentId]).sort((a, b) => Number(a[0]) - Number(b[0])), [[100, '总部', null], [200, '销售', 100]]);
      const people = await app.admin<{ users: Array<{ account: string }> }>('org.users.list', { pageSize: 500 });
      assert.deepEqual(people.users.map((u) => u.account).sort(), ['zhang.san', 'zhao.liu']);
      assert.deepEqual((await org.get('/cgi/user/get', { userId: 'zhang.san' })).data.deptDetail, [{ deptId: 200, position: '经理', weight: 5, sortId: 0 }]);
      for (let i = 0; i < 50 && rx.hits.length < 1; i++) await new Promise((x) => setTimeout(x, 50));
      assert.equal(rx.hits.length, 1);
      const h = rx.hits[0];
      assert.equal(h.query.get('msg_signature'), signature('replaceToken', h.query.get('timestamp')!, h.query.get('nonce')!, h.body.encrypt));
      const note = JSON.parse(decrypt(h.body.encrypt, org.key, 'sysOrgAssistant').toString());
      assert.deepEqual(note.event, { type: 'org_replace_all', jobId, errcode: 0, errmsg: 'ok' });
      assert.equal(note.fromUser, 'sysOrgAssistant');
      assert.equal(typeof note.packageId, 'string');
      assert.equal((await org.get('/cgi/getjobresult', { jobId: 'nope' })).errcode, ERRCODE.ERRCODE_NOTEXIST_JOBID);
    } finally {
      await rx.close();
    }
  });
});

forEachDatabase('open API callbacks across a restart', ({ url }) => {
  it('keeps an undelivered callback through a restart and delivers it from the new process', async function () {
    this.timeout(60_000);
    let first: OpenApiApp | null = await startOpenApi(url());
    let second: OpenApiApp | null = null;
    const rx = await receiver(() => ({ status: 200, text: 'OK' }));
    try {
      const oaApp = await first.admin<{ appId: string }>('apps.create', { name: 'restart', callbackUrl: 'http://127.0.0.1:9/unreachable' });
      const user = await first.admin<{ id: number }>('org.users.create', { account: 'restart.user', name: 'R' });
      const sent = { packageId: `chat-${(await writeToApp(first, oaApp.appId, user.id, 'survive')).id}` };
      const f = first;
      await until('the apps service to act', async () => (await f.admin('apps.callbacks.list', { appId: oaApp.appId })).callbacks.some((c: { package_id: string }) => c.package_id === sent.packageId));
      await first.stop();
      first = null;
      second = await startOpenApi(url());
      await second.admin('apps.update', { appId: oaApp.appId, callbackUrl: rx.url });
      await second.admin('apps.callbacks.run', { at: new Date(Date.now() + 3_600_000).toISOString() });
      assert.equal(rx.hits.length, 1);
      const cb = (await second.admin('apps.callbacks.list', { appId: oaApp.appId })).callbacks.find((c: { package_id: string }) => c.package_id === sent.packageId);
      assert.equal(cb.status, 'delivered');
      assert.deepEqual(cb.log.map((l: { outcome: string }) => l.outcome), ['failed', 'ok']);
    } finally {
      await rx.close();
      await first?.stop();
      await second?.stop();
    }
  });
});

forEachDatabase('open API message audit', ({ url }) => {
  it('calls every conversation message back to sysMsgMonitor once it has a callback URL, from the durable log', async function () {
    this.timeout(60_000);
    const app = await startOpenApi(url());
    const rx = await receiver(() => ({ status: 200, text: '{"errcode":0}' }));
    try {
      const a = await app.admin<{ id: number }>('org.users.create', { account: 'audit.a', name: 'A' });
      const b = await app.admin<{ id: number }>('org.users.create', { account: 'audit.b', name: 'B' });
      const single = await app.call<{ id: string }>('im.conversations.create', { type: 'single', members: [a.id, b.id], createdBy: a.id });
      await app.call('im.send', { conversationId: single.id, senderId: a.id, clientMsgId: 'before-audit', type: 'text', body: { text: 'not audited' } });
      await app.admin('apps.audit.follow');
      await app.admin('apps.update', { appId: 'sysMsgMonitor', callbackUrl: rx.url });
      await app.call('im.send', { conversationId: single.id, senderId: a.id, clientMsgId: 'audited-1', type: 'text', body: { text: '审计我' } });
      await app.admin('apps.audit.follow');
      await app.admin('apps.callbacks.run', { at: new Date(Date.now() + 1000).toISOString() });
      for (let i = 0; i < 50 && rx.hits.length < 1; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(rx.hits.length, 1);
      const key = aesKey((await app.appInfo('sysMsgMonitor')).encodingAesKey);
      const msg = JSON.parse(decrypt(rx.hits[0].body.encrypt, key, 'sysMsgMonitor').toString());
      assert.equal(msg.fromUser, 'audit.a');
      assert.equal(msg.receiver, 'audit.b');
      assert.deepEqual(msg.text, { content: '审计我' });
      assert.equal(msg.msgType, 'text');
      assert.equal(typeof msg.msgId, 'number');
      await app.admin('apps.audit.follow');
      assert.equal((await app.admin('apps.callbacks.list', { appId: 'sysMsgMonitor' })).callbacks.length, 1, 'each message is queued once');
    } finally {
      await rx.close();
      await app.stop();
    }
  });
});
