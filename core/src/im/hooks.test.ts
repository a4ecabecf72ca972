import assert from 'node:assert/strict';
import type { Service } from 'moleculer';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import { queryRows } from '../db/sql.ts';
import { fixturePluginHost, insertUsers, rejectsWith, startImApp } from './test-helpers.ts';

forEachDatabase('im beforeMessageStored hook', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number;
  let chat: Conversation;
  let host: Service | undefined;
  const calls = { count: 0 };

  before(async () => {
    app = await startImApp(url());
    [alice, bob] = await insertUsers(app.db, 2);
    chat = await app.broker.call('im.conversations.create', { type: 'discussion', members: [bob], createdBy: alice });
  });
  beforeEach(async () => {
    host = app.broker.createService(fixturePluginHost(calls));
    await app.broker.waitForServices('plugins', 5000, 10);
  });
  afterEach(async () => {
    if (host) await app.broker.destroyService(host);
    host = undefined;
  });
  after(async () => app?.stop());

  const send = (clientMsgId: string, text: string) =>
    app.broker.call<StoredMessage, object>('im.send', { conversationId: chat.id, senderId: alice, clientMsgId, type: 'text', body: { text } });
  const rowsFor = (clientMsgId: string) =>
    queryRows<{ body: unknown }>(app.db, 'SELECT body FROM messages WHERE sender_id = ? AND client_msg_id = ?', [alice, clientMsgId]);
  const loggedFor = async (clientMsgId: string) =>
    Number((await queryRows<{ n: number }>(app.db, "SELECT COUNT(*) AS n FROM event_log WHERE topic = 'message.stored' AND CAST(payload AS TEXT) LIKE ?", [`%"clientMsgId":"${clientMsgId}"%`]))[0].n);

  it('stores nothing when a plugin rejects, and tells the sender why and which plugin', async () => {
    const data = await rejectsWith(send('r-1', 'this is forbidden talk'), 'QIAO_MESSAGE_REJECTED', 'body');
    assert.equal(data.reason, 'contains a forbidden word');
    assert.equal(data.pluginId, 'com.example.keyword-filter');
    assert.match(String(data.message), /com\.example\.keyword-filter.*contains a forbidden word/);
    assert.equal((await rowsFor('r-1')).length, 0);
    assert.equal(await loggedFor('r-1'), 0);
  });

  it('stores the body a plugin modified, keeping sender, type and conversation', async () => {
    const m = await send('m-1', 'quiet please');
    assert.deepEqual(m.body, { text: 'QUIET PLEASE' });
    assert.equal(m.senderId, alice);
    assert.equal(m.conversationId, chat.id);
    const { messages } = await app.broker.call<{ messages: StoredMessage[] }, object>('im.messages.list', { conversationId: chat.id, userId: bob });
    assert.deepEqual(messages.find((x) => x.id === m.id), m);
  });

  it('does not run the hook again for a retry', async () => {
    const first = await send('h-1', 'once');
    const before = calls.count;
    const again = await send('h-1', 'once');
    assert.equal(calls.count, before);
    assert.deepEqual(again, first);
    assert.equal(await loggedFor('h-1'), 1);
  });

  it('allows messages unchanged while no plugin host is running', async () => {
    if (host) await app.broker.destroyService(host);
    host = undefined;
    const m = await send('n-1', 'forbidden but nobody checks');
    assert.deepEqual(m.body, { text: 'forbidden but nobody checks' });
  });

  it('refuses to store when the plugin host fails, and when a plugin returns an invalid body', async () => {
    if (host) await app.broker.destroyService(host);
    host = app.broker.createService({
      name: 'plugins',
      actions: {
        'hooks.beforeMessageStored'(ctx) {
          const { message } = ctx.params as { message: { body: { text: string } } };
          if (message.body.text === 'crash') throw new Error('host exploded');
          return { outcome: 'allow', message: { ...message, body: { text: '' } }, pluginId: 'com.example.broken' };
        },
      },
    });
    await app.broker.waitForServices('plugins', 5000, 10);
    await rejectsWith(send('f-1', 'crash'), 'QIAO_PLUGIN_UNAVAILABLE');
    const data = await rejectsWith(send('f-2', 'fine'), 'QIAO_PLUGIN_UNAVAILABLE', 'body.text');
    assert.equal(data.pluginId, 'com.example.broken');
    assert.equal((await rowsFor('f-1')).length + (await rowsFor('f-2')).length, 0);
  });
});
