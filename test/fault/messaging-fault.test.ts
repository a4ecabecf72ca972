/**
 * Fault test (issue 4): several clients send into one group at full speed, each message with a
 * client-generated id and retried until acknowledged; the server process is killed with SIGKILL mid-stream
 * and started again on the same storage. Afterwards every acknowledged message is stored exactly once, and
 * every client has received every message exactly once, in order, through its own reconnects and catch-ups.
 */
import assert from 'node:assert/strict';
import { QiaoClient, type StoredMessage, type SyncItem } from '@qiao/client';
import { forEachDatabase } from '../support/databases.ts';
import { PASSWORD, QiaoServer } from './qiao-server.ts';

const CLIENTS = 4;
const PER_CLIENT = 150;
/** Each client keeps this many sends in flight, like a user pasting fast on a slow link. */
const IN_FLIGHT = 2;
/** Total acknowledgements after which the server is killed. */
const KILL_AFTER = 120;

const until = async (what: string, probe: () => boolean | Promise<boolean>, ms = 30_000) => {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

forEachDatabase('fault: kill -9 the server while clients send', ({ url }) => {
  let server: QiaoServer;

  before(async function () {
    this.timeout(60_000);
    server = await QiaoServer.create(url());
    await server.start();
  });
  after(async function () {
    this.timeout(30_000);
    await server?.remove();
  });

  it('keeps every acknowledged message, once, and delivers each to every client once', async function () {
    this.timeout(90_000);
    const accounts = Array.from({ length: CLIENTS }, (_, i) => `sender${i}`);
    const ids = await Promise.all(accounts.map((a) => server.person(a)));
    const clients = await Promise.all(
      accounts.map((account) =>
        QiaoClient.login(
          { baseUrl: server.base, reconnect: { initialMs: 100, maxMs: 1000 }, sendRetry: { attempts: 1000, delayMs: 50, maxDelayMs: 500 }, requestTimeoutMs: 10_000 },
          { account, password: PASSWORD, deviceType: 'windows', deviceId: `pc-${account}` },
        ),
      ),
    );
    const group = await clients[0].conversations.create({ type: 'discussion', members: ids.slice(1), name: 'fault' });
    const received = clients.map((c) => {
      const items: SyncItem[] = [];
      c.on('item', (i) => void items.push(i));
      return items;
    });
    await Promise.all(clients.map((c) => c.connect()));

    const acked = new Map<string, StoredMessage>();
    let failuresSeen = 0;
    let killed: Promise<void> | null = null;
    let killedAt = Infinity;
    /** Sends begun before the kill and acknowledged after the restart: retried across it. */
    let straddled = 0;
    const send = async (c: QiaoClient, clientMsgId: string) => {
      const began = Date.now();
      const m = await c.messages.send(group.id, { type: 'text', body: { text: clientMsgId }, clientMsgId });
      assert.equal(m.clientMsgId, clientMsgId);
      acked.set(clientMsgId, m);
      // Anything acknowledged after the dead half-second was answered by the new process.
      if (began < killedAt && Date.now() > killedAt + 500) straddled++;
      if (acked.size === KILL_AFTER && !killed) {
        killed = (async () => {
          killedAt = Date.now();
          await server.kill();
          // Let the clients hit a dead server for a while: refused connections, broken sockets.
          await new Promise((r) => setTimeout(r, 500));
          await server.start();
        })();
      }
    };
    clients.forEach((c) => c.on('disconnected', () => void failuresSeen++));
    await Promise.all(
      clients.map(async (c, k) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: IN_FLIGHT }, async () => {
            while (next < PER_CLIENT) await send(c, `${accounts[k]}-${next++}`);
          }),
        );
      }),
    );
    await killed;
    assert.ok(failuresSeen >= CLIENTS, 'every client lost its socket to the kill');
    assert.ok(straddled >= 1, 'sends were in flight when the server died, and were retried to the end');

    // Every acknowledged message is stored, once.
    const total = CLIENTS * PER_CLIENT;
    assert.equal(acked.size, total);
    const stored: StoredMessage[] = [];
    for (let after = 0; ; ) {
      const page = await clients[0].messages.list(group.id, { after, limit: 500 });
      stored.push(...page.messages);
      if (page.messages.length < 500) break;
      after = page.last;
    }
    assert.equal(stored.length, total, 'no message stored twice, none lost');
    assert.deepEqual(new Set(stored.map((m) => m.clientMsgId)), new Set(acked.keys()));
    for (const m of stored) assert.equal(acked.get(m.clientMsgId)!.id, m.id, `${m.clientMsgId} acknowledged with the id it is stored under`);

    // Every client received every message exactly once, in commit order.
    await until('every client to catch up', async () => {
      const heads = await Promise.all(clients.map((c) => c.inbox.head()));
      return clients.every((c, i) => c.cursor === heads[i]);
    });
    const expected = stored.map((m) => m.id);
    for (const [i, items] of received.entries()) {
      const got = items.filter((x) => x.kind === 'message' && x.conversationId === group.id).map((x) => (x.data as StoredMessage).id);
      assert.equal(got.length, total, `client ${i} received ${got.length} messages`);
      assert.deepEqual(got, expected, `client ${i}: each once, in order`);
      const seqs = items.map((x) => x.seq);
      assert.equal(new Set(seqs).size, seqs.length, `client ${i}: no inbox entry twice`);
    }
    clients.forEach((c) => c.disconnect());
  });
});
