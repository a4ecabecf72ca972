import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import { queryRows } from '../db/sql.ts';
import type { SyncPage } from './sync.ts';
import { ADMIN, eventually, insertUsers, rejectsWith, setStatus, startImApp, syncAll } from './test-helpers.ts';

forEachDatabase('im per-user sync', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number, carol: number;
  const wakes: number[][] = [];

  before(async () => {
    app = await startImApp(url());
    [alice, bob, carol] = await insertUsers(app.db, 3);
    await app.broker.createService({
      name: 'wake-listener',
      events: {
        'im.sync.wake'(ctx) {
          wakes.push((ctx.params as { userIds: number[] }).userIds);
        },
      },
    });
    await app.broker.waitForServices('wake-listener', 5000, 10);
  });
  after(async () => app?.stop());

  const sync = (userId: number, since: number, limit?: number) => app.broker.call<SyncPage, object>('im.sync', { userId, since, limit });
  const head = async (userId: number) => (await app.broker.call<{ head: number }, object>('im.sync.head', { userId })).head;
  const send = (conversationId: string, senderId: number, clientMsgId: string, text: string) =>
    app.broker.call<StoredMessage, object>('im.send', { conversationId, senderId, clientMsgId, type: 'text', body: { text } });

  it('gives a user who was offline while 1,000 messages arrived exactly those 1,000, in order, paged', async function () {
    this.timeout(120_000);
    const chat = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'single', members: [bob], createdBy: alice });
    const since = await head(bob);
    const sent: StoredMessage[] = [];
    for (let i = 0; i < 1000; i++) sent.push(await send(chat.id, alice, `offline-${i}`, `message ${i}`));

    const pages: SyncPage[] = [];
    let position = since;
    for (;;) {
      const page = await sync(bob, position, 128);
      pages.push(page);
      position = page.last;
      if (!page.hasMore) break;
    }
    const items = pages.flatMap((p) => p.items);
    assert.equal(pages.length, 8);
    assert.ok(pages.slice(0, -1).every((p) => p.items.length === 128 && p.hasMore));
    assert.equal(items.length, 1000);
    // Dense and in order: since+1, since+2, … since+1000.
    assert.deepEqual(items.map((i) => i.seq), Array.from({ length: 1000 }, (_, i) => since + 1 + i));
    assert.ok(items.every((i) => i.kind === 'message' && i.conversationId === chat.id));
    assert.deepEqual(items.map((i) => i.data), sent);
    assert.equal(pages.at(-1)!.head, since + 1000);
    assert.deepEqual(await sync(bob, position), { items: [], last: position, head: position, hasMore: false, reset: false });
  });

  it('puts a message into the sender’s own inbox too, so every device of a user converges', async () => {
    const chat = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'discussion', members: [bob, carol], createdBy: alice });
    const laptop = await head(alice);
    const phone = laptop - 3 >= 0 ? laptop - 3 : 0;
    const m = await send(chat.id, alice, 'converge-1', 'from my laptop');
    const fromLaptop = await syncAll(app, alice, laptop);
    const fromPhone = await syncAll(app, alice, phone);
    assert.deepEqual(fromPhone.slice(-fromLaptop.length), fromLaptop);
    assert.deepEqual(fromLaptop.at(-1)?.data, m);
    for (const user of [bob, carol]) {
      const items = await syncAll(app, user, 0);
      const created = items.find((i) => i.kind === 'conversation' && i.conversationId === chat.id);
      assert.equal((created?.data as { change: string }).change, 'created');
      assert.deepEqual(items.at(-1)?.data, m);
    }
  });

  it('wakes the recipients after commit with their ids only, never the record', async () => {
    const chat = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'single', members: [carol], createdBy: bob });
    const before = wakes.length;
    await send(chat.id, bob, 'wake-1', 'ping');
    const wake = await eventually('im.sync.wake', () => wakes.slice(before).find((w) => w.includes(carol)));
    assert.deepEqual(wake, [bob, carol].sort((a, b) => a - b));
  });

  it('answers a retry without writing anything to anybody’s inbox', async () => {
    const chat = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'single', members: [carol], createdBy: alice });
    await send(chat.id, alice, 'retry-sync', 'once');
    const heads = [await head(alice), await head(carol)];
    for (let i = 0; i < 3; i++) await send(chat.id, alice, 'retry-sync', 'once');
    assert.deepEqual([await head(alice), await head(carol)], heads);
  });

  it('delivers one message to every member of a 5,000-member group exactly once', async function () {
    this.timeout(180_000);
    const members = await insertUsers(app.db, 4999);
    const group = await app.broker.call<Conversation, object>('im.groups.create', { name: 'Everyone', members: [alice, ...members] }, { meta: ADMIN });
    assert.equal(group.members.length, 5000);
    const headsBefore = new Map(
      (await queryRows<{ user_id: number; head: number }>(app.db, 'SELECT user_id, head FROM sync_heads', [])).map((r) => [Number(r.user_id), Number(r.head)]),
    );
    const m = await send(group.id, alice, 'all-hands', 'hello, all 5,000 of you');
    const rows = await queryRows<{ user_id: number; seq: number }>(app.db, "SELECT user_id, seq FROM sync_items WHERE kind = 'message' AND ref_id = ?", [m.id]);
    assert.equal(rows.length, 5000);
    assert.deepEqual(rows.map((r) => Number(r.user_id)).sort((a, b) => a - b), [alice, ...members].sort((a, b) => a - b));
    // Each member's entry is the next number of their own sequence.
    for (const r of rows) assert.equal(Number(r.seq), (headsBefore.get(Number(r.user_id)) ?? 0) + 1);
    for (const user of [members[0], members[2500], members[4998]]) {
      const page = await sync(user, headsBefore.get(user) ?? 0);
      assert.deepEqual(page.items.map((i) => i.data), [m]);
    }
      // Gateways ask for all 5,000 heads in one call (read in chunks), each the member's new position.
    const { heads } = await app.broker.call<{ heads: Record<string, number> }, object>('im.sync.heads', { userIds: [alice, ...members] });
    assert.equal(Object.keys(heads).length, 5000);
    for (const u of [alice, ...members]) assert.equal(heads[u], (headsBefore.get(u) ?? 0) + 1, `head of ${u}`);
  });

  it('reads many heads at once as sync.head reads one, leaving out whom sync.head refuses', async () => {
    const [fred, gina, hal] = await insertUsers(app.db, 3);
    const chat = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'single', members: [fred], createdBy: alice });
    await send(chat.id, alice, 'heads-1', 'one');
    await send(chat.id, alice, 'heads-2', 'two');
    await setStatus(app.db, hal, 'disabled');
    const { heads } = await app.broker.call<{ heads: Record<string, number> }, object>('im.sync.heads', { userIds: [fred, gina, hal, 999_999, fred, alice] });
    // gina has never received anything: 0, as sync.head says; hal (disabled) and 999999 (nobody) are left out.
    assert.deepEqual(heads, { [fred]: await head(fred), [gina]: 0, [alice]: await head(alice) });
    assert.ok(heads[fred] >= 2, 'the chat and both messages reached fred');
    assert.deepEqual(await app.broker.call('im.sync.heads', { userIds: [] }), { heads: {} });
    await rejectsWith(app.broker.call('im.sync.heads', { userIds: Array.from({ length: 5001 }, (_, i) => i + 1) }), 'QIAO_VALIDATION', 'userIds');
    await rejectsWith(app.broker.call('im.sync.heads', { userIds: [1, 0] }), 'QIAO_VALIDATION', 'userIds[1]');
    await setStatus(app.db, hal, 'active');
  });

  it('cuts a disabled user off from sync at once, and gives everything back when re-enabled', async () => {
    const [dora] = await insertUsers(app.db, 1);
    const chat = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'single', members: [dora], createdBy: alice });
    await setStatus(app.db, dora, 'disabled');
    await send(chat.id, alice, 'while-disabled', 'are you there?');
    await rejectsWith(sync(dora, 0), 'QIAO_FORBIDDEN', 'userId');
    await rejectsWith(app.broker.call('im.sync.head', { userId: dora }), 'QIAO_FORBIDDEN', 'userId');
    await setStatus(app.db, dora, 'active');
    const items = await syncAll(app, dora, 0);
    assert.equal((items.at(-1)?.data as StoredMessage).clientMsgId, 'while-disabled');
  });

  it('tells a client that fell behind the retention window to reset, and still pages on from there', async () => {
    const [erin] = await insertUsers(app.db, 1);
    const chat = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'single', members: [erin], createdBy: alice });
    for (let i = 0; i < 5; i++) await send(chat.id, alice, `old-${i}`, `old ${i}`);
    await app.db.sequelize.query("UPDATE sync_items SET created_at = ? WHERE user_id = ?", { replacements: [new Date(Date.now() - 100 * 86_400_000), erin] });
    await send(chat.id, alice, 'new-1', 'new');
    const pruned = await app.broker.call<{ syncPruned: number }, object>('im.files.purge', {}, { meta: ADMIN });
    assert.ok(pruned.syncPruned >= 6);
    const page = await sync(erin, 0);
    assert.equal(page.reset, true);
    assert.deepEqual(page.items.map((i) => (i.data as StoredMessage).clientMsgId), ['new-1']);
    assert.equal(page.hasMore, false);
    const up = await sync(erin, page.last);
    assert.equal(up.reset, false);
    // A client that knows numbers this server never gave out (a restored backup) is told to start over.
    const ahead = await sync(erin, page.head + 50);
    assert.deepEqual([ahead.reset, ahead.last, ahead.hasMore], [true, page.head, false]);
  });

  it('refuses bad paging input with the field named', async () => {
    await rejectsWith(sync(alice, -1), 'QIAO_VALIDATION', 'since');
    await rejectsWith(sync(alice, 0, 1001), 'QIAO_VALIDATION', 'limit');
    await rejectsWith(app.broker.call('im.sync', { since: 0 }), 'QIAO_VALIDATION', 'userId');
    await rejectsWith(sync(999_999, 0), 'QIAO_NOT_FOUND', 'userId');
  });
});
