import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../../test/support/databases.ts';
import { PASSWORD, SUPER } from '../../auth/test-kit.ts';
import { startClientApp, type ClientApp, type Person } from './test-kit.ts';

forEachDatabase('client API over HTTP', ({ url }) => {
  let app: ClientApp;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let chat: string;
  let group: string;
  const text = (t: string, clientMsgId = `m-${Math.random().toString(36).slice(2)}`) => ({ clientMsgId, type: 'text', body: { text: t } });
  const imSettings = (patch: object) => app.broker.call('im.settings.update', patch, { meta: SUPER });

  before(async function () {
    this.timeout(60_000);
    app = await startClientApp(url());
    [alice, bob, carol] = [await app.user('alice'), await app.user('bob'), await app.user('carol')];
    chat = (await alice.client.conversations.create({ type: 'single', members: [bob.id] })).id;
    group = (await alice.client.conversations.create({ type: 'discussion', members: [bob.id], name: 'Planning' })).id;
  });
  after(async () => app?.stop());

  it('serves its OpenAPI document, and every documented route refuses a missing, malformed or forged token', async () => {
    const doc = await app.http('GET', '/v1/openapi.json');
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, '3.1.0');
    const paths = doc.body.paths as Record<string, Record<string, { security?: unknown }>>;
    for (const p of ['/v1/sync', '/v1/conversations/{conversationId}/messages', '/v1/files/{fileId}/content', '/v1/auth/login', '/v1/presence']) assert.ok(paths[p], `${p} is documented`);
    const sample: Record<string, string> = { conversationId: chat, messageId: '1', fileId: `f${'0'.repeat(24)}`, uploadId: `u${'0'.repeat(24)}`, userId: String(bob.id) };
    let checked = 0;
    for (const [template, methods] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(methods)) {
        // The auth routes belong to the auth service and are tested with it.
        if (!op.security || template.startsWith('/v1/auth/')) continue;
        const path = template.replace(/\{(\w+)\}/g, (_, name: string) => sample[name]);
        const body = ['post', 'put', 'patch'].includes(method) ? {} : undefined;
        for (const token of [undefined, 'forged-token-forged-token-forged-token-fooo', 'not a token']) {
          const r = await app.http(method.toUpperCase(), path, { token, body });
          assert.equal(r.status, 401, `${method} ${path} with ${token ?? 'no token'}: ${JSON.stringify(r.body)}`);
          assert.equal(r.body.error.code, 'QIAO_UNAUTHENTICATED');
          assert.equal(r.body.error.field, 'authorization', `${method} ${path}`);
        }
        checked++;
      }
    }
    assert.ok(checked >= 30, `${checked} routes checked`);
    const malformed = await app.http('GET', '/v1/conversations', { headers: { authorization: 'Basic abc' } });
    assert.deepEqual(malformed.body.error, { code: 'QIAO_UNAUTHENTICATED', message: 'Authorization header must be "Bearer <token>"', field: 'authorization' });
  });

  it('allows nothing but the password change while one is required', async () => {
    const dave = await app.person('dave');
    await app.admin('auth.users.setPassword', { userId: dave, password: PASSWORD, mustChange: true });
    const login = await app.http('POST', '/v1/auth/login', { body: { account: 'dave', password: PASSWORD, deviceType: 'web', deviceId: 'b-dave' } });
    assert.equal(login.body.mustChangePassword, true);
    const token = login.body.token as string;
    for (const [method, path] of [['GET', '/v1/conversations'], ['GET', '/v1/sync?since=0'], ['GET', '/v1/me'], ['POST', `/v1/conversations`]]) {
      const r = await app.http(method, path, { token, body: method === 'POST' ? { type: 'single', members: [alice.id] } : undefined });
      assert.equal(r.status, 403, path);
      assert.equal(r.body.error.code, 'QIAO_AUTH_PASSWORD_CHANGE_REQUIRED');
    }
    assert.equal((await app.http('POST', '/v1/auth/password', { token, body: { oldPassword: PASSWORD, newPassword: 'Dave#2025new' } })).status, 200);
    const after = await app.http('GET', '/v1/me', { token });
    assert.equal(after.status, 200);
    assert.equal(after.body.userId, dave);
  });

  it('acts only as the token’s user: fields naming another actor are refused', async () => {
    const asBob = await app.http('POST', `/v1/conversations/${chat}/messages`, { token: alice.token, body: { ...text('hi'), senderId: bob.id } });
    assert.equal(asBob.status, 422);
    assert.deepEqual(asBob.body.error, { code: 'QIAO_VALIDATION', message: 'senderId: is not accepted; you always act as the user your token belongs to', field: 'senderId' });
    const createdBy = await app.http('POST', '/v1/conversations', { token: alice.token, body: { type: 'single', members: [carol.id], createdBy: bob.id } });
    assert.equal(createdBy.body.error.field, 'createdBy');
    const sync = await app.http('GET', `/v1/sync?since=0&userId=${bob.id}`, { token: alice.token });
    assert.equal(sync.status, 422);
    assert.equal(sync.body.error.field, 'userId');
    const sent = await app.http('POST', `/v1/conversations/${chat}/messages`, { token: alice.token, body: text('from alice') });
    assert.equal(sent.body.senderId, alice.id);
  });

  it('keeps a non-member out: no reading, no sending, no reading state, no files (403), and says 404 for what does not exist', async () => {
    const m = await alice.client.messages.send(chat, { type: 'text', body: { text: 'private' }, receipt: true });
    const attempts: Array<[string, string, unknown?]> = [
      ['GET', `/v1/conversations/${chat}`],
      ['GET', `/v1/conversations/${chat}/messages`],
      ['POST', `/v1/conversations/${chat}/messages`, text('let me in')],
      ['POST', `/v1/conversations/${chat}/read`, { upTo: m.id }],
      ['GET', `/v1/conversations/${chat}/receipts?messageIds=${m.id}`],
      ['POST', `/v1/messages/${m.id}/recall`],
      ['GET', `/v1/messages/${m.id}/receipt`],
      ['GET', `/v1/messages/search?conversationId=${encodeURIComponent(chat)}`],
      ['GET', `/v1/conversations/${group}/files`],
      ['PATCH', `/v1/conversations/${group}`, { name: 'mine now' }],
      ['POST', `/v1/conversations/${group}/members`, { userIds: [carol.id] }],
    ];
    for (const [method, path, body] of attempts) {
      const r = await app.http(method, path, { token: carol.token, body });
      assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'QIAO_NOT_A_MEMBER', path);
    }
    const list = await app.http('GET', '/v1/conversations', { token: carol.token });
    assert.deepEqual(list.body.conversations, []);
    const { items } = await carol.client.inbox.read(0);
    assert.ok(!items.some((i) => i.kind === 'message'), 'nothing of the chat reached her inbox');
    const missing = await app.http('GET', '/v1/conversations/d:nope/messages', { token: alice.token });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'QIAO_CONVERSATION_NOT_FOUND');
  });

  it('stores a send retried three times with one clientMsgId once, also when the retries race', async () => {
    const body = text('exactly once', 'retry-1');
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await app.http('POST', `/v1/conversations/${chat}/messages`, { token: alice.token, body }));
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
    assert.equal(new Set(answers.map((a) => a.body.id)).size, 1);
    const raced = await Promise.all([1, 2, 3].map(() => app.http('POST', `/v1/conversations/${chat}/messages`, { token: alice.token, body: text('raced', 'retry-2') })));
    assert.equal(new Set(raced.map((a) => a.body.id)).size, 1);
    const { messages } = await bob.client.messages.list(chat, { limit: 500 });
    assert.equal(messages.filter((x) => x.clientMsgId === 'retry-1').length, 1);
    assert.equal(messages.filter((x) => x.clientMsgId === 'retry-2').length, 1);
    const inbox = (await bob.client.inbox.read(0, 1000)).items.filter((i) => i.kind === 'message').map((i) => (i.data as { clientMsgId: string }).clientMsgId);
    assert.equal(inbox.filter((c) => c === 'retry-1').length, 1);
    // The same id in another conversation is a client bug, answered as such.
    const reused = await app.http('POST', `/v1/conversations/${group}/messages`, { token: alice.token, body });
    assert.equal(reused.status, 409);
    assert.equal(reused.body.error.field, 'clientMsgId');
  });

  it('recalls within the window and refuses a recall after it, over HTTP', async () => {
    const fresh = await alice.client.messages.send(chat, { type: 'text', body: { text: 'oops' } });
    const recalled = await app.http('POST', `/v1/messages/${fresh.id}/recall`, { token: alice.token });
    assert.equal(recalled.status, 200);
    assert.deepEqual(recalled.body.body, {});
    const byBob = await app.http('POST', `/v1/messages/${(await alice.client.messages.send(chat, { type: 'text', body: { text: 'mine' } })).id}/recall`, { token: bob.token });
    assert.equal(byBob.status, 403);
    await imSettings({ recallWindowSeconds: 0 });
    try {
      const late = await alice.client.messages.send(chat, { type: 'text', body: { text: 'too late' } });
      await new Promise((r) => setTimeout(r, 20));
      const refused = await app.http('POST', `/v1/messages/${late.id}/recall`, { token: alice.token });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'QIAO_RECALL_WINDOW_CLOSED');
      assert.equal(refused.body.error.field, 'messageId');
      assert.match(refused.body.error.message, /within 0 second/);
      const { messages } = await bob.client.messages.list(chat, { after: late.id - 1 });
      assert.deepEqual(messages[0].body, { text: 'too late' }, 'still there for everybody');
    } finally {
      await imSettings({ recallWindowSeconds: 120 });
    }
  });

  it('answers bad input clearly, naming the field, and stores nothing', async () => {
    const before = (await bob.client.messages.list(chat, { limit: 500 })).messages.length;
    const cases: Array<[unknown, number, string, string?]> = [
      [{ ...text('x'), type: 'telegram' }, 422, 'type'],
      [{ clientMsgId: 'c1', type: 'text' }, 422, 'body'],
      [{ type: 'text', body: { text: 'x' } }, 422, 'clientMsgId'],
      [{ ...text('x'), clientMsgId: 'x'.repeat(65) }, 422, 'clientMsgId'],
      [{ ...text('x'), body: 'hello' }, 422, 'body'],
      [text('x'.repeat(5001)), 422, 'body.text'],
      [{ ...text('x'), body: { text: 'hi', color: 'red' } }, 422, 'body.color'],
      [['not', 'an', 'object'], 422, 'body'],
    ];
    for (const [body, status, field] of cases) {
      const r = await app.http('POST', `/v1/conversations/${chat}/messages`, { token: alice.token, body });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.field, field, JSON.stringify(r.body));
    }
    const notJson = await app.http('POST', `/v1/conversations/${chat}/messages`, { token: alice.token, raw: '{"clientMsgId": ' });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.error.field, 'body');
    const huge = await app.http('POST', `/v1/conversations/${chat}/messages`, { token: alice.token, body: text('x'.repeat(1_100_000)) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.error.code, 'QIAO_PAYLOAD_TOO_LARGE');
    for (const [path, field] of [
      ['/v1/sync?since=-1', 'since'],
      ['/v1/sync', 'since'],
      ['/v1/sync?since=0&limit=5000', 'limit'],
      [`/v1/conversations/${chat}/messages?limit=0`, 'limit'],
      [`/v1/conversations/${chat}/receipts?messageIds=1,,2`, 'messageIds'],
      ['/v1/messages/search?from=yesterday', 'from'],
      ['/v1/messages/abc/receipt', 'messageId'],
      [`/v1/presence?userIds=${'1,'.repeat(1000)}1`, 'userIds'],
    ] as const) {
      const r = await app.http('GET', path, { token: alice.token });
      assert.equal(r.status, 422, `${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.field, field, path);
    }
    assert.equal((await bob.client.messages.list(chat, { limit: 500 })).messages.length, before);
  });

  it('moves read cursors, shows receipts and searches history', async () => {
    const asked = await alice.client.messages.send(chat, { type: 'text', body: { text: 'Lunch at noon? 中文也行' }, receipt: true });
    const other = await alice.client.messages.send(chat, { type: 'text', body: { text: 'plain' } });
    assert.equal((await alice.client.messages.receipt(asked.id)).readCount, 0);
    const read = await bob.client.messages.read(chat, other.id);
    assert.deepEqual(read, { conversationId: chat, lastReadId: other.id, changed: true });
    assert.equal((await bob.client.messages.read(chat, asked.id)).changed, false, 'a cursor never goes back');
    const receipt = await alice.client.messages.receipt(asked.id);
    assert.deepEqual([receipt.readCount, receipt.total, receipt.read], [1, 1, [bob.id]]);
    assert.deepEqual(await alice.client.messages.receiptCounts(chat, [asked.id, other.id]), [{ messageId: asked.id, total: 1, readCount: 1 }]);
    const found = await bob.client.messages.search({ keyword: 'LUNCH' });
    assert.deepEqual(found.messages.map((x) => x.id), [asked.id]);
    assert.deepEqual((await bob.client.messages.search({ keyword: '中文' })).messages.map((x) => x.id), [asked.id]);
    const window = await bob.client.messages.search({ senderId: alice.id, conversationId: chat, from: asked.createdAt, to: other.createdAt });
    assert.deepEqual(window.messages.map((x) => x.id), [other.id, asked.id]);
    assert.deepEqual((await carol.client.messages.search({ keyword: 'lunch' })).messages, [], 'only your own conversations are searched');
  });

  it('lets people the admin permitted send broadcasts, and nobody else', async () => {
    const input = { audience: { userIds: [bob.id] }, type: 'text', title: 'Notice', body: { text: 'Fire drill at 3' }, popupSeconds: 30 };
    const refused = await app.http('POST', '/v1/broadcasts', { token: alice.token, body: input });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'QIAO_FORBIDDEN');
    await imSettings({ broadcastSenders: [alice.id] });
    try {
      const sent = await app.http('POST', '/v1/broadcasts', { token: alice.token, body: input });
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      assert.deepEqual(sent.body.sender, { kind: 'user', id: alice.id, name: 'ALICE' });
      const bad = await app.http('POST', '/v1/broadcasts', { token: alice.token, body: { ...input, popupSeconds: 2 } });
      assert.equal(bad.body.error.field, 'popupSeconds');
      const { items } = await bob.client.inbox.read(0, 1000);
      assert.ok(items.some((i) => i.kind === 'broadcast' && (i.data as { id: number }).id === sent.body.id));
    } finally {
      await imSettings({ broadcastSenders: [] });
    }
  });

  it('manages a discussion group: rename, invite, remove, transfer, leave, dissolve', async () => {
    const g = await alice.client.conversations.create({ type: 'discussion', members: [bob.id], name: 'Offsite' });
    await alice.client.conversations.rename(g.id, 'Offsite 2026');
    await alice.client.conversations.invite(g.id, [carol.id]);
    assert.equal((await carol.client.conversations.get(g.id)).name, 'Offsite 2026');
    await alice.client.conversations.remove(g.id, [carol.id]);
    assert.equal((await app.http('GET', `/v1/conversations/${g.id}/messages`, { token: carol.token })).status, 403);
    await alice.client.conversations.transfer(g.id, bob.id);
    const transferred = await alice.client.conversations.get(g.id);
    assert.deepEqual(transferred.members.find((m) => m.userId === bob.id)?.role, 'owner');
    await alice.client.conversations.leave(g.id);
    assert.equal((await app.http('GET', `/v1/conversations/${g.id}`, { token: alice.token })).status, 403);
    await bob.client.conversations.dissolve(g.id);
    const dissolved = await app.http('POST', `/v1/conversations/${g.id}/messages`, { token: bob.token, body: text('anyone?') });
    assert.equal(dissolved.status, 410);
    assert.equal(dissolved.body.error.code, 'QIAO_CONVERSATION_DISSOLVED');
  });

  it('serves the directory as the user may see it, who they are, and presence', async () => {
    const me = await bob.client.me();
    assert.deepEqual([me.userId, me.account, me.sessionId], [bob.id, 'bob', bob.sessionId]);
    const snapshot = (await bob.client.org.snapshot()) as { version: number; users: Array<{ id: number }> };
    assert.ok(snapshot.users.some((u) => u.id === alice.id));
    const changes = (await bob.client.org.changes(0)) as { version: number };
    assert.equal(changes.version, snapshot.version);
    assert.equal(((await bob.client.org.user(alice.id)) as { account: string }).account, 'alice');
    const nobody = await app.http('GET', '/v1/org/users/987654', { token: bob.token });
    assert.equal(nobody.status, 404);
    const noAvatar = await app.http('GET', `/v1/org/users/${alice.id}/avatar`, { token: bob.token });
    assert.equal(noAvatar.status, 404);
    assert.deepEqual(await bob.client.presence.get([alice.id]), [{ userId: alice.id, status: 'offline', devices: [] }]);
  });
});
