import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { collectAdminActions } from '../admin-api/admin-actions.ts';
import type { Conversation } from './conversations.ts';
import type { StoredMessage } from './messages.ts';
import type { SyncItem } from './sync.ts';
import { ADMIN, insertUsers, rejectsWith, setStatus, startImApp, syncAll } from './test-helpers.ts';

forEachDatabase('im groups', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let u: number[];

  before(async () => {
    app = await startImApp(url());
    u = await insertUsers(app.db, 12);
  });
  after(async () => app?.stop());

  const call = <T = any>(action: string, params: object, meta?: object) => app.broker.call<T, object>(`im.${action}`, params, meta ? { meta } : undefined);
  const admin = <T = any>(action: string, params: object) => call<T>(action, params, ADMIN);
  const discussion = (owner: number, members: number[], name = 'Team') => call<Conversation>('conversations.create', { type: 'discussion', members, name, createdBy: owner });
  const send = (conversationId: string, senderId: number, text: string, extra: object = {}) =>
    call<StoredMessage>('send', { conversationId, senderId, clientMsgId: `${senderId}-${Math.random()}`, type: 'text', body: { text }, ...extra });
  const roles = (c: Conversation) => Object.fromEntries(c.members.map((m) => [m.userId, m.role]));
  const changes = async (userId: number, conversationId: string) =>
    (await syncAll(app, userId)).filter((i: SyncItem) => i.kind === 'conversation' && i.conversationId === conversationId).map((i) => (i.data as { change: string }).change);

  describe('discussion groups (讨论组)', () => {
    it('caps members at the admin’s setting, and lets whitelisted people go up to the group maximum', async () => {
      await admin('settings.update', { discussion: { memberCap: 4, whitelist: [u[1]] } });
      await rejectsWith(discussion(u[0], [u[2], u[3], u[4], u[5]]), 'QIAO_VALIDATION', 'members');
      const small = await discussion(u[0], [u[2], u[3]]);
      await call('conversations.invite', { userId: u[2], conversationId: small.id, userIds: [u[4]] });
      await rejectsWith(call('conversations.invite', { userId: u[2], conversationId: small.id, userIds: [u[5]] }), 'QIAO_VALIDATION', 'userIds');
      const big = await discussion(u[1], [u[2], u[3], u[4], u[5], u[6], u[7]]);
      assert.equal(big.members.length, 7);
      await admin('settings.update', { discussion: { memberCap: 200, whitelist: [] } });
    });

    it('lets any member rename and invite, tells every member, and refuses outsiders and inactive invitees', async () => {
      const g = await discussion(u[0], [u[1], u[2]]);
      const renamed = await call<Conversation>('conversations.rename', { userId: u[2], conversationId: g.id, name: '  Launch  ' });
      assert.equal(renamed.name, 'Launch');
      const { added } = await call('conversations.invite', { userId: u[1], conversationId: g.id, userIds: [u[3], u[1]] });
      assert.deepEqual(added, [u[3]]);
      assert.deepEqual(await changes(u[0], g.id), ['created', 'renamed', 'membersAdded']);
      assert.deepEqual(await changes(u[3], g.id), ['membersAdded']);
      await rejectsWith(call('conversations.invite', { userId: u[9], conversationId: g.id, userIds: [u[9]] }), 'QIAO_NOT_A_MEMBER', 'userId');
      const [gone] = await insertUsers(app.db, 1);
      await setStatus(app.db, gone, 'resigned');
      await rejectsWith(call('conversations.invite', { userId: u[0], conversationId: g.id, userIds: [gone] }), 'QIAO_FORBIDDEN', 'userIds');
      await rejectsWith(call('conversations.rename', { userId: u[0], conversationId: g.id, name: '   ' }), 'QIAO_VALIDATION', 'name');
    });

    it('lets only the owner remove, and a removed member can neither read nor send any more', async () => {
      const g = await discussion(u[0], [u[1], u[2], u[3]]);
      await rejectsWith(call('conversations.remove', { userId: u[1], conversationId: g.id, userIds: [u[2]] }), 'QIAO_FORBIDDEN', 'userIds[0]');
      await rejectsWith(call('conversations.remove', { userId: u[0], conversationId: g.id, userIds: [u[0]] }), 'QIAO_VALIDATION', 'userIds');
      const { removed } = await call('conversations.remove', { userId: u[0], conversationId: g.id, userIds: [u[2]] });
      assert.deepEqual(removed, [u[2]]);
      assert.deepEqual(await changes(u[2], g.id), ['created', 'membersRemoved']);
      await rejectsWith(send(g.id, u[2], 'still here?'), 'QIAO_NOT_A_MEMBER', 'senderId');
      await rejectsWith(call('messages.list', { conversationId: g.id, userId: u[2] }), 'QIAO_NOT_A_MEMBER', 'userId');
      await send(g.id, u[1], 'after the removal');
      const theirs = (await syncAll(app, u[2])).filter((i) => i.kind === 'message' && i.conversationId === g.id);
      assert.equal(theirs.length, 0);
    });

    it('passes ownership on when the owner leaves, and dissolves the group when the last one leaves', async () => {
      const g = await discussion(u[0], [u[1], u[2]]);
      const left = await call('conversations.leave', { userId: u[0], conversationId: g.id });
      assert.equal(left.newOwner, u[1]);
      let now = await call<Conversation>('conversations.get', { userId: u[1], conversationId: g.id });
      assert.deepEqual(roles(now), { [u[1]]: 'owner', [u[2]]: 'member' });
      await call('conversations.leave', { userId: u[2], conversationId: g.id });
      await call('conversations.leave', { userId: u[1], conversationId: g.id });
      const listed = await admin('groups.list', { type: 'discussion', includeDissolved: true });
      assert.ok(listed.groups.find((x: { id: string; dissolvedAt: string | null }) => x.id === g.id)?.dissolvedAt);
      now = (await app.broker.call<Conversation, object>('im.groups.get', { id: g.id }, { meta: ADMIN }))!;
      assert.equal(now.members.length, 0);
    });

    it('transfers ownership only from the owner, and dissolves only by the owner, keeping history readable', async () => {
      const g = await discussion(u[0], [u[1], u[2]]);
      await rejectsWith(call('conversations.transfer', { userId: u[1], conversationId: g.id, toUserId: u[2] }), 'QIAO_FORBIDDEN', 'userId');
      await rejectsWith(call('conversations.transfer', { userId: u[0], conversationId: g.id, toUserId: u[9] }), 'QIAO_NOT_A_MEMBER', 'toUserId');
      const t = await call<Conversation>('conversations.transfer', { userId: u[0], conversationId: g.id, toUserId: u[2] });
      assert.deepEqual(roles(t), { [u[0]]: 'member', [u[1]]: 'member', [u[2]]: 'owner' });
      const m = await send(g.id, u[1], 'before the end');
      await rejectsWith(call('conversations.dissolve', { userId: u[0], conversationId: g.id }), 'QIAO_FORBIDDEN', 'userId');
      await call('conversations.dissolve', { userId: u[2], conversationId: g.id });
      await rejectsWith(send(g.id, u[1], 'hello?'), 'QIAO_CONVERSATION_DISSOLVED', 'conversationId');
      await rejectsWith(call('conversations.invite', { userId: u[2], conversationId: g.id, userIds: [u[5]] }), 'QIAO_CONVERSATION_DISSOLVED', 'conversationId');
      const { messages } = await call('messages.list', { conversationId: g.id, userId: u[0] });
      assert.deepEqual(messages.at(-1), m);
      assert.deepEqual((await changes(u[1], g.id)).slice(-2), ['ownerChanged', 'dissolved']);
    });

    it('refuses group operations on a 1:1 chat', async () => {
      const chat = await call<Conversation>('conversations.create', { type: 'single', members: [u[1]], createdBy: u[0] });
      await rejectsWith(call('conversations.invite', { userId: u[0], conversationId: chat.id, userIds: [u[2]] }), 'QIAO_FORBIDDEN', 'conversationId');
      await rejectsWith(call('conversations.rename', { userId: u[0], conversationId: chat.id, name: 'x' }), 'QIAO_FORBIDDEN', 'conversationId');
      await rejectsWith(call('conversations.leave', { userId: u[0], conversationId: chat.id }), 'QIAO_FORBIDDEN', 'conversationId');
      await rejectsWith(call('conversations.create', { type: 'group', members: [u[1]], createdBy: u[0] }), 'QIAO_VALIDATION', 'type');
    });
  });

  describe('fixed groups (固定群)', () => {
    it('are created by admins with an owner, group admins and permissions', async () => {
      const g = await admin<Conversation>('groups.create', { name: 'Finance', members: [u[0], u[1], u[2]], owner: u[3], admins: [u[4]], permissions: { rename: 'members' } });
      assert.equal(g.type, 'group');
      assert.match(g.id, /^g:[0-9a-f]{20}$/);
      assert.equal(g.createdBy, null);
      assert.deepEqual(roles(g), { [u[0]]: 'member', [u[1]]: 'member', [u[2]]: 'member', [u[3]]: 'owner', [u[4]]: 'admin' });
      assert.deepEqual(g.permissions, { invite: 'admins', leave: true, rename: 'members', announce: 'admins', upload: 'members' });
      assert.deepEqual(await changes(u[0], g.id), ['created']);
      const created = (await syncAll(app, u[0])).find((i) => i.kind === 'conversation' && i.conversationId === g.id);
      assert.deepEqual((created?.data as { by: unknown }).by, { admin: 'admin' });
      await rejectsWith(admin('groups.create', { name: 'x', members: [u[0], 999_999] }), 'QIAO_NOT_FOUND', 'members');
      await rejectsWith(admin('groups.create', { name: 'x', members: [u[0]], permissions: { invite: 'everyone' } }), 'QIAO_VALIDATION', 'permissions.invite');
    });

    it('may start empty and get their members later', async () => {
      const g = await admin<Conversation>('groups.create', { name: 'Later' });
      assert.equal(g.type, 'group');
      assert.deepEqual(g.members, []);
      assert.deepEqual((await admin<Conversation>('groups.create', { name: 'Also empty', members: [] })).members, []);
      assert.ok((await admin<{ groups: Array<{ id: string; memberCount: number }> }>('groups.list', { type: 'group', pageSize: 500 })).groups.some((x) => x.id === g.id && x.memberCount === 0));
      await admin('groups.addMembers', { id: g.id, userIds: [u[6], u[7]] });
      assert.deepEqual((await admin<Conversation>('groups.get', { id: g.id })).members.map((m) => m.userId).sort((a, b) => a - b), [u[6], u[7]]);
      assert.deepEqual(await changes(u[6], g.id), ['membersAdded'], 'nobody was told of the creation: nobody was in it');
    });

    it('follow each group’s permissions for invite, rename, announcements and leaving', async () => {
      const g = await admin<Conversation>('groups.create', { name: 'Ops', members: [u[0], u[1]], owner: u[2], admins: [u[3]] });
      await rejectsWith(call('conversations.invite', { userId: u[0], conversationId: g.id, userIds: [u[5]] }), 'QIAO_FORBIDDEN', 'userId');
      assert.deepEqual((await call('conversations.invite', { userId: u[3], conversationId: g.id, userIds: [u[5]] })).added, [u[5]]);
      await rejectsWith(call('conversations.rename', { userId: u[0], conversationId: g.id, name: 'Mine' }), 'QIAO_FORBIDDEN', 'userId');
      const announce = (senderId: number) =>
        call<StoredMessage>('send', { conversationId: g.id, senderId, clientMsgId: `a-${senderId}`, type: 'announcement', body: { title: 'Drill', text: 'Fire drill at 3pm' } });
      await rejectsWith(announce(u[0]), 'QIAO_FORBIDDEN', 'senderId');
      const posted = await announce(u[3]);
      const withAnnouncement = await call<Conversation>('conversations.get', { userId: u[0], conversationId: g.id });
      assert.deepEqual(withAnnouncement.announcement, { title: 'Drill', text: 'Fire drill at 3pm', messageId: posted.id, by: u[3], at: posted.createdAt });
      await admin('groups.update', { id: g.id, permissions: { invite: 'members', leave: false } });
      assert.deepEqual((await call('conversations.invite', { userId: u[0], conversationId: g.id, userIds: [u[6]] })).added, [u[6]]);
      await rejectsWith(call('conversations.leave', { userId: u[1], conversationId: g.id }), 'QIAO_FORBIDDEN', 'conversationId');
      await admin('groups.update', { id: g.id, permissions: { leave: true } });
      await rejectsWith(call('conversations.leave', { userId: u[2], conversationId: g.id }), 'QIAO_FORBIDDEN', 'userId');
      await call('conversations.leave', { userId: u[1], conversationId: g.id });
      await rejectsWith(call('conversations.dissolve', { userId: u[2], conversationId: g.id }), 'QIAO_FORBIDDEN', 'conversationId');
    });

    it('lets the owner remove anyone and group admins remove plain members only', async () => {
      const g = await admin<Conversation>('groups.create', { name: 'Sales', members: [u[0], u[1], u[2]], owner: u[3], admins: [u[4], u[5]] });
      await rejectsWith(call('conversations.remove', { userId: u[4], conversationId: g.id, userIds: [u[5]] }), 'QIAO_FORBIDDEN', 'userIds[0]');
      assert.deepEqual((await call('conversations.remove', { userId: u[4], conversationId: g.id, userIds: [u[0]] })).removed, [u[0]]);
      assert.deepEqual((await call('conversations.remove', { userId: u[3], conversationId: g.id, userIds: [u[5], u[1]] })).removed, [u[1], u[5]].sort((a, b) => a - b));
      await rejectsWith(call('conversations.remove', { userId: u[2], conversationId: g.id, userIds: [u[4]] }), 'QIAO_FORBIDDEN', 'userIds[0]');
    });

    it('are managed by admins: members, roles, rename, dissolve; and listed', async () => {
      const g = await admin<Conversation>('groups.create', { name: 'HR', members: [u[0], u[1]] });
      assert.deepEqual((await admin('groups.addMembers', { id: g.id, userIds: [u[2], u[0]] })).added, [u[2]]);
      assert.deepEqual((await admin('groups.removeMembers', { id: g.id, userIds: [u[1]] })).removed, [u[1]]);
      const r = await admin<Conversation>('groups.setRoles', { id: g.id, owner: u[0], admins: [u[2]] });
      assert.deepEqual(roles(r), { [u[0]]: 'owner', [u[2]]: 'admin' });
      await rejectsWith(admin('groups.setRoles', { id: g.id, owner: u[9], admins: [] }), 'QIAO_VALIDATION', 'owner');
      await rejectsWith(admin('groups.setRoles', { id: g.id, admins: [u[0], u[9]] }), 'QIAO_VALIDATION', 'admins[1]');
      const renamed = await admin<Conversation>('groups.update', { id: g.id, name: 'People', spaceQuota: 1024 });
      assert.equal(renamed.name, 'People');
      const listed = await admin('groups.list', { type: 'group', search: 'peop' });
      assert.deepEqual(listed.groups.map((x: { id: string }) => x.id), [g.id]);
      assert.equal(listed.groups[0].memberCount, 2);
      await admin('groups.dissolve', { id: g.id });
      await rejectsWith(admin('groups.addMembers', { id: g.id, userIds: [u[5]] }), 'QIAO_CONVERSATION_DISSOLVED', 'id');
      assert.deepEqual((await admin('groups.list', { type: 'group', search: 'peop' })).groups, []);
      await rejectsWith(admin('groups.get', { id: 'g:nope' }), 'QIAO_CONVERSATION_NOT_FOUND', 'id');
    });

    it('are admin actions with admin API routes', () => {
      const { actions, problems } = collectAdminActions(app.broker);
      assert.deepEqual(problems, []);
      assert.deepEqual(actions.get('im.groups.create')?.route, { method: 'POST', path: '/im/groups' });
      assert.deepEqual(actions.get('im.settings.update')?.route, { method: 'PATCH', path: '/im/settings' });
      assert.deepEqual(actions.get('im.broadcasts.send')?.route, { method: 'POST', path: '/im/broadcasts' });
      assert.equal(actions.has('im.send'), false);
      assert.equal(actions.has('im.sync'), false);
    });
  });
});
