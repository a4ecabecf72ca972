import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import {
  announceChange,
  announceCreated,
  assertActiveUsers,
  discussionCap,
  getConversation,
  insertConversation,
  insertMembers,
  loadConversationRow,
  memberAccess,
  newGroupId,
  permissionsOf,
  type Actor,
  type Conversation,
  type ConversationRow,
  type ConversationType,
} from './conversations.ts';
import { assertAllowed, isPairChat, type GroupPermissions, type Role } from './permissions.ts';
import { MAX_GROUP_MEMBERS } from './settings.ts';
import { chunked, exec, inList, isoDate, jsonParam, queryRows } from '../db/sql.ts';
import { imWrite, type ImCommit, type ImTx } from './write.ts';

type Members = Map<number, Role>;

async function membersOf(db: Database, w: ImTx, id: string): Promise<Members> {
  const rows = await queryRows<{ user_id: number; role: Role }>(db, 'SELECT user_id, role FROM conversation_members WHERE conversation_id = ?', [id], w.t);
  return new Map(rows.map((r) => [Number(r.user_id), r.role]));
}

function refuse(message: string, field = 'conversationId'): never {
  throw qiaoError('QIAO_FORBIDDEN', message, { field });
}

function notForSingle(c: ConversationRow, what: string): void {
  if (isPairChat(c.type)) refuse(`conversation ${c.id} is a ${c.type === 'app' ? 'chat with an app' : '1:1 chat'}: ${what} needs a group (create a discussion group instead)`);
}

function notForDepartment(c: ConversationRow, what: string): void {
  if (c.type === 'department') refuse(`conversation ${c.id} is a department group: its members follow the directory, so ${what} is not possible`);
}

async function capOf(db: Database, w: ImTx, c: ConversationRow, members: Members): Promise<number> {
  if (c.type !== 'discussion') return MAX_GROUP_MEMBERS;
  const owner = [...members].find(([, r]) => r === 'owner')?.[0] ?? Number(c.created_by);
  return discussionCap(db, owner, w.t);
}

/** Adds people (checked active, not yet members) and tells everyone; returns the ids really added. */
export async function addMembersTx(db: Database, w: ImTx, c: ConversationRow, userIds: number[], by: Actor, field = 'userIds'): Promise<number[]> {
  const members = await membersOf(db, w, c.id);
  const fresh = [...new Set(userIds)].filter((u) => !members.has(u)).sort((a, b) => a - b);
  if (fresh.length === 0) return [];
  await assertActiveUsers(db, fresh, () => field, w.t);
  const cap = await capOf(db, w, c, members);
  if (members.size + fresh.length > cap) {
    throw qiaoError('QIAO_VALIDATION', `conversation ${c.id} would have ${members.size + fresh.length} members; it may have at most ${cap}`, { field, limit: cap });
  }
  await insertMembers(db, w, c.id, new Map(fresh.map((u) => [u, 'member' as Role])));
  await announceChange(db, w, c.id, { change: 'membersAdded', type: c.type, name: c.name, userIds: fresh, by });
  return fresh;
}

/** Removes people and tells everyone, the removed included; returns the ids really removed. */
export async function removeMembersTx(db: Database, w: ImTx, c: ConversationRow, userIds: number[], by: Actor, change = 'membersRemoved'): Promise<number[]> {
  const members = await membersOf(db, w, c.id);
  const gone = [...new Set(userIds)].filter((u) => members.has(u)).sort((a, b) => a - b);
  if (gone.length === 0) return [];
  for (const chunk of chunked(gone)) {
    await exec(db, `DELETE FROM conversation_members WHERE conversation_id = ? AND user_id IN ${inList(chunk.length)}`, [c.id, ...chunk], w.t);
  }
  await announceChange(db, w, c.id, { change, type: c.type, name: c.name, userIds: gone, by }, gone);
  return gone;
}

async function setRole(db: Database, w: ImTx, id: string, userId: number, role: Role): Promise<void> {
  await db.sequelize.query('UPDATE conversation_members SET role = ? WHERE conversation_id = ? AND user_id = ?', { replacements: [role, id, userId], transaction: w.t });
}

async function markDissolved(db: Database, w: ImTx, c: ConversationRow, by: Actor): Promise<void> {
  const now = new Date();
  await db.sequelize.query('UPDATE conversations SET dissolved_at = ?, updated_at = ? WHERE id = ?', { replacements: [now, now, c.id], transaction: w.t });
  await announceChange(db, w, c.id, { change: 'dissolved', type: c.type, name: c.name, by });
}

function cleanName(name: string, field = 'name'): string {
  const trimmed = name.trim();
  if (!trimmed) throw qiaoError('QIAO_VALIDATION', `${field} must not be empty`, { field });
  return trimmed;
}

// ---- what members do ----------------------------------------------------------------------------------

export async function renameConversation(db: Database, p: { userId: number; conversationId: string; name: string }): Promise<ImCommit<Conversation>> {
  const name = cleanName(p.name);
  return imWrite(db, async (w) => {
    const { conversation: c, role } = await memberAccess(db, p.conversationId, p.userId, 'userId', { t: w.t, write: true });
    notForSingle(c, 'a name');
    assertAllowed(permissionsOf(c), role, 'rename', p.userId, c.id);
    if (c.name !== name) {
      await db.sequelize.query('UPDATE conversations SET name = ?, updated_at = ? WHERE id = ?', { replacements: [name, new Date(), c.id], transaction: w.t });
      await announceChange(db, w, c.id, { change: 'renamed', type: c.type, name, by: { userId: p.userId } });
    }
    return (await getConversation(db, c.id, w.t))!;
  });
}

export async function inviteMembers(db: Database, p: { userId: number; conversationId: string; userIds: number[] }): Promise<ImCommit<{ added: number[] }>> {
  return imWrite(db, async (w) => {
    const { conversation: c, role } = await memberAccess(db, p.conversationId, p.userId, 'userId', { t: w.t, write: true });
    notForSingle(c, 'inviting');
    notForDepartment(c, 'inviting');
    assertAllowed(permissionsOf(c), role, 'invite', p.userId, c.id);
    return { added: await addMembersTx(db, w, c, p.userIds, { userId: p.userId }) };
  });
}

/**
 * Discussion groups: the owner removes. Fixed groups: the owner removes anyone, a group admin removes
 * plain members. Nobody removes themselves (that is leaving).
 */
export async function removeMembers(db: Database, p: { userId: number; conversationId: string; userIds: number[] }): Promise<ImCommit<{ removed: number[] }>> {
  return imWrite(db, async (w) => {
    const { conversation: c, role } = await memberAccess(db, p.conversationId, p.userId, 'userId', { t: w.t, write: true });
    notForSingle(c, 'removing members');
    notForDepartment(c, 'removing members');
    if (p.userIds.includes(p.userId)) throw qiaoError('QIAO_VALIDATION', `user ${p.userId} cannot remove themselves: leave the conversation instead`, { field: 'userIds' });
    const members = await membersOf(db, w, c.id);
    const mayRemove = (target: number) => role === 'owner' || (c.type === 'group' && role === 'admin' && members.get(target) === 'member');
    for (const [i, target] of p.userIds.entries()) {
      if (members.has(target) && !mayRemove(target)) {
        const who = c.type === 'discussion' ? 'only the owner of a discussion group removes members' : 'only the owner removes group admins, and admins remove plain members';
        throw qiaoError('QIAO_FORBIDDEN', `user ${p.userId} may not remove user ${target} from conversation ${c.id}: ${who}`, { field: `userIds[${i}]` });
      }
    }
    return { removed: await removeMembersTx(db, w, c, p.userIds, { userId: p.userId }) };
  });
}

/**
 * A discussion group's owner who leaves hands the group to the longest-standing member; the last one out
 * dissolves it. In a fixed group the owner transfers first, and members leave only where the group allows.
 */
export async function leaveConversation(db: Database, p: { userId: number; conversationId: string }): Promise<ImCommit<{ left: true; newOwner: number | null }>> {
  return imWrite(db, async (w) => {
    const { conversation: c, role } = await memberAccess(db, p.conversationId, p.userId, 'userId', { t: w.t, write: true });
    notForSingle(c, 'leaving');
    notForDepartment(c, 'leaving');
    const perms = permissionsOf(c)!;
    if (c.type === 'group') {
      if (!perms.leave) refuse(`members may not leave group ${c.id}: an admin removes them`);
      if (role === 'owner') refuse(`user ${p.userId} owns group ${c.id}: transfer ownership before leaving`, 'userId');
    }
    let newOwner: number | null = null;
    if (role === 'owner') {
      const [next] = await queryRows<{ user_id: number }>(
        db,
        `SELECT m.user_id FROM conversation_members m JOIN users u ON u.id = m.user_id
         WHERE m.conversation_id = ? AND m.user_id <> ? ORDER BY CASE WHEN u.status = 'active' THEN 0 ELSE 1 END, m.joined_at, m.user_id LIMIT 1`,
        [c.id, p.userId],
        w.t,
      );
      if (next) {
        newOwner = Number(next.user_id);
        await setRole(db, w, c.id, newOwner, 'owner');
      }
    }
    await removeMembersTx(db, w, c, [p.userId], { userId: p.userId }, 'left');
    if (newOwner !== null) await announceChange(db, w, c.id, { change: 'ownerChanged', type: c.type, name: c.name, owner: newOwner, by: { userId: p.userId } });
    const [{ n }] = await queryRows<{ n: number | string }>(db, 'SELECT COUNT(*) AS n FROM conversation_members WHERE conversation_id = ?', [c.id], w.t);
    if (Number(n) === 0) await markDissolved(db, w, c, { userId: p.userId });
    return { left: true, newOwner };
  });
}

export async function transferOwner(db: Database, p: { userId: number; conversationId: string; toUserId: number }): Promise<ImCommit<Conversation>> {
  return imWrite(db, async (w) => {
    const { conversation: c, role } = await memberAccess(db, p.conversationId, p.userId, 'userId', { t: w.t, write: true });
    notForSingle(c, 'an owner');
    if (role !== 'owner') refuse(`user ${p.userId} does not own conversation ${c.id} and cannot transfer it`, 'userId');
    if (p.toUserId === p.userId) throw qiaoError('QIAO_VALIDATION', `user ${p.userId} already owns conversation ${c.id}`, { field: 'toUserId' });
    await memberAccess(db, c.id, p.toUserId, 'toUserId', { t: w.t });
    // The old owner stays on as a group admin in fixed groups, as a plain member in discussions.
    await setRole(db, w, c.id, p.userId, c.type === 'discussion' ? 'member' : 'admin');
    await setRole(db, w, c.id, p.toUserId, 'owner');
    await announceChange(db, w, c.id, { change: 'ownerChanged', type: c.type, name: c.name, owner: p.toUserId, by: { userId: p.userId } });
    return (await getConversation(db, c.id, w.t))!;
  });
}

export async function dissolveConversation(db: Database, p: { userId: number; conversationId: string }): Promise<ImCommit<{ dissolved: true }>> {
  return imWrite(db, async (w) => {
    const { conversation: c, role } = await memberAccess(db, p.conversationId, p.userId, 'userId', { t: w.t, write: true });
    notForSingle(c, 'dissolving');
    if (c.type !== 'discussion') refuse(`conversation ${c.id} is a ${c.type === 'group' ? 'fixed' : 'department'} group: only an admin dissolves it`);
    if (role !== 'owner') refuse(`only the owner dissolves discussion group ${c.id}`, 'userId');
    await markDissolved(db, w, c, { userId: p.userId });
    return { dissolved: true };
  });
}

// ---- what admins do -----------------------------------------------------------------------------------

/** A group an admin manages: fixed or department groups, not yet dissolved. */
async function adminTarget(db: Database, w: ImTx, id: string, types: ConversationType[] = ['group', 'department']): Promise<ConversationRow> {
  const c = await loadConversationRow(db, id, w.t);
  if (!c || !types.includes(c.type)) {
    throw qiaoError('QIAO_CONVERSATION_NOT_FOUND', `there is no ${types.map((t) => (t === 'group' ? 'fixed' : t)).join(' or ')} group ${id}`, { field: 'id' });
  }
  if (c.dissolved_at !== null) throw qiaoError('QIAO_CONVERSATION_DISSOLVED', `group ${id} was dissolved on ${isoDate(c.dissolved_at)}`, { field: 'id' });
  return c;
}

function checkRoleIds(members: Members | Set<number>, ids: number[], field: string): void {
  ids.forEach((u, i) => {
    if (!members.has(u)) throw qiaoError('QIAO_VALIDATION', `user ${u} is not a member of the group`, { field: ids.length === 1 && field === 'owner' ? field : `${field}[${i}]` });
  });
}

export interface CreateGroupInput {
  name: string;
  /** Absent or empty: the group starts with nobody in it (members are added later). */
  members?: number[];
  owner?: number;
  admins?: number[];
  permissions?: Partial<GroupPermissions>;
}

/** Creates a fixed group (固定群): the admin names it, picks members, an optional owner and group admins. */
export async function createFixedGroup(db: Database, by: Actor, input: CreateGroupInput): Promise<ImCommit<Conversation>> {
  const name = cleanName(input.name);
  const members = new Set([...(input.members ?? []), ...(input.owner ? [input.owner] : []), ...(input.admins ?? [])]);
  if (members.size > MAX_GROUP_MEMBERS) throw qiaoError('QIAO_VALIDATION', `a group holds at most ${MAX_GROUP_MEMBERS} members, got ${members.size}`, { field: 'members' });
  const roles: Members = new Map([...members].sort((a, b) => a - b).map((u) => [u, 'member' as Role]));
  for (const a of input.admins ?? []) roles.set(a, 'admin');
  if (input.owner) roles.set(input.owner, 'owner');
  return imWrite(db, async (w) => {
    await assertActiveUsers(db, [...roles.keys()], (u) => (u === input.owner ? 'owner' : input.admins?.includes(u) ? 'admins' : 'members'), w.t);
    const id = newGroupId('g');
    await insertConversation(db, w, { id, type: 'group', name, createdBy: null, permissions: input.permissions ?? null });
    await insertMembers(db, w, id, roles);
    return announceCreated(db, w, id, by);
  });
}

export interface UpdateGroupInput {
  id: string;
  name?: string;
  permissions?: Partial<GroupPermissions>;
  /** Bytes of group space; null returns to the admin's default. */
  spaceQuota?: number | null;
}

export async function updateGroup(db: Database, by: Actor, input: UpdateGroupInput): Promise<ImCommit<Conversation>> {
  return imWrite(db, async (w) => {
    const c = await adminTarget(db, w, input.id);
    const sets: string[] = [];
    const values: unknown[] = [];
    const changed: Record<string, unknown> = {};
    if (input.name !== undefined && cleanName(input.name) !== c.name) {
      sets.push('name = ?');
      values.push(cleanName(input.name));
      changed.name = cleanName(input.name);
    }
    if (input.permissions !== undefined) {
      if (c.type === 'department' && (input.permissions.invite !== undefined || input.permissions.leave !== undefined)) {
        const field = input.permissions.invite !== undefined ? 'permissions.invite' : 'permissions.leave';
        throw qiaoError('QIAO_VALIDATION', `group ${c.id} is a department group: its membership follows the directory, so ${field} cannot be set`, { field });
      }
      const next = { ...(permissionsOf(c) ?? {}), ...input.permissions };
      sets.push(`permissions = ${jsonParam(db)}`);
      values.push(JSON.stringify(next));
      changed.permissions = next;
    }
    if (input.spaceQuota !== undefined) {
      sets.push('space_quota = ?');
      values.push(input.spaceQuota);
      changed.spaceQuota = input.spaceQuota;
    }
    if (sets.length) {
      await db.sequelize.query(`UPDATE conversations SET ${sets.join(', ')}, updated_at = ? WHERE id = ?`, { replacements: [...values, new Date(), c.id], transaction: w.t });
      await announceChange(db, w, c.id, { change: 'updated', type: c.type, name: (changed.name as string) ?? c.name, ...changed, by });
    }
    return (await getConversation(db, c.id, w.t))!;
  });
}

export async function adminAddMembers(db: Database, by: Actor, p: { id: string; userIds: number[] }): Promise<ImCommit<{ added: number[] }>> {
  return imWrite(db, async (w) => {
    const c = await adminTarget(db, w, p.id, ['group']);
    return { added: await addMembersTx(db, w, c, p.userIds, by) };
  });
}

export async function adminRemoveMembers(db: Database, by: Actor, p: { id: string; userIds: number[] }): Promise<ImCommit<{ removed: number[] }>> {
  return imWrite(db, async (w) => {
    const c = await adminTarget(db, w, p.id, ['group']);
    return { removed: await removeMembersTx(db, w, c, p.userIds, by) };
  });
}

/** Sets the owner (or none) and the group admins; everyone else becomes a plain member. */
export async function setGroupRoles(db: Database, by: Actor, p: { id: string; owner?: number | null; admins: number[] }): Promise<ImCommit<Conversation>> {
  return imWrite(db, async (w) => {
    const c = await adminTarget(db, w, p.id);
    const members = await membersOf(db, w, c.id);
    if (p.owner) checkRoleIds(members, [p.owner], 'owner');
    checkRoleIds(members, p.admins, 'admins');
    const currentOwner = [...members].find(([, r]) => r === 'owner')?.[0] ?? null;
    const owner = p.owner === undefined ? currentOwner : p.owner;
    const next: Members = new Map([...members.keys()].map((u) => [u, 'member' as Role]));
    for (const a of p.admins) next.set(a, 'admin');
    if (owner !== null) next.set(owner, 'owner');
    const changes = [...next].filter(([u, r]) => members.get(u) !== r);
    for (const [u, r] of changes) await setRole(db, w, c.id, u, r);
    if (changes.length) {
      await announceChange(db, w, c.id, { change: 'rolesChanged', type: c.type, name: c.name, owner, admins: [...p.admins].sort((a, b) => a - b), by });
    }
    return (await getConversation(db, c.id, w.t))!;
  });
}

/** Admins dissolve fixed and department groups, and discussion groups too when compliance asks for it. */
export async function adminDissolve(db: Database, by: Actor, p: { id: string }): Promise<ImCommit<{ dissolved: true }>> {
  return imWrite(db, async (w) => {
    const c = await adminTarget(db, w, p.id, ['group', 'department', 'discussion']);
    await markDissolved(db, w, c, by);
    return { dissolved: true };
  });
}

export interface GroupListing {
  id: string;
  type: ConversationType;
  name: string | null;
  memberCount: number;
  departmentId: number | null;
  dissolvedAt: string | null;
  createdAt: string;
}

export async function listGroups(db: Database, q: { type?: ConversationType; search?: string; includeDissolved?: boolean; page?: number; pageSize?: number }) {
  const where = [q.type ? 'c.type = ?' : "c.type IN ('group', 'department', 'discussion')"];
  const args: unknown[] = q.type ? [q.type] : [];
  if (!q.includeDissolved) where.push('c.dissolved_at IS NULL');
  if (q.search) {
    where.push("LOWER(c.name) LIKE ? ESCAPE '\\'");
    args.push(`%${q.search.toLowerCase().replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`);
  }
  const pageSize = q.pageSize ?? 50;
  const page = q.page ?? 1;
  const [{ n }] = await queryRows<{ n: number | string }>(db, `SELECT COUNT(*) AS n FROM conversations c WHERE ${where.join(' AND ')}`, args);
  const rows = await queryRows<{ id: string; type: ConversationType; name: string | null; department_id: number | null; dissolved_at: string | Date | null; created_at: string | Date; member_count: number | string }>(
    db,
    `SELECT c.id, c.type, c.name, c.department_id, c.dissolved_at, c.created_at,
            (SELECT COUNT(*) FROM conversation_members m WHERE m.conversation_id = c.id) AS member_count
     FROM conversations c WHERE ${where.join(' AND ')} ORDER BY c.created_at DESC, c.id LIMIT ? OFFSET ?`,
    [...args, pageSize, (page - 1) * pageSize],
  );
  const groups: GroupListing[] = rows.map((r) => ({
    id: r.id,
    type: r.type,
    name: r.name,
    memberCount: Number(r.member_count),
    departmentId: r.department_id === null ? null : Number(r.department_id),
    dissolvedAt: r.dissolved_at === null ? null : isoDate(r.dissolved_at),
    createdAt: isoDate(r.created_at),
  }));
  return { total: Number(n), page, pageSize, groups };
}

