import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { CLIENT_SERVICES, startClientApp, until, type ClientApp, type Person } from '../gateway/client/test-kit.ts';
import { aesKey, decrypt } from './crypto.ts';
import { receiver, YdTestClient } from './test-kit.ts';

type Hit = { query: URLSearchParams; body: any };

forEachDatabase('apps as chat partners', ({ url }) => {
  let app: ClientApp;
  let oa: YdTestClient;
  let oaInfo: { appId: string; encodingAesKey: string };
  let rx: Awaited<ReturnType<typeof receiver>>;
  let zs: Person;
  let ls: Person;
  const callbacks = (): any[] => rx.hits.map((h: Hit) => JSON.parse(decrypt(h.body.encrypt, aesKey(oaInfo.encodingAesKey), oaInfo.appId).toString()));

  before(async function () {
    this.timeout(60_000);
    app = await startClientApp(url(), [...CLIENT_SERVICES, 'apps']);
    rx = await receiver(() => ({ status: 200, text: 'OK' }));
    oaInfo = await app.admin('apps.create', {
      name: '审批助手',
      homeUrl: 'https://oa.example.com/home?t=$TOKEN$',
      callbackUrl: rx.url,
      autoReply: [
        { match: 'exact', keyword: '帮助', reply: '回复“待办”查看待办' },
        { match: 'contains', keyword: '请假', reply: '请假请走 OA 流程' },
      ],
      menus: [
        { name: '待办', type: 'click', key: 'todo' },
        { name: '更多', type: 'click', key: 'more', children: [{ name: '门户', type: 'url', url: 'https://oa.example.com/portal?t=$TOKEN$' }] },
      ],
    });
    const buin = (await app.call<{ company: { buin: number } }>('system.info')).company.buin;
    oa = new YdTestClient(app.base, buin, oaInfo.appId, oaInfo.encodingAesKey);
    assert.equal((await oa.gettoken()).errcode, 0);
    zs = await app.user('zhang.san');
    ls = await app.user('li.si');
  });

  after(async () => {
    await rx?.close();
    await app?.stop();
  });

  const chatOf = async (p: Person) => {
    const c = await p.client.apps.openChat(oaInfo.appId);
    return (await p.client.messages.list(c.id)).messages;
  };

  it('lists the app with its menus and opens one chat per person, of type app, named after the app', async () => {
    const apps = await zs.client.apps.list();
    const mine = apps.find((a) => a.appId === oaInfo.appId)!;
    assert.equal(mine.name, '审批助手');
    assert.deepEqual(
      mine.menus.map((m) => m.name),
      ['待办', '更多'],
    );
    const c1 = await zs.client.apps.openChat(oaInfo.appId);
    const c2 = await zs.client.apps.openChat(oaInfo.appId);
    assert.equal(c1.id, `a:${oaInfo.appId}:${zs.id}`);
    assert.equal(c2.id, c1.id, 'the same chat every time');
    assert.equal(c1.type, 'app');
    assert.equal(c1.name, '审批助手');
    assert.deepEqual(c1.members, [{ userId: zs.id, role: 'member' }]);
    const listed = (await zs.client.conversations.list()).find((c) => c.id === c1.id)!;
    assert.equal(listed.type, 'app');
  });

  it('answers by the auto-reply rules without calling the app back', async () => {
    const chat = await zs.client.apps.openChat(oaInfo.appId);
    const asked = await zs.client.messages.send(chat.id, { type: 'text', body: { text: '帮助' } });
    await zs.client.messages.send(chat.id, { type: 'text', body: { text: '我想请假三天' } });
    await until('two auto-replies', async () => (await chatOf(zs)).filter((x) => x.senderApp).length >= 2);
    const msgs = await chatOf(zs);
    const replies = msgs.filter((m) => m.senderApp === oaInfo.appId);
    assert.deepEqual(
      replies.map((m) => [m.senderId, m.type, m.body.text]),
      [
        [0, 'text', '回复“待办”查看待办'],
        [0, 'text', '请假请走 OA 流程'],
      ],
    );
    assert.ok(replies[0].id > asked.id);
    // Both were answered by rules: nothing reached the app.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(callbacks().filter((c) => c.msgType === 'text').length, 0);
  });

  it('calls the app back with what nobody answered, and the app answers into the same chat', async () => {
    const chat = await zs.client.apps.openChat(oaInfo.appId);
    const sent = await zs.client.messages.send(chat.id, { type: 'text', body: { text: '报销单 42 到哪了？' } });
    await until('the callback', () => callbacks().some((c) => c.packageId === `chat-${sent.id}`));
    const cb = callbacks().find((c) => c.packageId === `chat-${sent.id}`);
    assert.deepEqual({ ...cb, createTime: 0 }, { fromUser: 'zhang.san', createTime: 0, msgType: 'text', text: { content: '报销单 42 到哪了？' }, packageId: `chat-${sent.id}` });
    const r = await oa.post('/cgi/msg/send', { toUser: 'zhang.san', msgType: 'text', text: { content: '已到财务，预计周五付款' } });
    assert.equal(r.errcode, 0, r.errmsg);
    const last = (await chatOf(zs)).at(-1)!;
    assert.deepEqual([last.senderApp, last.body.text], [oaInfo.appId, '已到财务，预计周五付款']);
    // The reply reaches the person's inbox like any message (a client syncs it).
    const page = await zs.client.inbox.read(0, 500);
    assert.ok(page.items.some((i) => i.kind === 'message' && (i.data as { id: number }).id === last.id));
  });

  it('hands a picture a person sends to the app as media it can download', async () => {
    const chat = await zs.client.apps.openChat(oaInfo.appId);
    const bytes = new TextEncoder().encode('a picture of a receipt');
    const file = await zs.client.files.upload(bytes, { name: 'receipt.png', kind: 'image', conversationId: chat.id });
    const sent = await zs.client.messages.send(chat.id, { type: 'image', body: { fileId: file.id } });
    await until('the image callback', () => callbacks().some((c) => c.packageId === `chat-${sent.id}`));
    const cb = callbacks().find((c) => c.packageId === `chat-${sent.id}`);
    assert.equal(cb.msgType, 'image');
    const got = await oa.raw('POST', '/cgi/media/get', { body: JSON.stringify(oa.envelope({ mediaId: cb.image.media_id })), contentType: 'application/json' });
    assert.deepEqual(oa.open(got.text), Buffer.from(bytes));
  });

  it('passes menu clicks to the app and answers url items with an SSO token filled in', async () => {
    const click = await zs.client.apps.menu(oaInfo.appId, 'todo');
    assert.match(String(click.packageId), /./);
    await until('the menu event', () => callbacks().some((c) => c.packageId === click.packageId));
    const ev = callbacks().find((c) => c.packageId === click.packageId);
    assert.deepEqual([ev.fromUser, ev.msgType, ev.event], ['zhang.san', 'event', { type: 'menu_click', key: 'todo' }]);
    const portal = await zs.client.apps.menu(oaInfo.appId, '门户');
    const token = new URL(portal.url!).searchParams.get('t')!;
    const who = await fetch(`${app.base}/cgi/identify?token=${encodeURIComponent(token)}`).then((x) => x.json() as Promise<any>);
    assert.equal(who.userInfo.account, 'zhang.san');
    const missing = await app.http('POST', `/v1/apps/${oaInfo.appId}/menu`, { token: zs.token, body: { key: 'nope' } });
    assert.equal(missing.status, 404);
    assert.deepEqual([missing.body.error.code, missing.body.error.field], ['QIAO_NOT_FOUND', 'key']);
  });

  it('hands picked messages of a conversation to the app as a zip it downloads with the file_id', async () => {
    const chat = await zs.client.conversations.create({ type: 'single', members: [ls.id] });
    const m1 = await zs.client.messages.send(chat.id, { type: 'text', body: { text: '合同第 3 条' } });
    const m2 = await ls.client.messages.send(chat.id, { type: 'text', body: { text: '同意' } });
    const out = await zs.client.apps.exportMessages(oaInfo.appId, { conversationId: chat.id, messageIds: [m1.id, m2.id], key: '门户' });
    assert.equal(out.messages, 2);
    const u = new URL(out.url);
    assert.equal(u.origin + u.pathname, 'https://oa.example.com/portal');
    assert.equal(u.searchParams.get('file_id'), out.fileId);
    const who = await fetch(`${app.base}/cgi/identify?token=${encodeURIComponent(u.searchParams.get('token')!)}`).then((x) => x.json() as Promise<any>);
    assert.equal(who.userInfo.account, 'zhang.san');
    const zip = await oa.raw('POST', '/cgi/session/msg/download.zip', { body: JSON.stringify(oa.envelope({ file_id: out.fileId })), contentType: 'application/json' });
    assert.equal(oa.open(zip.text).subarray(0, 2).toString(), 'PK', 'a zip, sealed with the app key');
    const stranger = await app.user('wang.wu');
    const refused = await app.http('POST', `/v1/apps/${oaInfo.appId}/session-export`, { token: stranger.token, body: { conversationId: chat.id, messageIds: [m1.id] } });
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
  });

  it('keeps chats private, takes only text, image and file, and refuses group operations', async () => {
    const chat = await zs.client.apps.openChat(oaInfo.appId);
    const peek = await app.http('GET', `/v1/conversations/${encodeURIComponent(chat.id)}/messages`, { token: ls.token });
    assert.equal(peek.status, 403);
    const post = await app.http('POST', `/v1/conversations/${encodeURIComponent(chat.id)}/messages`, { token: ls.token, body: { clientMsgId: 'x1', type: 'text', body: { text: 'hi' } } });
    assert.equal(post.status, 403);
    const link = await app.http('POST', `/v1/conversations/${encodeURIComponent(chat.id)}/messages`, {
      token: zs.token,
      body: { clientMsgId: 'x2', type: 'link', body: { title: 't', url: 'https://example.com' } },
    });
    assert.equal(link.status, 422);
    assert.equal(link.body.error.field, 'type');
    assert.match(link.body.error.message, /text, image, file/);
    const invite = await app.http('POST', `/v1/conversations/${encodeURIComponent(chat.id)}/members`, { token: zs.token, body: { userIds: [ls.id] } });
    assert.equal(invite.status, 403);
    assert.deepEqual((await zs.client.conversations.get(chat.id)).members, [{ userId: zs.id, role: 'member' }]);
  });

  it('tells the person when the app no longer takes messages', async () => {
    const chat = await ls.client.apps.openChat(oaInfo.appId);
    await app.admin('apps.update', { appId: oaInfo.appId, enabled: false });
    try {
      const refused = await app.http('POST', `/v1/apps/${oaInfo.appId}/chat`, { token: ls.token });
      assert.equal(refused.status, 403);
      await ls.client.messages.send(chat.id, { type: 'text', body: { text: 'hello?' } });
      await until('the notice', async () => (await ls.client.messages.list(chat.id)).messages.some((m) => m.senderApp));
    const notice = (await ls.client.messages.list(chat.id)).messages.find((m) => m.senderApp)!;
      assert.match(String(notice.body.text), /no longer takes messages/);
    } finally {
      await app.admin('apps.update', { appId: oaInfo.appId, enabled: true });
    }
  });
});
