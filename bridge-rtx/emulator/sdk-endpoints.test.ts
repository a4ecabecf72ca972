import assert from 'node:assert/strict';
import iconv from 'iconv-lite';
import { startRtxEmulator, type RtxEmulator } from './emulator.ts';
import { MAX_GROUP_MEMBERS } from './rtx-fault.ts';
import { SENDIM_SUCCESS_PAGE, SUCCESS_TEXT } from './sdk-routes.ts';
import { control, rawRequest, sdk } from './test-support.ts';

const pct = (bytes: Uint8Array) => [...bytes].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

describe('rtx emulator: HTTP SDK pages', () => {
  let emu: RtxEmulator;

  beforeEach(async () => {
    emu = await startRtxEmulator({ port: 0, hostPort: 0 });
    await control(emu, 'POST', '/users', { uid: 'zhangsan', name: '张三', password: 'pw', mobile: '13800000001', departments: ['公司\\技术部'], presence: 1 });
    await control(emu, 'POST', '/users', { uid: 'lisi', name: '李四', departments: ['公司\\技术部\\开发组'], presence: 2 });
    await control(emu, 'POST', '/users', { uid: 'wangwu', name: '王五', departments: ['公司\\市场部'] });
  });
  afterEach(async () => {
    await emu.stop();
  });

  const inbox = (uid: string) => control(emu, 'GET', `/users/${encodeURIComponent(uid)}/inbox`);

  describe('SendNotify.cgi', () => {
    it('delivers GBK text, rare name characters included, and answers 操作成功 in GBK', async () => {
      const res = await sdk(emu, 'SendNotify.cgi', { query: { receiver: 'lisi', title: '审批提醒', msg: '朱镕基、王堃、陶喆：请审批[合同|http://oa/1]', delaytime: 5000 } });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'text/html; charset=gb2312');
      assert.deepEqual(res.raw, iconv.encode(SUCCESS_TEXT, 'gbk'));
      const [n] = (await inbox('lisi')).notifications;
      assert.equal(n.msg, '朱镕基、王堃、陶喆：请审批[合同|http://oa/1]');
      assert.equal(n.title, '审批提醒');
      assert.equal(n.delayTime, 5000);
      assert.equal(n.whileOffline, false);
    });

    it('shows UTF-8 sent by mistake as mojibake, exactly as RTX would', async () => {
      await sdk(emu, 'SendNotify.cgi', { query: `receiver=lisi&msg=${pct(Buffer.from('你好中文', 'utf8'))}` });
      // AD E6 falls in GBK's user-defined area, which Windows maps to the private-use character U+E15F.
      assert.equal((await inbox('lisi')).notifications[0].msg, '浣犲ソ涓\uE15F枃');
    });

    it('cannot carry 𠮷: GBK-encoded it arrives as "?", as GB18030 or UTF-8 bytes it arrives as garbage', async () => {
      await sdk(emu, 'SendNotify.cgi', { query: { receiver: 'lisi', msg: '𠮷野家' } });
      await sdk(emu, 'SendNotify.cgi', { query: `receiver=lisi&msg=${pct(iconv.encode('𠮷', 'gb18030'))}` });
      await sdk(emu, 'SendNotify.cgi', { query: `receiver=lisi&msg=${pct(Buffer.from('𠮷', 'utf8'))}` });
      const msgs = (await inbox('lisi')).notifications.map((n: { msg: string }) => n.msg);
      assert.deepEqual(msgs, ['?野家', iconv.decode(iconv.encode('𠮷', 'gb18030'), 'gbk'), iconv.decode(Buffer.from('𠮷', 'utf8'), 'gbk')]);
      assert.ok(!msgs.some((m: string) => m.includes('𠮷')));
    });

    it('lets GET win: POST is read only when every GET field is empty', async () => {
      await sdk(emu, 'SendNotify.cgi', { query: { receiver: 'lisi', msg: 'from-get' }, form: { receiver: 'wangwu', msg: 'from-post', title: 'post-title' } });
      assert.equal((await inbox('lisi')).notifications[0].msg, 'from-get');
      assert.equal((await inbox('lisi')).notifications[0].title, '通知');
      assert.equal((await inbox('wangwu')).notifications.length, 0);
      await sdk(emu, 'SendNotify.cgi', { form: { receiver: 'wangwu', msg: '表单', title: '标题' } });
      assert.equal((await inbox('wangwu')).notifications[0].msg, '表单');
      assert.equal((await inbox('wangwu')).notifications[0].title, '标题');
    });

    it('ignores a body that is not form-encoded (PHP fills $_POST only from forms)', async () => {
      const res = await rawRequest(`${emu.url}/SendNotify.cgi`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"receiver":"lisi","msg":"x"}' });
      assert.equal(res.text, SUCCESS_TEXT);
      // No receiver at all: the shipped page hands RTX an empty user name, which reaches everyone.
      assert.equal((await inbox('wangwu')).notifications[0].msg, '');
    });

    it('matches page paths without regard to case, but parameter names exactly', async () => {
      for (const page of ['SENDNOTIFY.CGI', 'sendnotify.cgi', 'SendNotify.Cgi']) {
        const r = await sdk(emu, page, { query: { receiver: 'lisi', msg: page } });
        assert.equal(r.text, SUCCESS_TEXT, page);
      }
      assert.equal((await inbox('lisi')).notifications.length, 3);
      // `Receiver` is not `receiver`: the page sees no receiver and broadcasts.
      await sdk(emu, 'SendNotify.cgi', { query: { Receiver: 'lisi', msg: 'case' } });
      assert.equal((await inbox('wangwu')).notifications.at(-1).msg, 'case');
      assert.equal((await inbox('wangwu')).notifications.at(-1).broadcast, true);
    });

    it('broadcasts receiver=all and splits lists on , and ; skipping unknown names', async () => {
      await sdk(emu, 'SendNotify.cgi', { query: { receiver: 'ALL', msg: '全员通知' } });
      for (const u of ['zhangsan', 'lisi', 'wangwu']) assert.equal((await inbox(u)).notifications[0].broadcast, true, u);
      const r = await sdk(emu, 'SendNotify.cgi', { query: { receiver: 'zhangsan;nobody, wangwu', msg: 'list' } });
      assert.equal(r.text, SUCCESS_TEXT);
      assert.equal((await inbox('zhangsan')).notifications.at(-1).msg, 'list');
      assert.equal((await inbox('wangwu')).notifications.at(-1).msg, 'list');
      assert.equal((await inbox('lisi')).notifications.at(-1).msg, '全员通知');
      assert.equal((await inbox('wangwu')).notifications.at(-1).whileOffline, true);
    });
  });

  describe('sendnotifybydepart.php and sendnotifybygroup.php', () => {
    it('reaches a department and its sub-departments, online users only unless online=0', async () => {
      await sdk(emu, 'sendnotifybydepart.php', { query: { receiverdepart: '公司\\技术部', msg: '技术部开会' } });
      assert.equal((await inbox('zhangsan')).notifications[0].msg, '技术部开会');
      assert.equal((await inbox('lisi')).notifications[0].msg, '技术部开会'); // away counts as online
      assert.equal((await inbox('wangwu')).notifications.length, 0);
      await sdk(emu, 'sendnotifybydepart.php', { query: { receiverdepart: '市场部', msg: 'offline-too', online: 0 } });
      assert.equal((await inbox('wangwu')).notifications[0].msg, 'offline-too');
      assert.equal((await inbox('wangwu')).notifications[0].via, 'sendnotifybydepart.php');
      const online = await sdk(emu, 'sendnotifybydepart.php', { query: { receiverdepart: '市场部', msg: 'nobody-online' } });
      assert.equal(online.text, SUCCESS_TEXT);
      assert.equal((await inbox('wangwu')).notifications.length, 1);
    });

    it('answers an unknown department with RTX error text', async () => {
      const r = await sdk(emu, 'sendnotifybydepart.php', { query: { receiverdepart: '不存在的部门', msg: 'x' } });
      assert.equal(r.status, 200);
      assert.equal(r.text, '部门[不存在的部门]不存在<br>');
    });

    it('reaches the members of an RTX group by name', async () => {
      await control(emu, 'POST', '/groups', { name: '项目群', members: ['zhangsan', 'wangwu'] });
      await sdk(emu, 'sendnotifybygroup.php', { query: { receivergroup: '项目群', msg: '群通知', online: 0 } });
      assert.equal((await inbox('zhangsan')).notifications[0].msg, '群通知');
      assert.equal((await inbox('wangwu')).notifications[0].msg, '群通知');
      assert.equal((await inbox('lisi')).notifications.length, 0);
      const r = await sdk(emu, 'sendnotifybygroup.php', { query: { receivergroup: '无此群', msg: 'x' } });
      assert.equal(r.text, '群[无此群]不存在<br>');
    });
  });

  describe('SendIM.cgi', () => {
    it('opens a conversation and answers with the alert page', async () => {
      const key = '{11111111-2222-3333-4444-555555555555}';
      const r = await sdk(emu, 'SendIM.cgi', { query: { sender: 'zhangsan', pwd: 'pw', receivers: 'lisi', msg: '你好', sessionid: key } });
      assert.equal(r.text, SENDIM_SUCCESS_PAGE);
      const [im] = (await inbox('lisi')).ims;
      assert.equal(im.key, key);
      assert.equal(im.from, 'zhangsan');
      assert.equal(im.text, '你好');
      assert.equal(im.mode, 0);
      const conv = await control(emu, 'GET', `/conversations/${encodeURIComponent(key)}`);
      assert.deepEqual(conv.members, ['zhangsan', 'lisi']);
      assert.equal(conv.kind, 'single');
    });

    it('posts into the same conversation when the GUID is reused; a third person makes it multi-person', async () => {
      const key = '{AAAAAAAA-2222-3333-4444-555555555555}';
      await sdk(emu, 'SendIM.cgi', { query: { sender: 'zhangsan', pwd: 'pw', receivers: 'lisi', msg: 'one', sessionid: key } });
      await sdk(emu, 'SendIM.cgi', { query: { sender: 'zhangsan', pwd: 'pw', receivers: 'lisi', msg: 'two', sessionid: key.toLowerCase() } });
      let conv = await control(emu, 'GET', `/conversations/${encodeURIComponent(key)}`);
      assert.deepEqual(conv.messages.map((m: { text: string }) => m.text), ['one', 'two']);
      await sdk(emu, 'SendIM.cgi', { query: { sender: 'zhangsan', pwd: 'pw', receivers: 'lisi;wangwu', msg: 'three', sessionid: key } });
      conv = await control(emu, 'GET', `/conversations/${encodeURIComponent(key)}`);
      assert.equal(conv.kind, 'multi');
      assert.deepEqual(conv.members, ['zhangsan', 'lisi', 'wangwu']);
      assert.equal((await inbox('wangwu')).ims[0].mode, 4);
      assert.equal((await control(emu, 'GET', '/conversations')).conversations.length, 1);
    });

    it('reads every field from POST when GET carries only receivers (the $receiver typo)', async () => {
      const r = await sdk(emu, 'SendIM.cgi', { query: { receivers: 'wangwu' }, form: { sender: 'zhangsan', pwd: 'pw', receivers: 'lisi', msg: 'via-post' } });
      assert.equal(r.text, SENDIM_SUCCESS_PAGE);
      assert.equal((await inbox('lisi')).ims[0].text, 'via-post');
      assert.equal((await inbox('wangwu')).ims.length, 0);
    });

    it('refuses a wrong password, an unknown sender and a malformed session id', async () => {
      assert.equal((await sdk(emu, 'SendIM.cgi', { query: { sender: 'zhangsan', pwd: 'nope', receivers: 'lisi', msg: 'x' } })).text, '用户[zhangsan]密码错误');
      assert.equal((await sdk(emu, 'SendIM.cgi', { query: { sender: 'ghost', pwd: '', receivers: 'lisi', msg: 'x' } })).text, '用户[ghost]不存在');
      assert.equal((await sdk(emu, 'SendIM.cgi', { query: { sender: 'zhangsan', pwd: 'pw', receivers: 'lisi', msg: 'x', sessionid: '1234' } })).text, '会话ID[1234]格式错误，应为 {GUID}');
      assert.equal((await inbox('lisi')).ims.length, 0);
    });

    it('silently does nothing for receivers that do not exist', async () => {
      const r = await sdk(emu, 'SendIM.cgi', { query: { sender: 'zhangsan', pwd: 'pw', receivers: 'ghost1,ghost2', msg: 'lost' } });
      assert.equal(r.text, SENDIM_SUCCESS_PAGE);
      assert.equal((await control(emu, 'GET', '/conversations')).conversations.length, 0);
    });

    it(`caps a discussion at ${MAX_GROUP_MEMBERS} members, sender included`, async () => {
      const names: string[] = [];
      for (let i = 0; i < MAX_GROUP_MEMBERS; i++) {
        names.push(`u${i}`);
        await control(emu, 'POST', '/users', { uid: `u${i}` });
      }
      const tooMany = await sdk(emu, 'SendIM.cgi', { form: { sender: 'zhangsan', pwd: 'pw', receivers: names.join(';'), msg: 'x' } });
      assert.equal(tooMany.text, `讨论组成员不能超过${MAX_GROUP_MEMBERS}人（当前${MAX_GROUP_MEMBERS + 1}人）`);
      assert.equal((await inbox('u0')).ims.length, 0);
      const key = '{BBBBBBBB-2222-3333-4444-555555555555}';
      const ok = await sdk(emu, 'SendIM.cgi', { form: { sender: 'zhangsan', pwd: 'pw', receivers: names.slice(1).join(';'), msg: 'fits', sessionid: key } });
      assert.equal(ok.text, SENDIM_SUCCESS_PAGE);
      const more = await sdk(emu, 'SendIM.cgi', { form: { sender: 'zhangsan', pwd: 'pw', receivers: 'u0', msg: 'one more', sessionid: key } });
      assert.match(more.text, /不能超过80人/);
      assert.equal((await inbox('u79')).ims[0].text, 'fits');
    });

    it('posts into an RTX group when given the group key; only members may', async () => {
      const g = await control(emu, 'POST', '/groups', { name: '项目群', members: ['zhangsan', 'lisi', 'wangwu'] });
      await sdk(emu, 'SendIM.cgi', { query: { sender: 'zhangsan', pwd: 'pw', receivers: '', msg: '群消息', sessionid: g.key } });
      for (const u of ['lisi', 'wangwu']) {
        const [im] = (await inbox(u)).ims;
        assert.equal(im.disGroupId, g.id, u);
        assert.equal(im.title, '项目群');
        assert.equal(im.mode, 4);
      }
      await control(emu, 'POST', '/users', { uid: 'outsider', password: 'x' });
      const r = await sdk(emu, 'SendIM.cgi', { query: { sender: 'outsider', pwd: 'x', receivers: 'lisi', msg: 'no', sessionid: g.key } });
      assert.equal(r.text, '用户[outsider]不是群[项目群]的成员');
    });
  });

  describe('GetSession.cgi, GetMobile.cgi, GetImage.cgi, getstatus.php, Login.php', () => {
    it('GetSession.cgi gives a session key for a known user, GET or POST', async () => {
      assert.match((await sdk(emu, 'GetSession.cgi', { query: { receiver: 'zhangsan' } })).text, /^\{[0-9A-F-]{36}\}$/);
      assert.match((await sdk(emu, 'getsession.cgi', { form: { receiver: 'lisi' } })).text, /^\{[0-9A-F-]{36}\}$/);
      assert.equal((await sdk(emu, 'GetSession.cgi', { query: { receiver: 'ghost' } })).text, '用户[ghost]不存在');
    });

    it('GetMobile.cgi returns the mobile number', async () => {
      assert.equal((await sdk(emu, 'GetMobile.cgi', { query: { receiver: 'zhangsan' } })).text, '13800000001');
      assert.equal((await sdk(emu, 'GetMobile.cgi', { query: { receiver: 'lisi' } })).text, '');
    });

    it('GetImage.cgi redirects to the status picture', async () => {
      const r = await sdk(emu, 'GetImage.cgi', { query: { receiver: 'lisi' } });
      assert.equal(r.status, 302);
      assert.equal(r.headers.location, 'images/1-3.bmp');
      assert.equal((await sdk(emu, 'GetImage.cgi', { query: { receiver: 'ghost' } })).headers.location, 'images/0-2.bmp');
    });

    it('getstatus.php answers 0 offline, 1 online, 2 away', async () => {
      assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'zhangsan' } })).text, '1');
      assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'lisi' } })).text, '2');
      assert.equal((await sdk(emu, 'GetStatus.php', { query: { username: 'wangwu' } })).text, '0');
      await control(emu, 'PUT', '/users/wangwu/presence', { status: 1 });
      assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'WangWu' } })).text, '1');
      assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'ghost' } })).text, '用户[ghost]不存在');
    });

    it('Login.php answers true, false or "params is null", reading GET only', async () => {
      assert.equal((await sdk(emu, 'Login.php', { query: { user: 'zhangsan', pwd: 'pw' } })).text, 'true');
      assert.equal((await sdk(emu, 'login.php', { query: { user: 'zhangsan', pwd: 'bad' } })).text, 'false');
      assert.equal((await sdk(emu, 'Login.php', { query: { user: 'ghost', pwd: 'x' } })).text, 'false');
      assert.equal((await sdk(emu, 'Login.php', { form: { user: 'zhangsan', pwd: 'pw' } })).text, 'params is null');
    });

    it('answers 404 for a page RTX does not have', async () => {
      assert.equal((await sdk(emu, 'nothing.php')).status, 404);
    });
  });
});
