import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import { storeMessage, type StoredMessage } from './messages.ts';
import { queryRows } from '../db/sql.ts';
import { insertUser, insertUsers, rejectsWith, startImApp } from './test-helpers.ts';

interface Page {
  messages: StoredMessage[];
  last: number;
}

forEachDatabase('im messages', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number, eve: number;
  let chat: Conversation;
  const wakeUps: Array<{ event: string; data: unknown }> = [];

  before(async () => {
    app = await startImApp(url());
    [alice, bob, eve] = await insertUsers(app.db, 3);
    chat = await app.broker.call('im.conversations.create', { type: 'single', members: [bob], createdBy: alice });
    await app.broker.createService({
      name: 'wake-up-listener',
      events: {
        'im.message.stored'(ctx) {
          wakeUps.push({ event: 'im.message.stored', data: ctx.params });
        },
        'eventlog.appended'(ctx) {
          wakeUps.push({ event: 'eventlog.appended', data: ctx.params });
        },
      },
    });
    await app.broker.waitForServices('wake-up-listener', 5000, 10);
  });
  after(async () => app?.stop());

  const send = (params: Record<string, unknown>) =>
    app.broker.call<StoredMessage, Record<string, unknown>>('im.send', { conversationId: chat.id, type: 'text', ...params });
  const list = (params: Record<string, unknown>) => app.broker.call<Page, Record<string, unknown>>('im.messages.list', { conversationId: chat.id, ...params });
  const storedCount = async (senderId: number, clientMsgId: string) =>
    Number((await queryRows<{ n: number }>(app.db, 'SELECT COUNT(*) AS n FROM messages WHERE sender_id = ? AND client_msg_id = ?', [senderId, clientMsgId]))[0].n);

  it('stores a text message and lists it back in id order after a position', async () => {
    const before = (await list({ userId: alice })).last;
    const m1 = await send({ senderId: alice, clientMsgId: 'c-1', body: { text: 'hello 你好 👋' } });
    const m2 = await send({ senderId: bob, clientMsgId: 'c-1', body: { text: 'hi' } });
    assert.ok(m1.id > 0 && m2.id > m1.id);
    assert.deepEqual(
      { ...m1, id: 0, createdAt: '' },
      { id: 0, conversationId: chat.id, senderId: alice, clientMsgId: 'c-1', type: 'text', body: { text: 'hello 你好 👋' }, createdAt: '' },
    );
    const all = await list({ userId: bob, after: before });
    assert.deepEqual(all.messages, [m1, m2]);
    assert.equal(all.last, m2.id);
    assert.deepEqual((await list({ userId: bob, after: m1.id })).messages, [m2]);
    assert.deepEqual((await list({ userId: bob, after: before, limit: 1 })).messages, [m1]);
    assert.deepEqual((await list({ userId: bob, after: m2.id })), { messages: [], last: m2.id });
  });

  it('pages backwards through history with before, oldest first within a page', async () => {
    const sent: Array<{ id: number }> = [];
    for (let i = 0; i < 5; i++) sent.push(await send({ senderId: alice, clientMsgId: `back-${i}`, body: { text: `b${i}` } }));
    const page = await list({ userId: bob, before: sent[4].id, limit: 2 });
    assert.deepEqual(page.messages.map((m) => m.id), [sent[2].id, sent[3].id]);
    const older = await list({ userId: bob, before: sent[2].id, after: sent[0].id, limit: 10 });
    assert.deepEqual(older.messages.map((m) => m.id), [sent[1].id]);
  });

  it('stores a send retried three times with one clientMsgId once, answering the same message each time', async () => {
    const params = { senderId: alice, clientMsgId: 'retry-1', body: { text: 'once' } };
    const first = await send(params);
    const second = await send(params);
    const third = await send(params);
    assert.deepEqual(second, first);
    assert.deepEqual(third, first);
    assert.equal(await storedCount(alice, 'retry-1'), 1);
  });

  it('stores three concurrent sends with one clientMsgId once, and logs it once', async () => {
    const params = { senderId: bob, clientMsgId: 'race-1', body: { text: 'racing' } };
    const answers = await Promise.all([send(params), send(params), send(params)]);
    assert.equal(new Set(answers.map((a) => a.id)).size, 1);
    assert.deepEqual(answers[1], answers[0]);
    assert.deepEqual(answers[2], answers[0]);
    assert.equal(await storedCount(bob, 'race-1'), 1);
    const logged = await queryRows<{ n: number }>(app.db, "SELECT COUNT(*) AS n FROM event_log WHERE topic = 'message.stored' AND CAST(payload AS TEXT) LIKE ?", [
      '%"clientMsgId":"race-1"%',
    ]);
    assert.equal(Number(logged[0].n), 1);
  });

  it('lets the unique index, not the earlier lookup, decide a duplicate', async () => {
    const pending = { conversationId: chat.id, senderId: alice, clientMsgId: 'direct-1', type: 'text' as const, body: { text: 'direct' } };
    const first = await storeMessage(app.db, pending);
    const second = await storeMessage(app.db, { ...pending, body: { text: 'a different body' } });
    assert.ok(first.logged);
    assert.equal(second.logged, null);
    assert.deepEqual(second.message, first.message);
    assert.equal(await storedCount(alice, 'direct-1'), 1);
  });

  it('hands out message ids in commit order, the same order as the log', async () => {
    const sent = await Promise.all(
      Array.from({ length: 30 }, (_, i) => send({ senderId: i % 2 ? alice : bob, clientMsgId: `order-${i}`, body: { text: `n${i}` } })),
    );
    const ids = new Set(sent.map((m) => m.id));
    const { events } = await app.broker.call<{ events: Array<{ seq: number; payload: StoredMessage }> }, object>('eventlog.read', {
      after: 0,
      limit: 1000,
      topics: ['message.stored'],
    });
    const inLogOrder = events.filter((e) => ids.has(e.payload.id)).map((e) => e.payload.id);
    assert.equal(inLogOrder.length, 30);
    assert.deepEqual(inLogOrder, [...inLogOrder].sort((a, b) => a - b));
  });

  it('refuses a clientMsgId reused for another conversation', async () => {
    const group = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'discussion', members: [bob], createdBy: alice });
    await send({ senderId: alice, clientMsgId: 'reused', body: { text: 'first' } });
    await rejectsWith(send({ conversationId: group.id, senderId: alice, clientMsgId: 'reused', body: { text: 'second' } }), 'QIAO_CONFLICT', 'clientMsgId');
  });

  it('lets a non-member neither send nor list, and a missing conversation is named', async () => {
    await rejectsWith(send({ senderId: eve, clientMsgId: 'eve-1', body: { text: 'let me in' } }), 'QIAO_NOT_A_MEMBER', 'senderId');
    assert.equal(await storedCount(eve, 'eve-1'), 0);
    await rejectsWith(list({ userId: eve }), 'QIAO_NOT_A_MEMBER', 'userId');
    await rejectsWith(send({ conversationId: 'd:nope', senderId: alice, clientMsgId: 'x', body: { text: 'x' } }), 'QIAO_CONVERSATION_NOT_FOUND', 'conversationId');
    await rejectsWith(list({ conversationId: 'd:nope', userId: alice }), 'QIAO_CONVERSATION_NOT_FOUND', 'conversationId');
  });

  it('cuts off a member whose account is no longer active', async () => {
    const dave = await insertUser(app.db);
    const group = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'discussion', members: [dave], createdBy: alice });
    await app.db.sequelize.query("UPDATE users SET status = 'disabled' WHERE id = ?", { replacements: [dave] });
    await rejectsWith(send({ conversationId: group.id, senderId: dave, clientMsgId: 'd-1', body: { text: 'still here?' } }), 'QIAO_NOT_A_MEMBER', 'senderId');
    await rejectsWith(list({ conversationId: group.id, userId: dave }), 'QIAO_NOT_A_MEMBER', 'userId');
  });

  it('refuses bad input with the field named and stores nothing', async () => {
    const { n: beforeCount } = (await queryRows<{ n: number }>(app.db, 'SELECT COUNT(*) AS n FROM messages', []))[0];
    await rejectsWith(send({ senderId: alice, clientMsgId: 'b-1', type: 'video', body: { text: 'x' } }), 'QIAO_VALIDATION', 'type');
    await rejectsWith(send({ senderId: alice, clientMsgId: 'b-2', body: { text: '' } }), 'QIAO_VALIDATION', 'body.text');
    await rejectsWith(send({ senderId: alice, clientMsgId: 'b-3', body: { text: '   ' } }), 'QIAO_VALIDATION', 'body.text');
    await rejectsWith(send({ senderId: alice, clientMsgId: 'b-4', body: { text: 'x'.repeat(5001) } }), 'QIAO_VALIDATION', 'body.text');
    await rejectsWith(send({ senderId: alice, clientMsgId: 'b-5', body: { text: 42 } }), 'QIAO_VALIDATION', 'body.text');
    await rejectsWith(send({ senderId: alice, clientMsgId: 'b-6', body: { text: 'x', html: '<b>' } }), 'QIAO_VALIDATION', 'body.html');
    await rejectsWith(send({ senderId: alice, clientMsgId: 'b-7', body: 'just text' }), 'QIAO_VALIDATION', 'body');
    await rejectsWith(send({ senderId: alice, clientMsgId: 'b-8' }), 'QIAO_VALIDATION', 'body');
    await rejectsWith(send({ senderId: alice, body: { text: 'x' } }), 'QIAO_VALIDATION', 'clientMsgId');
    await rejectsWith(send({ senderId: alice, clientMsgId: 'y'.repeat(65), body: { text: 'x' } }), 'QIAO_VALIDATION', 'clientMsgId');
    await rejectsWith(send({ clientMsgId: 'b-9', body: { text: 'x' } }), 'QIAO_VALIDATION', 'senderId');
    await rejectsWith(send({ conversationId: undefined, senderId: alice, clientMsgId: 'b-10', body: { text: 'x' } }), 'QIAO_VALIDATION', 'conversationId');
    await rejectsWith(list({ userId: alice, limit: 501 }), 'QIAO_VALIDATION', 'limit');
    const { n: afterCount } = (await queryRows<{ n: number }>(app.db, 'SELECT COUNT(*) AS n FROM messages', []))[0];
    assert.equal(Number(afterCount), Number(beforeCount));
    // Exactly at the limit is fine, counted in characters: 5,000 emoji are 10,000 UTF-16 units.
    const longest = await send({ senderId: alice, clientMsgId: 'b-max', body: { text: '😀'.repeat(5000) } });
    assert.equal([...(longest.body.text as string)].length, 5000);
  });

  it('logs exactly one message.stored entry per stored message, readable in order through eventlog.read', async () => {
    const stored = await queryRows<{ id: number }>(app.db, 'SELECT id FROM messages ORDER BY id', []);
    const { events } = await app.broker.call<{ events: Array<{ seq: number; subject: string; payload: StoredMessage }> }, object>('eventlog.read', {
      after: 0,
      limit: 1000,
      topics: ['message.stored'],
    });
    assert.deepEqual(events.map((e) => e.payload.id), stored.map((r) => Number(r.id)));
    const seqs = events.map((e) => e.seq);
    assert.deepEqual([...seqs].sort((a, b) => a - b), seqs);
    const page = await list({ userId: alice, after: 0, limit: 500 });
    for (const m of page.messages) {
      const e = events.find((x) => x.payload.id === m.id);
      assert.deepEqual(e?.payload, m);
      assert.equal(e?.subject, chat.id);
    }
  });

  it('wakes listeners after commit with the stored message and its log position', async () => {
    const m = await send({ senderId: bob, clientMsgId: 'wake-1', body: { text: 'ping' } });
    const deadline = Date.now() + 5000;
    const seen = () => wakeUps.find((w) => w.event === 'im.message.stored' && (w.data as StoredMessage).id === m.id);
    while (!seen() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen()?.data, m);
    const { events } = await app.broker.call<{ events: Array<{ seq: number; payload: StoredMessage }> }, object>('eventlog.read', { after: 0, limit: 1000, topics: ['message.*'] });
    const seq = events.find((e) => e.payload.id === m.id)?.seq;
    assert.ok(wakeUps.some((w) => w.event === 'eventlog.appended' && JSON.stringify(w.data) === JSON.stringify({ seq, topic: 'message.stored' })));
    // A retry stores nothing and so wakes nobody.
    const count = wakeUps.length;
    await send({ senderId: bob, clientMsgId: 'wake-1', body: { text: 'ping' } });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(wakeUps.length, count);
  });
});
