import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import { insertUsers, rejectsWith, startImApp } from './test-helpers.ts';

forEachDatabase('im history search', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number, carol: number, eve: number;
  let chat: Conversation, team: Conversation, secret: Conversation;
  const sent: Record<string, StoredMessage> = {};
  let n = 0;

  const send = async (key: string, conversationId: string, senderId: number, type: string, body: object) =>
    (sent[key] = await app.broker.call<StoredMessage, object>('im.send', { conversationId, senderId, clientMsgId: `s-${++n}`, type, body }));
  const search = async (params: object) => (await app.broker.call<{ messages: StoredMessage[]; nextBefore: number | null }, object>('im.messages.search', params));
  const keys = async (params: object) => {
    const ids = (await search(params)).messages.map((m) => m.id);
    return Object.entries(sent).filter(([, m]) => ids.includes(m.id)).sort((a, b) => ids.indexOf(a[1].id) - ids.indexOf(b[1].id)).map(([k]) => k);
  };

  before(async () => {
    app = await startImApp(url());
    [alice, bob, carol, eve] = await insertUsers(app.db, 4);
    chat = await app.broker.call('im.conversations.create', { type: 'single', members: [bob], createdBy: alice });
    team = await app.broker.call('im.conversations.create', { type: 'discussion', members: [bob, carol], createdBy: alice });
    secret = await app.broker.call('im.conversations.create', { type: 'single', members: [eve], createdBy: carol });
    await send('budget', chat.id, alice, 'text', { text: 'The Budget for Q3 is ready' });
    await send('percent', team.id, bob, 'text', { text: 'growth was 100% this year' });
    await send('underscore', team.id, carol, 'text', { text: 'see file_name.txt' });
    await send('link', team.id, alice, 'link', { title: '季度预算 review', url: 'https://oa.example.com/budget' });
    await send('rich', chat.id, bob, 'rich', { segments: [{ type: 'text', text: 'budget ' }, { type: 'text', text: 'approved', bold: true }] });
    await send('hidden', secret.id, carol, 'text', { text: 'budget gossip' });
  });
  after(async () => app?.stop());

  it('finds a keyword in any type’s text, ignoring case, newest first, only where the user is a member', async () => {
    assert.deepEqual(await keys({ userId: alice, keyword: 'BUDGET' }), ['rich', 'link', 'budget']);
    assert.deepEqual(await keys({ userId: carol, keyword: 'budget' }), ['hidden', 'link']);
    assert.deepEqual(await keys({ userId: eve, keyword: 'budget' }), ['hidden']);
    assert.deepEqual(await keys({ userId: bob, keyword: '预算' }), ['link']);
  });

  it('matches %, _ and \\ in a keyword literally', async () => {
    assert.deepEqual(await keys({ userId: bob, keyword: '100%' }), ['percent']);
    assert.deepEqual(await keys({ userId: bob, keyword: '%' }), ['percent']);
    assert.deepEqual(await keys({ userId: bob, keyword: 'e_n' }), ['underscore']);
    assert.deepEqual(await keys({ userId: bob, keyword: '\\' }), []);
  });

  it('narrows by conversation, sender and time range, and pages with nextBefore', async () => {
    assert.deepEqual(await keys({ userId: bob, conversationId: team.id }), ['link', 'underscore', 'percent']);
    assert.deepEqual(await keys({ userId: bob, senderId: alice }), ['link', 'budget']);
    const t = sent.underscore.createdAt;
    assert.deepEqual(await keys({ userId: bob, from: t, to: t }), ['underscore']);
    assert.deepEqual(await keys({ userId: bob, to: sent.percent.createdAt }), ['percent', 'budget']);
    const first = await search({ userId: bob, limit: 2 });
    assert.equal(first.nextBefore, first.messages[1].id);
    assert.deepEqual(first.messages.map((m) => m.id), [sent.rich.id, sent.link.id]);
    const second = await search({ userId: bob, limit: 2, before: first.nextBefore });
    assert.deepEqual(second.messages.map((m) => m.id), [sent.underscore.id, sent.percent.id]);
    const third = await search({ userId: bob, limit: 2, before: second.nextBefore });
    assert.deepEqual([third.messages.map((m) => m.id), third.nextBefore], [[sent.budget.id], null]);
  });

  it('refuses searching a conversation the user is not in, and bad input', async () => {
    await rejectsWith(search({ userId: alice, conversationId: secret.id }), 'QIAO_NOT_A_MEMBER', 'userId');
    await rejectsWith(search({ userId: alice, from: 'yesterday-ish' }), 'QIAO_VALIDATION', 'from');
    await rejectsWith(search({ userId: alice, limit: 201 }), 'QIAO_VALIDATION', 'limit');
  });
});
