import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import { queryRows } from '../db/sql.ts';
import { insertUser, insertUsers, rejectsWith, startImApp } from './test-helpers.ts';

forEachDatabase('im conversations', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number, carol: number;

  before(async () => {
    app = await startImApp(url());
    [alice, bob, carol] = await insertUsers(app.db, 3);
  });
  after(async () => app?.stop());

  const create = (params: Record<string, unknown>) => app.broker.call<Conversation, Record<string, unknown>>('im.conversations.create', params);

  it('gives a 1:1 chat the same id whoever opens it, and creates it once', async () => {
    const first = await create({ type: 'single', members: [bob], createdBy: alice });
    assert.equal(first.id, `s:${Math.min(alice, bob)}:${Math.max(alice, bob)}`);
    assert.deepEqual(first.members.map((m) => m.userId), [alice, bob].sort((a, b) => a - b));
    const again = await create({ type: 'single', members: [alice, bob], createdBy: bob });
    assert.deepEqual(again, first);
    const logged = await queryRows<{ n: number }>(app.db, "SELECT COUNT(*) AS n FROM event_log WHERE topic = 'conversation.created' AND subject = ?", [first.id]);
    assert.equal(Number(logged[0].n), 1);
  });

  it('creates a racing pair of 1:1 opens once', async () => {
    const [x, y] = await insertUsers(app.db, 2);
    const results = await Promise.all([
      create({ type: 'single', members: [y], createdBy: x }),
      create({ type: 'single', members: [x], createdBy: y }),
      create({ type: 'single', members: [x, y], createdBy: x }),
    ]);
    assert.equal(new Set(results.map((r) => r.id)).size, 1);
    const rows = await queryRows<{ n: number }>(app.db, 'SELECT COUNT(*) AS n FROM conversation_members WHERE conversation_id = ?', [results[0].id]);
    assert.equal(Number(rows[0].n), 2);
  });

  it('gives each discussion group a fresh id, its creator as owner, and logs it', async () => {
    const a = await create({ type: 'discussion', members: [bob, carol], name: ' Launch ', createdBy: alice });
    const b = await create({ type: 'discussion', members: [bob, carol], name: 'Launch', createdBy: alice });
    assert.match(a.id, /^d:[0-9a-f]{20}$/);
    assert.notEqual(a.id, b.id);
    assert.equal(a.name, 'Launch');
    assert.deepEqual(
      a.members.find((m) => m.userId === alice),
      { userId: alice, role: 'owner' },
    );
    assert.equal(a.members.length, 3);
    const { events } = await app.broker.call<{ events: Array<{ subject: string; payload: Conversation }> }, object>('eventlog.read', {
      after: 0,
      topics: ['conversation.created'],
    });
    assert.deepEqual(events.find((e) => e.subject === a.id)?.payload, a);
  });

  it('refuses a 1:1 chat that is not exactly two users, or that has a name', async () => {
    await rejectsWith(create({ type: 'single', members: [alice], createdBy: alice }), 'QIAO_VALIDATION', 'members');
    await rejectsWith(create({ type: 'single', members: [bob, carol], createdBy: alice }), 'QIAO_VALIDATION', 'members');
    await rejectsWith(create({ type: 'single', members: [bob], name: 'x', createdBy: alice }), 'QIAO_VALIDATION', 'name');
  });

  it('refuses unknown users and accounts that are not active, naming the field', async () => {
    await rejectsWith(create({ type: 'discussion', members: [bob, 999_999], createdBy: alice }), 'QIAO_NOT_FOUND', 'members');
    await rejectsWith(create({ type: 'discussion', members: [bob], createdBy: 999_998 }), 'QIAO_NOT_FOUND', 'createdBy');
    const gone = await insertUser(app.db, undefined, 'resigned');
    await rejectsWith(create({ type: 'single', members: [gone], createdBy: alice }), 'QIAO_FORBIDDEN', 'members');
  });

  it('shows a conversation to its members only, and lists a user’s conversations newest activity first', async () => {
    const [x, y, z] = await insertUsers(app.db, 3);
    const group = await create({ type: 'discussion', members: [y], name: 'Pair plus', createdBy: x });
    const chat = await create({ type: 'single', members: [z], createdBy: x });
    assert.deepEqual(await app.broker.call('im.conversations.get', { userId: y, conversationId: group.id }), group);
    await rejectsWith(app.broker.call('im.conversations.get', { userId: z, conversationId: group.id }), 'QIAO_NOT_A_MEMBER', 'userId');
    await rejectsWith(app.broker.call('im.conversations.get', { userId: z, conversationId: 'd:missing' }), 'QIAO_CONVERSATION_NOT_FOUND', 'conversationId');
    const m = await app.broker.call<{ id: number }, object>('im.send', { conversationId: group.id, senderId: y, clientMsgId: 'c-1', type: 'text', body: { text: 'hi' } });
    const { conversations } = await app.broker.call<{ conversations: Array<Record<string, unknown>> }, object>('im.conversations.list', { userId: x });
    assert.deepEqual(conversations, [
      { id: group.id, type: 'discussion', name: 'Pair plus', role: 'owner', memberCount: 2, lastMessageId: m.id, lastReadId: 0, unread: 1, dissolvedAt: null, announcement: null },
      { id: chat.id, type: 'single', name: null, role: 'member', memberCount: 2, lastMessageId: 0, lastReadId: 0, unread: 0, dissolvedAt: null, announcement: null },
    ]);
    assert.deepEqual(group.permissions, { invite: 'members', leave: true, rename: 'members', announce: 'members', upload: 'members' });
    assert.equal(chat.permissions, null);
  });

  it('refuses malformed input with the field named', async () => {
    await rejectsWith(create({ type: 'channel', members: [bob], createdBy: alice }), 'QIAO_VALIDATION', 'type');
    await rejectsWith(create({ type: 'discussion', members: [], createdBy: alice }), 'QIAO_VALIDATION', 'members');
    await rejectsWith(create({ type: 'discussion', members: ['x'], createdBy: alice }), 'QIAO_VALIDATION', 'members[0]');
    await rejectsWith(create({ type: 'discussion', members: [bob] }), 'QIAO_VALIDATION', 'createdBy');
  });
});
