import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import { queryRows } from '../db/sql.ts';
import { ADMIN, insertUsers, rejectsWith, startImApp, syncAll, upload } from './test-helpers.ts';

forEachDatabase('im message types', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number, carol: number, eve: number;
  let chat: Conversation, team: Conversation, fixed: Conversation;
  let n = 0;

  before(async () => {
    app = await startImApp(url());
    [alice, bob, carol, eve] = await insertUsers(app.db, 4);
    chat = await app.broker.call('im.conversations.create', { type: 'single', members: [bob], createdBy: alice });
    team = await app.broker.call('im.conversations.create', { type: 'discussion', members: [bob, carol], createdBy: alice });
    fixed = await app.broker.call('im.groups.create', { name: 'Fixed', members: [alice, bob], owner: carol }, { meta: ADMIN });
  });
  after(async () => app?.stop());

  const send = (type: string, body: unknown, opts: { conversationId?: string; senderId?: number } = {}) =>
    app.broker.call<StoredMessage, object>('im.send', { conversationId: opts.conversationId ?? team.id, senderId: opts.senderId ?? alice, clientMsgId: `t-${++n}`, type, body });
  const stored = async () => Number((await queryRows<{ n: number }>(app.db, 'SELECT COUNT(*) AS n FROM messages', []))[0].n);

  it('stores every type a user may send and delivers it unchanged to the other members', async () => {
    const photo = await upload(app, alice, Buffer.from('fake png bytes'), { kind: 'image', name: 'photo.png', conversationId: team.id });
    const clip = await upload(app, alice, Buffer.from('fake voice bytes'), { kind: 'voice', name: 'clip.amr', conversationId: team.id });
    const doc = await upload(app, alice, Buffer.from('a document'), { kind: 'file', name: 'plan.docx', conversationId: team.id });
    const bodies: Array<[string, Record<string, unknown>]> = [
      ['text', { text: 'hi @bob and everyone', mentions: [bob], mentionAll: true }],
      ['rich', { title: 'Minutes', segments: [{ type: 'text', text: 'Bold move', bold: true, color: '#aa0000' }, { type: 'lineBreak' }, { type: 'link', text: 'spec', url: 'https://example.com/spec' }, { type: 'mention', userId: carol }, { type: 'image', fileId: photo.id }] }],
      ['image', { fileId: photo.id, width: 640, height: 480 }],
      ['file', { fileId: doc.id }],
      ['voice', { fileId: clip.id, durationSeconds: 7 }],
      ['link', { title: 'Expense report', url: 'https://oa.example.com/expense/42', description: 'Please approve', appendSsoToken: true }],
      ['card', { articles: [{ title: 'Spring party', description: 'Friday 6pm', url: 'https://intranet.example.com/party', coverFileId: photo.id }, { title: 'Menu' }] }],
      ['announcement', { title: 'Office move', text: 'We move on Monday', mentionAll: true }],
      ['vote', { question: 'Lunch?', options: ['noodles', 'dumplings'], multiple: false, deadline: '2030-01-01T12:00:00Z' }],
    ];
    const sent: StoredMessage[] = [];
    for (const [type, body] of bodies) sent.push(await send(type, body));
    assert.deepEqual(sent[2].body, { fileId: photo.id, width: 640, height: 480, name: 'photo.png', size: photo.size, sha256: photo.sha256 });
    assert.deepEqual(sent[3].body, { fileId: doc.id, name: 'plan.docx', size: doc.size, sha256: doc.sha256 });
    for (const [i, [type, body]] of bodies.entries()) {
      if (type === 'image' || type === 'file' || type === 'voice') continue;
      assert.deepEqual(sent[i].body, body, type);
    }
    const delivered = (await syncAll(app, carol)).filter((x) => x.kind === 'message').map((x) => x.data as StoredMessage);
    assert.deepEqual(delivered.slice(-sent.length), sent);
  });

  it('copies forwarded messages the sender can read, and ignores items a client made up', async () => {
    const a = await send('text', { text: 'first' }, { conversationId: chat.id });
    const b = await send('link', { title: 'doc', url: 'https://example.com' }, { conversationId: chat.id });
    const fwd = await send('forward', { title: 'Chat with Bob', messageIds: [b.id, a.id], items: [{ id: 1, conversationId: 'x', senderId: eve, type: 'text', body: { text: 'forged' }, createdAt: 'x' }] });
    assert.deepEqual(fwd.body, {
      title: 'Chat with Bob',
      messageIds: [b.id, a.id],
      items: [b, a].map((m) => ({ id: m.id, conversationId: m.conversationId, senderId: m.senderId, type: m.type, body: m.body, createdAt: m.createdAt })),
    });
    const secret = await app.broker.call<Conversation, object>('im.conversations.create', { type: 'single', members: [eve], createdBy: bob });
    const hidden = await send('text', { text: 'between bob and eve' }, { conversationId: secret.id, senderId: bob });
    await rejectsWith(send('forward', { messageIds: [a.id, hidden.id] }), 'QIAO_NOT_FOUND', 'body.messageIds[1]');
    await rejectsWith(send('forward', { messageIds: [999_999_999] }), 'QIAO_NOT_FOUND', 'body.messageIds[0]');
    await rejectsWith(send('forward', { messageIds: [a.id, a.id] }), 'QIAO_VALIDATION', 'body.messageIds[1]');
    await rejectsWith(send('forward', { messageIds: [] }), 'QIAO_VALIDATION', 'body.messageIds');
  });

  it('checks mentions against the members, and @all against the group’s rules', async () => {
    await rejectsWith(send('text', { text: 'hey', mentions: [eve] }), 'QIAO_VALIDATION', 'body.mentions[0]');
    await rejectsWith(send('text', { text: 'hey', mentions: [bob, 0] }), 'QIAO_VALIDATION', 'body.mentions[1]');
    await rejectsWith(send('text', { text: 'all', mentionAll: true }, { conversationId: chat.id }), 'QIAO_VALIDATION', 'body');
    await rejectsWith(send('text', { text: 'all', mentionAll: true }, { conversationId: fixed.id, senderId: bob }), 'QIAO_FORBIDDEN', 'body');
    const ok = await send('text', { text: 'all', mentionAll: true }, { conversationId: fixed.id, senderId: carol });
    assert.equal(ok.body.mentionAll, true);
    await rejectsWith(send('rich', { segments: [{ type: 'mention', userId: eve }] }), 'QIAO_VALIDATION', 'body.segments[0].userId');
  });

  it('refuses attachments that are missing, unreadable or of the wrong kind, naming the field', async () => {
    const evesFile = await upload(app, eve, Buffer.from('eve only'), { kind: 'image', name: 'eve.png' });
    const doc = await upload(app, alice, Buffer.from('just a document'), { kind: 'file', name: 'a.txt' });
    await rejectsWith(send('image', { fileId: 'f000000000000000000000000' }), 'QIAO_NOT_FOUND', 'body.fileId');
    await rejectsWith(send('image', { fileId: evesFile.id }), 'QIAO_NOT_FOUND', 'body.fileId');
    await rejectsWith(send('image', { fileId: doc.id }), 'QIAO_VALIDATION', 'body.fileId');
    await rejectsWith(send('voice', { fileId: doc.id }), 'QIAO_VALIDATION', 'body.durationSeconds');
    await rejectsWith(send('card', { articles: [{ title: 'x', coverFileId: doc.id }] }), 'QIAO_VALIDATION', 'body.articles[0].coverFileId');
    await rejectsWith(send('image', { fileId: '../../etc/passwd' }), 'QIAO_VALIDATION', 'body.fileId');
  });

  it('refuses malformed bodies with the field named, and stores nothing', async () => {
    const before = await stored();
    const cases: Array<[string, unknown, string, string?]> = [
      ['rich', { segments: [{ type: 'text', text: 'x', color: 'red' }] }, 'body.segments[0].color'],
      ['rich', { segments: [{ type: 'text', text: 'x' }, { type: 'video' }] }, 'body.segments[1].type'],
      ['rich', { segments: [{ type: 'link', text: 'x', url: 'javascript:alert(1)' }] }, 'body.segments[0].url'],
      ['rich', { segments: [] }, 'body.segments'],
      ['link', { url: 'https://example.com' }, 'body.title'],
      ['link', { title: 'x', url: 'ftp://example.com/file' }, 'body.url'],
      ['link', { title: 'x', url: 'not a url' }, 'body.url'],
      ['link', { title: 'x', url: 'https://example.com', appendSsoToken: 'yes' }, 'body.appendSsoToken'],
      ['card', { articles: Array.from({ length: 9 }, () => ({ title: 'x' })) }, 'body.articles'],
      ['card', { articles: [{ description: 'no title' }] }, 'body.articles[0].title'],
      ['vote', { question: 'Lunch?', options: ['only one'] }, 'body.options'],
      ['vote', { question: 'Lunch?', options: ['a', 'a'] }, 'body.options[1]'],
      ['vote', { question: 'Lunch?', options: ['a', 'b'], deadline: 'soon' }, 'body.deadline'],
      ['announcement', { title: 'x' }, 'body.text'],
      ['text', { text: 'x\u0000y' }, 'body.text'],
      ['system', { text: 'I am the system now' }, 'type'],
      ['sticker', { text: 'x' }, 'type'],
      ['rich', { segments: Array.from({ length: 400 }, () => ({ type: 'text', text: '长'.repeat(200) })) }, 'body', 'QIAO_PAYLOAD_TOO_LARGE'],
    ];
    for (const [type, body, field, code] of cases) await rejectsWith(send(type, body), code ?? 'QIAO_VALIDATION', field);
    await rejectsWith(send('announcement', { title: 'x', text: 'y' }, { conversationId: chat.id }), 'QIAO_VALIDATION', 'type');
    assert.equal(await stored(), before);
  });
});
