import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import { fanOut, type SyncPage } from './sync.ts';
import { ADMIN, insertUsers, startImApp } from './test-helpers.ts';
import type { ImTx } from './write.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

forEachDatabase('im sync under concurrency', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;

  before(async () => {
    app = await startImApp(url());
  });
  after(async () => app?.stop());

  /**
   * Pages through `userId`'s inbox until `done()` and nothing is left, failing on any gap or repeat: the
   * first item of every page must be exactly one after what was read before.
   */
  async function follow(userId: number, done: () => boolean): Promise<Array<{ seq: number; kind: string; data: unknown }>> {
    const seen: Array<{ seq: number; kind: string; data: unknown }> = [];
    let position = 0;
    for (;;) {
      const finished = done();
      const page = await app.broker.call<SyncPage, object>('im.sync', { userId, since: position, limit: 7 });
      // Nothing is pruned here, so a reset would tell a client to jump past items it never got.
      assert.equal(page.reset, false, `reader of user ${userId} was told to reset at ${position} (head ${page.head})`);
      for (const item of page.items) {
        assert.equal(item.seq, position + 1, `reader of user ${userId} jumped from ${position} to ${item.seq}`);
        position = item.seq;
        seen.push(item);
      }
      if (finished && !page.hasMore) return seen;
      if (!page.items.length) await sleep(1);
    }
  }

  it('never shows a reader a gap or a repeat while many senders write to it at once', async function () {
    this.timeout(180_000);
    const [reader, ...senders] = await insertUsers(app.db, 9);
    const group = await app.broker.call<Conversation, object>('im.groups.create', { name: 'Busy', members: [reader, ...senders] }, { meta: ADMIN });
    const chats = await Promise.all(senders.map((s) => app.broker.call<Conversation, object>('im.conversations.create', { type: 'single', members: [reader], createdBy: s })));
    let writing = true;
    const reading = follow(reader, () => !writing);
    const PER_SENDER = 40;
    const sent = (
      await Promise.all(
        senders.map(async (s, i) => {
          const mine: StoredMessage[] = [];
          for (let n = 0; n < PER_SENDER; n++) {
            const conversationId = n % 2 ? group.id : chats[i].id;
            mine.push(await app.broker.call<StoredMessage, object>('im.send', { conversationId, senderId: s, clientMsgId: `c-${n}`, type: 'text', body: { text: `${s}/${n}` } }));
            // The reader marks things read as they come, adding receipt entries from another writer.
            if (n % 10 === 9) await app.broker.call('im.read', { userId: reader, conversationId, upTo: mine.at(-1)!.id });
          }
          return mine;
        }),
      )
    ).flat();
    writing = false;
    const seen = await reading;
    const delivered = seen.filter((i) => i.kind === 'message').map((i) => (i.data as StoredMessage).id);
    assert.equal(delivered.length, sent.length);
    assert.deepEqual([...delivered].sort((a, b) => a - b), sent.map((m) => m.id).sort((a, b) => a - b));
    assert.equal(new Set(delivered).size, delivered.length);
    // Messages reach one inbox in commit order, which is also message id order.
    assert.deepEqual(delivered, [...delivered].sort((a, b) => a - b));
  });

  it('hands out a user’s numbers in commit order from the head row alone, without the event log lock', async function () {
    this.timeout(60_000);
    const [target] = await insertUsers(app.db, 1);
    // Writer A takes the next number and holds its transaction open; B asks for one meanwhile.
    let aHasNumber!: () => void;
    const aReady = new Promise<void>((r) => (aHasNumber = r));
    const observed: number[][] = [];
    const write = (hold: number, ready?: () => void) =>
      app.db.transaction(async (t) => {
        const w: ImTx = { t, wake: new Set(), events: [] };
        await fanOut(app.db, w, [target], { kind: 'org', payload: { hold } });
        ready?.();
        await sleep(hold);
      });
    const a = write(300, aHasNumber);
    await aReady;
    const b = app.db.dialect === 'postgres' ? write(0) : Promise.resolve();
    const reads = (async () => {
      for (let i = 0; i < 30; i++) {
        const page = await app.broker.call<SyncPage, object>('im.sync', { userId: target, since: 0 });
        observed.push(page.items.map((x) => x.seq));
        await sleep(15);
      }
    })();
    await Promise.all([a, b, reads]);
    if (app.db.dialect === 'sqlite') await write(0);
    // Every observation is a prefix 1..n: B's number was never visible while A's was not.
    for (const o of observed) assert.deepEqual(o, Array.from({ length: o.length }, (_, i) => i + 1));
    const final = await app.broker.call<SyncPage, object>('im.sync', { userId: target, since: 0 });
    assert.deepEqual(final.items.map((x) => [x.seq, (x.data as { hold: number }).hold]), [
      [1, 300],
      [2, 0],
    ]);
  });
});
