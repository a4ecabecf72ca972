import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation, ConversationSummary } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import { queryRows } from '../db/sql.ts';
import { ADMIN, insertUsers, rejectsWith, startImApp, syncAll } from './test-helpers.ts';

forEachDatabase('im recall', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number, carol: number, eve: number;
  let team: Conversation, fixed: Conversation, chat: Conversation;
  let n = 0;

  before(async () => {
    app = await startImApp(url());
    [alice, bob, carol, eve] = await insertUsers(app.db, 4);
    team = await app.broker.call('im.conversations.create', { type: 'discussion', members: [bob, carol], createdBy: alice });
    chat = await app.broker.call('im.conversations.create', { type: 'single', members: [bob], createdBy: alice });
    fixed = await app.broker.call('im.groups.create', { name: 'Fixed', members: [alice, bob], admins: [carol] }, { meta: ADMIN });
  });
  after(async () => app?.stop());

  const send = (conversationId: string, senderId: number, text = 'oops', type = 'text', body: object = { text }) =>
    app.broker.call<StoredMessage, object>('im.send', { conversationId, senderId, clientMsgId: `r-${++n}`, type, body });
  const recall = (userId: number, messageId: number) => app.broker.call<StoredMessage, object>('im.messages.recall', { userId, messageId });
  const age = (messageId: number, seconds: number) =>
    app.db.sequelize.query('UPDATE messages SET created_at = ? WHERE id = ?', { replacements: [new Date(Date.now() - seconds * 1000), messageId] });
  const settings = (patch: object) => app.broker.call('im.settings.update', patch, { meta: ADMIN });

  it('lets the sender recall within the window; every member learns it through sync, and nobody sees the body again', async () => {
    const m = await send(team.id, alice, 'wrong chat, sorry');
    const r = await recall(alice, m.id);
    assert.deepEqual(r.body, {});
    assert.equal(r.recalled?.by, alice);
    for (const user of [alice, bob, carol]) {
      const items = await syncAll(app, user);
      const entry = items.find((i) => i.kind === 'recall' && (i.data as { messageId: number }).messageId === m.id);
      assert.deepEqual(entry?.data, { conversationId: team.id, messageId: m.id, senderId: alice, recalledBy: alice, recalledAt: r.recalled!.at });
      // The message entry itself now carries the recall too, for a device syncing late.
      const original = items.find((i) => i.kind === 'message' && (i.data as StoredMessage).id === m.id)?.data as StoredMessage;
      assert.deepEqual(original, r);
    }
    const { messages } = await app.broker.call<{ messages: StoredMessage[] }, object>('im.messages.list', { conversationId: team.id, userId: bob });
    assert.deepEqual(messages.find((x) => x.id === m.id), r);
    assert.deepEqual(await recall(alice, m.id), r);
    const [logged] = await queryRows<{ n: number }>(app.db, "SELECT COUNT(*) AS n FROM event_log WHERE topic = 'conversation.messageRecalled'", []);
    assert.equal(Number(logged.n), 1);
  });

  it('refuses a recall after the window with a clear error, and follows the admin’s window up to 48 hours', async () => {
    const m = await send(chat.id, alice, 'old news');
    await age(m.id, 150);
    const err = await rejectsWith(recall(alice, m.id), 'QIAO_RECALL_WINDOW_CLOSED', 'messageId');
    assert.match(String(err.message), /within 2 minute\(s\) of sending/);
    assert.equal(err.windowSeconds, 120);
    await settings({ recallWindowSeconds: 48 * 3600 });
    assert.equal((await recall(alice, m.id)).recalled?.by, alice);
    const older = await send(chat.id, alice, 'two days ago');
    await age(older.id, 48 * 3600 + 5);
    await rejectsWith(recall(alice, older.id), 'QIAO_RECALL_WINDOW_CLOSED', 'messageId');
    await rejectsWith(settings({ recallWindowSeconds: 48 * 3600 + 1 }), 'QIAO_VALIDATION', 'recallWindowSeconds');
    await settings({ recallWindowSeconds: 120 });
  });

  it('lets a group owner or admin recall others’ messages, and nobody else', async () => {
    const byBob = await send(fixed.id, bob, 'off-topic');
    await rejectsWith(recall(alice, byBob.id), 'QIAO_FORBIDDEN', 'userId');
    assert.equal((await recall(carol, byBob.id)).recalled?.by, carol);
    const inTeam = await send(team.id, bob, 'mine');
    await rejectsWith(recall(carol, inTeam.id), 'QIAO_FORBIDDEN', 'userId');
    assert.equal((await recall(alice, inTeam.id)).recalled?.by, alice);
    const inChat = await send(chat.id, bob, 'private');
    await rejectsWith(recall(alice, inChat.id), 'QIAO_FORBIDDEN', 'userId');
    await rejectsWith(recall(eve, inChat.id), 'QIAO_NOT_A_MEMBER', 'userId');
    await rejectsWith(recall(bob, 999_999_999), 'QIAO_NOT_FOUND', 'messageId');
  });

  it('drops a recalled message from unread counts and search, and a recalled announcement from the group', async () => {
    const before = (await app.broker.call<{ conversations: ConversationSummary[] }, object>('im.conversations.list', { userId: bob })).conversations.find((c) => c.id === fixed.id)!;
    const a = await send(fixed.id, carol, '', 'announcement', { title: 'Drill', text: 'unique-drill-word' });
    const mid = (await app.broker.call<{ conversations: ConversationSummary[] }, object>('im.conversations.list', { userId: bob })).conversations.find((c) => c.id === fixed.id)!;
    assert.equal(mid.unread, before.unread + 1);
    assert.equal(mid.announcement?.messageId, a.id);
    await recall(carol, a.id);
    const after = (await app.broker.call<{ conversations: ConversationSummary[] }, object>('im.conversations.list', { userId: bob })).conversations.find((c) => c.id === fixed.id)!;
    assert.equal(after.unread, before.unread);
    assert.equal(after.announcement, null);
    const found = await app.broker.call<{ messages: StoredMessage[] }, object>('im.messages.search', { userId: bob, keyword: 'unique-drill-word' });
    assert.deepEqual(found.messages, []);
  });
});
