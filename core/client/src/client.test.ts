import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { freePort } from '../../../test/cli/cli-harness.ts';
import { SUPER } from '../../src/auth/test-kit.ts';
import clientApi from '../../src/gateway/client/index.ts';
import { startClientApp, until, type ClientApp, type Person } from '../../src/gateway/client/test-kit.ts';
import { memoryCursor, QiaoClient, type StoredMessage, type SyncItem } from './index.ts';

/** Everything a client hands its application, in the order it does. */
function record(client: QiaoClient): SyncItem[] {
  const items: SyncItem[] = [];
  client.on('item', (i) => void items.push(i));
  return items;
}

const messagesOf = (items: SyncItem[]) => items.filter((i) => i.kind === 'message').map((i) => i.data as StoredMessage);

async function sendMany(from: Person, conversationId: string, n: number, prefix: string, parallel = 8): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const i = next++;
        out.push(await from.client.messages.send(conversationId, { type: 'text', body: { text: `${prefix} ${i}` }, clientMsgId: `${prefix}-${i}` }));
      }
    }),
  );
  return out;
}

forEachDatabase('@qiao/client SDK', ({ url }) => {
  let app: ClientApp;
  let alice: Person;
  let bob: Person;
  let chat: string;

  before(async function () {
    this.timeout(60_000);
    app = await startClientApp(url());
    [alice, bob] = [await app.user('alice'), await app.user('bob')];
    chat = (await alice.client.conversations.create({ type: 'single', members: [bob.id] })).id;
  });
  after(async () => app?.stop());

  it('gives a client that was offline while 1,000 messages arrived exactly those 1,000, in order, on reconnect', async function () {
    this.timeout(120_000);
    const cursor = memoryCursor();
    const client = new QiaoClient({ baseUrl: app.base, token: bob.token, cursor, syncPageSize: 128 });
    const items = record(client);
    await client.connect();
    await until('the first catch-up', () => client.cursor > 0 && client.cursor === cursor.value);
    client.disconnect();
    const seen = items.length;

    const sent = await sendMany(alice, chat, 1000, 'offline');
    const synced = client.once('synced');
    await client.connect();
    await synced;
    await until('the inbox to be read to its end', async () => client.cursor === (await bob.client.inbox.head()));
    const fresh = items.slice(seen);
    const got = messagesOf(fresh);
    assert.equal(got.length, 1000);
    assert.deepEqual(new Set(got.map((m) => m.clientMsgId)), new Set(sent.map((m) => m.clientMsgId)));
    // In commit order, each once, every sequence number in turn.
    assert.deepEqual(got.map((m) => m.id), [...sent.map((m) => m.id)].sort((a, b) => a - b));
    fresh.forEach((item, i) => assert.equal(item.seq, fresh[0].seq + i));
    assert.equal(cursor.value, client.cursor, 'the position is saved');

    // Nothing more comes: a wake-up for the last page, or a second catch-up, hands over nothing twice.
    await client.catchUp();
    assert.equal(items.length, seen + fresh.length);
    client.disconnect();

    // An app restarted with its saved cursor goes on from there, not from the beginning.
    const restarted = new QiaoClient({ baseUrl: app.base, token: bob.token, cursor: memoryCursor(cursor.value) });
    const after = record(restarted);
    await restarted.connect();
    const last = await alice.client.messages.send(chat, { type: 'text', body: { text: 'after the restart' } });
    await until('the new message', () => messagesOf(after).some((m) => m.id === last.id));
    assert.deepEqual(messagesOf(after).map((m) => m.id), [last.id]);
    restarted.disconnect();
  });

  it('lets every device of a person converge on the same inbox', async function () {
    this.timeout(60_000);
    const phone = await app.user('bob', 'android');
    const pc = new QiaoClient({ baseUrl: app.base, token: bob.token });
    const pcItems = record(pc);
    const phoneItems = record(phone.client);
    await Promise.all([pc.connect(), phone.client.connect()]);
    const sent = await sendMany(alice, chat, 30, 'both');
    assert.equal((await pc.messages.read(chat, Math.max(...sent.map((m) => m.id)))).changed, true);
    const mine = await phone.client.messages.send(chat, { type: 'text', body: { text: 'from the phone' } });
    const head = await pc.inbox.head();
    await until('both devices to reach the head', () => pc.cursor === head && phone.client.cursor === head);
    const tail = (items: SyncItem[]) => items.filter((i) => i.seq > head - 33).map((i) => `${i.seq}:${i.kind}`);
    assert.deepEqual(tail(pcItems), tail(phoneItems));
    assert.ok(tail(pcItems).some((x) => x.endsWith(':read')), 'the read on one device reaches the other');
    assert.ok(messagesOf(phoneItems).some((m) => m.id === mine.id) && messagesOf(pcItems).some((m) => m.id === mine.id));
    assert.equal(messagesOf(pcItems).filter((m) => sent.some((s) => s.id === m.id)).length, 30);
    pc.disconnect();
    phone.client.disconnect();
  });

  it('reconnects by itself after its gateway went away, and catches up on what it missed', async function () {
    this.timeout(60_000);
    const port = await freePort();
    const gateway = async () => {
      const g: FastifyInstance = Fastify();
      g.decorate('broker', app.broker);
      g.register(clientApi, {});
      await g.listen({ port, host: '127.0.0.1' });
      return g;
    };
    let g = await gateway();
    const client = new QiaoClient({ baseUrl: `http://127.0.0.1:${port}`, token: bob.token, reconnect: { initialMs: 50, maxMs: 400 } });
    const items = record(client);
    const events: string[] = [];
    client.on('disconnected', (d) => void events.push(`down:${d.code}:${d.reconnectInMs === null ? 'stop' : 'retry'}`));
    client.on('connected', () => void events.push('up'));
    await client.connect();
    await g.close();
    await until('the client to notice', () => client.state === 'reconnecting');
    const missed = await sendMany(alice, chat, 25, 'while-down', 4);
    await new Promise((r) => setTimeout(r, 600));
    g = await gateway();
    await until('the missed messages', () => missed.every((m) => messagesOf(items).some((x) => x.id === m.id)), 15_000);
    assert.deepEqual(events.slice(0, 2), ['up', 'down:1001:retry']);
    assert.equal(events.filter((e) => e === 'up').length, 2, `one reconnect: ${events.join(' ')}`);
    const ids = items.map((i) => i.seq);
    assert.equal(new Set(ids).size, ids.length, 'nothing twice');
    client.disconnect();
    await g.close();
  });

  it('stops for good when its session ends, and says why', async () => {
    const tablet = await app.user('bob', 'ios');
    const events: string[] = [];
    tablet.client.on('revoked', (r) => void events.push(`revoked:${r.reason}`));
    tablet.client.on('disconnected', (d) => void events.push(`down:${d.code}:${d.reconnectInMs}`));
    await tablet.client.connect();
    await app.broker.call('auth.sessions.revoke', { sessionId: tablet.sessionId }, { meta: SUPER });
    await until('the end of the session', () => tablet.client.state === 'closed');
    assert.deepEqual(events, ['revoked:forced-offline', 'down:4401:null']);
    await assert.rejects(tablet.client.connect(), (e: { code: string }) => e.code === 'QIAO_UNAUTHENTICATED');
  });

  it('retries a send whose answer was lost with the same clientMsgId: stored once', async () => {
    let lost = 0;
    const flaky: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (init?.method === 'POST' && String(input).endsWith('/messages') && lost < 2) {
        lost++;
        // The server stored it, but the answer never arrives.
        throw new TypeError('fetch failed', { cause: new Error('socket hang up') });
      }
      return res;
    };
    const client = new QiaoClient({ baseUrl: app.base, token: alice.token, fetch: flaky, sendRetry: { delayMs: 10 } });
    const m = await client.messages.send(chat, { type: 'text', body: { text: 'answer lost twice' } });
    assert.equal(lost, 2);
    const { messages } = await bob.client.messages.list(chat, { after: m.id - 1 });
    assert.deepEqual(messages.filter((x) => x.body.text === 'answer lost twice').map((x) => x.id), [m.id]);
    // A refusal is not retried.
    await assert.rejects(client.messages.send('d:none', { type: 'text', body: { text: 'x' } }), (e: { status: number; code: string }) => e.status === 404 && e.code === 'QIAO_CONVERSATION_NOT_FOUND');
  });

  it('moves its cursor only after the application has handled each item', async () => {
    const saved: number[] = [];
    const client = new QiaoClient({ baseUrl: app.base, token: bob.token, cursor: { load: () => 0, save: (s) => void saved.push(s) } });
    const handled: number[] = [];
    client.on('item', async (i) => {
      await new Promise((r) => setTimeout(r, 1));
      assert.ok(saved.every((s) => s < i.seq), 'not saved past an item still being handled');
      handled.push(i.seq);
    });
    await client.catchUp();
    assert.equal(handled.length, await client.inbox.head());
    assert.equal(saved.at(-1), handled.at(-1));
  });
});
