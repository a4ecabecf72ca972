import assert from 'node:assert/strict';
import type { Service } from 'moleculer';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import type { ImSettings } from './settings.ts';
import { queryRows } from '../db/sql.ts';
import { ADMIN, fixturePluginHost, insertUsers, rejectsWith, startImApp } from './test-helpers.ts';

forEachDatabase('im sensitive words', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number;
  let chat: Conversation;
  let n = 0;

  before(async () => {
    app = await startImApp(url());
    [alice, bob] = await insertUsers(app.db, 2);
    chat = await app.broker.call('im.conversations.create', { type: 'discussion', members: [bob], createdBy: alice });
  });
  after(async () => app?.stop());

  const settings = (sensitiveWords: object) => app.broker.call<ImSettings, object>('im.settings.update', { sensitiveWords }, { meta: ADMIN });
  const send = (type: string, body: object) =>
    app.broker.call<StoredMessage, object>('im.send', { conversationId: chat.id, senderId: alice, clientMsgId: `w-${++n}`, type, body });

  it('does nothing until the admin turns it on', async () => {
    assert.deepEqual((await send('text', { text: '工资 is fine' })).body, { text: '工资 is fine' });
  });

  it('masks every character of a word with *, in every text of a message, whatever the case', async () => {
    const s = await settings({ enabled: true, mode: 'mask', words: ['工资', '工资单', 'Secret', 'secret'] });
    assert.deepEqual(s.sensitiveWords, { enabled: true, mode: 'mask', words: ['工资', '工资单', 'Secret'] });
    assert.deepEqual((await send('text', { text: '我的工资单和工资是 SECRET' })).body, { text: '我的***和**是 ******' });
    assert.deepEqual((await send('link', { title: 'secret plan', url: 'https://example.com/secret', description: '工资' })).body, {
      title: '****** plan',
      url: 'https://example.com/secret',
      description: '**',
    });
    assert.deepEqual((await send('vote', { question: 'Raise 工资?', options: ['yes', 'secret ballot'] })).body, { question: 'Raise **?', options: ['yes', '****** ballot'] });
  });

  it('blocks the send with the word and field named when set to block, storing nothing', async () => {
    await settings({ mode: 'block' });
    const before = Number((await queryRows<{ n: number }>(app.db, 'SELECT COUNT(*) AS n FROM messages', []))[0].n);
    const err = await rejectsWith(send('text', { text: 'what is your 工资?' }), 'QIAO_MESSAGE_REJECTED', 'body.text');
    assert.equal(err.reason, 'contains the sensitive word "工资"');
    await rejectsWith(send('card', { articles: [{ title: 'ok' }, { title: 'ok', description: 'top SECRET' }] }), 'QIAO_MESSAGE_REJECTED', 'body.articles[1].description');
    assert.equal(Number((await queryRows<{ n: number }>(app.db, 'SELECT COUNT(*) AS n FROM messages', []))[0].n), before);
    assert.equal((await send('text', { text: 'nothing to see' })).body.text, 'nothing to see');
  });

  it('runs before the plugins’ hook: plugins see masked text, and never see a blocked message', async () => {
    const calls = { count: 0 };
    const host: Service = app.broker.createService(fixturePluginHost(calls));
    await app.broker.waitForServices('plugins', 5000, 10);
    try {
      await rejectsWith(send('text', { text: 'secret' }), 'QIAO_MESSAGE_REJECTED', 'body.text');
      assert.equal(calls.count, 0);
      await settings({ mode: 'mask' });
      // The fixture upper-cases what it is given: it was given the masked text.
      assert.deepEqual((await send('text', { text: 'my secret' })).body, { text: 'MY ******' });
      assert.equal(calls.count, 1);
    } finally {
      await app.broker.destroyService(host);
    }
  });

  it('refuses bad word lists with the field named', async () => {
    await rejectsWith(settings({ words: ['x'.repeat(51)] }), 'QIAO_VALIDATION', 'sensitiveWords.words[0]');
    await rejectsWith(settings({ mode: 'delete' }), 'QIAO_VALIDATION', 'sensitiveWords.mode');
    await settings({ enabled: false });
  });
});
