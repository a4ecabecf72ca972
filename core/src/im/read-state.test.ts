import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation, ConversationSummary } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import type { Receipt } from './read-state.ts';
import { ADMIN, insertUsers, rejectsWith, setStatus, startImApp, syncAll } from './test-helpers.ts';

forEachDatabase('im read state and receipts', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number, carol: number, dave: number, eve: number;
  let team: Conversation;
  let n = 0;

  before(async () => {
    app = await startImApp(url());
    [alice, bob, carol, dave, eve] = await insertUsers(app.db, 5);
    team = await app.broker.call('im.conversations.create', { type: 'discussion', members: [bob, carol, dave], createdBy: alice });
  });
  after(async () => app?.stop());

  const send = (senderId: number, receipt?: boolean) =>
    app.broker.call<StoredMessage, object>('im.send', { conversationId: team.id, senderId, clientMsgId: `m-${++n}`, type: 'text', body: { text: `n${n}` }, receipt });
  const read = (userId: number, upTo: number) => app.broker.call<{ lastReadId: number; changed: boolean }, object>('im.read', { userId, conversationId: team.id, upTo });
  const receipt = (userId: number, messageId: number) => app.broker.call<Receipt, object>('im.receipts.get', { userId, messageId });
  const readEntries = async (userId: number) => (await syncAll(app, userId)).filter((i) => i.kind === 'read').map((i) => i.data);
  const summary = async (userId: number) =>
    (await app.broker.call<{ conversations: ConversationSummary[] }, object>('im.conversations.list', { userId })).conversations.find((c) => c.id === team.id)!;

  it('shows the sender of a receipt message who has read it and who has not ("read by 1 of 3")', async () => {
    const m1 = await send(alice, true);
    const m2 = await send(alice, true);
    assert.equal(m1.receipt, true);
    assert.deepEqual(await receipt(alice, m1.id), { messageId: m1.id, conversationId: team.id, total: 3, readCount: 0, read: [], unread: [bob, carol, dave] });
    assert.deepEqual(await read(bob, m2.id), { conversationId: team.id, lastReadId: m2.id, changed: true });
    await read(carol, m1.id);
    assert.deepEqual(await receipt(alice, m1.id), { messageId: m1.id, conversationId: team.id, total: 3, readCount: 2, read: [bob, carol], unread: [dave] });
    assert.deepEqual(await receipt(alice, m2.id), { messageId: m2.id, conversationId: team.id, total: 3, readCount: 1, read: [bob], unread: [carol, dave] });
    const counts = await app.broker.call<{ receipts: unknown[] }, object>('im.receipts.counts', { userId: alice, conversationId: team.id, messageIds: [m2.id, m1.id] });
    assert.deepEqual(counts.receipts, [
      { messageId: m1.id, total: 3, readCount: 2 },
      { messageId: m2.id, total: 3, readCount: 1 },
    ]);
    // The sender is told as people read; the reader's other devices are told too; bystanders are not.
    assert.deepEqual((await readEntries(alice)).slice(-2), [
      { conversationId: team.id, userId: bob, lastReadId: m2.id },
      { conversationId: team.id, userId: carol, lastReadId: m1.id },
    ]);
    assert.deepEqual(await readEntries(bob), [{ conversationId: team.id, userId: bob, lastReadId: m2.id }]);
    assert.deepEqual(await readEntries(dave), []);
  });

  it('moves the cursor only forward, and no further than the newest message', async () => {
    const m = await send(carol);
    assert.deepEqual(await read(dave, m.id + 1000), { conversationId: team.id, lastReadId: m.id, changed: true });
    assert.deepEqual(await read(dave, 1), { conversationId: team.id, lastReadId: m.id, changed: false });
    assert.equal((await summary(dave)).lastReadId, m.id);
    await rejectsWith(read(eve, m.id), 'QIAO_NOT_A_MEMBER', 'userId');
    await rejectsWith(app.broker.call('im.read', { userId: dave, conversationId: team.id, upTo: -1 }), 'QIAO_VALIDATION', 'upTo');
  });

  it('counts unread messages from others, and what you send you have read', async () => {
    const before = (await summary(bob)).unread;
    await send(alice);
    await send(carol);
    assert.equal((await summary(bob)).unread, before + 2);
    // Writing in a conversation means having read it: the sender's cursor moves to their own message.
    const mine = await send(bob);
    assert.deepEqual([(await summary(bob)).unread, (await summary(bob)).lastReadId], [0, mine.id]);
    assert.equal((await summary(alice)).lastReadId < mine.id, true);
    assert.equal((await summary(carol)).lastMessageId, mine.id);
  });

  it('keeps read state private unless the sender asked for a receipt or the admin forces it for all', async () => {
    const plain = await send(alice);
    await rejectsWith(receipt(alice, plain.id), 'QIAO_FORBIDDEN', 'messageId');
    const asked = await send(alice, true);
    await rejectsWith(receipt(bob, asked.id), 'QIAO_FORBIDDEN', 'userId');
    await rejectsWith(receipt(eve, asked.id), 'QIAO_NOT_A_MEMBER', 'userId');
    const entriesBefore = (await readEntries(alice)).length;
    await read(carol, plain.id);
    assert.equal((await readEntries(alice)).length, entriesBefore);

    await app.broker.call('im.settings.update', { readReceiptsForced: true }, { meta: ADMIN });
    const r = await receipt(alice, plain.id);
    assert.deepEqual([r.readCount, r.total], [1, 3]);
    const later = await send(alice);
    await read(dave, later.id);
    assert.deepEqual((await readEntries(alice)).at(-1), { conversationId: team.id, userId: dave, lastReadId: later.id });
    await app.broker.call('im.settings.update', { readReceiptsForced: false }, { meta: ADMIN });
  });

  it('leaves people who lost access out of "read by n of m"', async () => {
    const m = await send(alice, true);
    await setStatus(app.db, dave, 'disabled');
    assert.deepEqual((await receipt(alice, m.id)).unread, [bob, carol]);
    await setStatus(app.db, dave, 'active');
  });
});
