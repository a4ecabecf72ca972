import { randomBytes } from 'node:crypto';
import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { effectivePermissions, type GroupPermissions, type Role } from './permissions.ts';
import { MAX_GROUP_MEMBERS, readSettings } from './settings.ts';
import { bool, chunked, inList, isoDate, parseJson, queryRows } from '../db/sql.ts';
import { conversationRecipients, fanOut } from './sync.ts';
import { imWrite, type ImCommit, type ImTx } from './write.ts';

/**
 * single: 1:1 chat; discussion: 讨论组 (users'); group: 固定群 (admins'); department: 部门群 (the directory's);
 * app: a person's chat with an open-API app (im/app-chats.ts).
 */
export const CONVERSATION_TYPES = ['single', 'discussion', 'group', 'department', 'app'] as const;
export type ConversationType = (typeof CONVERSATION_TYPES)[number];
/** What users create themselves; groups are created by admins. */
export const USER_CONVERSATION_TYPES = ['single', 'discussion'] as const;

export interface ConversationMember {
  userId: number;
  role: Role;
}

export interface Announcement {
  title: string;
  text: string;
  messageId: number;
  by: number;
  at: string;
}

export interface Conversation {
  id: string;
  type: ConversationType;
  name: string | null;
  createdBy: number | null;
  createdAt: string;
  members: ConversationMember[];
  /** Who may do what; null for 1:1 chats. */
  permissions: GroupPermissions | null;
  announcement: Announcement | null;
  departmentId: number | null;
  includeSubDepartments: boolean;
  dissolvedAt: string | null;
}

/** Who made a change: a user, an admin (by account), or the directory (department groups). */
export type Actor = { userId: number } | { admin: string } | { directory: true };

export interface ConversationRow {
  id: string;
  type: ConversationType;
  name: string | null;
  created_by: number | null;
  created_at: string | Date;
  department_id: number | null;
  include_sub: unknown;
  permissions: unknown;
  announcement: unknown;
  space_quota: number | string | null;
  dissolved_at: string | Date | null;
}

const COLUMNS = 'id, type, name, created_by, created_at, department_id, include_sub, permissions, announcement, space_quota, dissolved_at';

export function permissionsOf(row: ConversationRow): GroupPermissions | null {
  return effectivePermissions(row.type, row.permissions === null || row.permissions === undefined ? null : parseJson<Partial<GroupPermissions>>(row.permissions));
}

export function toConversation(row: ConversationRow, members: ConversationMember[]): Conversation {
  return {
    id: row.id,
    type: row.type,
    name: row.name,
    createdBy: row.created_by === null ? null : Number(row.created_by),
    createdAt: isoDate(row.created_at),
    members,
    permissions: permissionsOf(row),
    announcement: row.announcement === null || row.announcement === undefined ? null : parseJson<Announcement>(row.announcement),
    departmentId: row.department_id === null ? null : Number(row.department_id),
    includeSubDepartments: bool(row.include_sub),
    dissolvedAt: row.dissolved_at === null ? null : isoDate(row.dissolved_at),
  };
}

export async function loadConversationRow(db: Database, id: string, t?: Transaction): Promise<ConversationRow | null> {
  const [row] = await queryRows<ConversationRow>(db, `SELECT ${COLUMNS} FROM conversations WHERE id = ?`, [id], t);
  return row ?? null;
}

export async function loadMembers(db: Database, id: string, t?: Transaction): Promise<ConversationMember[]> {
  const rows = await queryRows<{ user_id: number; role: Role }>(db, 'SELECT user_id, role FROM conversation_members WHERE conversation_id = ? ORDER BY user_id', [id], t);
  return rows.map((m) => ({ userId: Number(m.user_id), role: m.role }));
}

export async function getConversation(db: Database, id: string, t?: Transaction): Promise<Conversation | null> {
  const row = await loadConversationRow(db, id, t);
  return row ? toConversation(row, await loadMembers(db, id, t)) : null;
}

/** A 1:1 chat has one id per pair of users, so "open chat with X" always lands in the same conversation. */
export function singleConversationId(a: number, b: number): string {
  return `s:${Math.min(a, b)}:${Math.max(a, b)}`;
}

export function newGroupId(prefix: 'd' | 'g'): string {
  return `${prefix}:${randomBytes(10).toString('hex')}`;
}

/**
 * Throws unless every id is an existing active account. `fieldOf` names the param each id came from, so
 * the error points at the creator, a member list, or a single id.
 */
export async function assertActiveUsers(db: Database, ids: number[], fieldOf: (id: number) => string, t?: Transaction): Promise<void> {
  const found = new Map<number, string>();
  for (const chunk of chunked(ids)) {
    const rows = await queryRows<{ id: number; status: string }>(db, `SELECT id, status FROM users WHERE id IN ${inList(chunk.length)}`, chunk, t);
    for (const r of rows) found.set(Number(r.id), r.status);
  }
  for (const id of ids) {
    const field = fieldOf(id);
    if (!found.has(id)) throw qiaoError('QIAO_NOT_FOUND', `user ${id} does not exist`, { field, userId: id });
    if (found.get(id) !== 'active') throw qiaoError('QIAO_FORBIDDEN', `user ${id} is ${found.get(id)} and cannot join a conversation`, { field, userId: id });
  }
}

export interface CreateConversationInput {
  type: (typeof USER_CONVERSATION_TYPES)[number];
  members: number[];
  name?: string;
  createdBy: number;
}

/** Most members a discussion group of `ownerId` may have: the admin's cap, or the group maximum for the whitelist. */
export async function discussionCap(db: Database, ownerId: number, t?: Transaction): Promise<number> {
  const settings = await readSettings(db, t);
  return settings.discussion.whitelist.includes(ownerId) ? MAX_GROUP_MEMBERS : settings.discussion.memberCap;
}

/**
 * Creates a 1:1 chat or a discussion group. Creating a 1:1 chat that already exists returns it unchanged,
 * also when two creates race: the insert of the fixed id is a no-op for the loser. A new conversation is
 * logged as `conversation.created` and reaches every member's inbox in the same transaction.
 */
export async function createConversation(db: Database, input: CreateConversationInput): Promise<ImCommit<{ conversation: Conversation; created: boolean }>> {
  // The creator is always a member; ids are deduplicated so `[1, 2, 2]` is a 1:1 chat, not a group of three.
  const members = [...new Set([input.createdBy, ...input.members])].sort((a, b) => a - b);
  const name = input.name?.trim() || null;
  if (input.type === 'single') {
    if (members.length !== 2) throw qiaoError('QIAO_VALIDATION', `a single chat has exactly two different users, got ${members.length}`, { field: 'members' });
    if (name) throw qiaoError('QIAO_VALIDATION', 'a single chat has no name', { field: 'name' });
  } else {
    const cap = await discussionCap(db, input.createdBy);
    if (members.length > cap) {
      throw qiaoError('QIAO_VALIDATION', `a discussion group holds at most ${cap} members, got ${members.length}`, { field: 'members', limit: cap });
    }
  }
  const id = input.type === 'single' ? singleConversationId(members[0], members[1]) : newGroupId('d');
  const roles = new Map(members.map((u) => [u, (input.type === 'discussion' && u === input.createdBy ? 'owner' : 'member') as Role]));
  return imWrite(db, async (w) => {
    await assertActiveUsers(db, members, (u) => (u === input.createdBy ? 'createdBy' : 'members'), w.t);
    const inserted = await insertConversation(db, w, { id, type: input.type, name, createdBy: input.createdBy });
    if (!inserted) {
      const existing = await getConversation(db, id, w.t);
      if (!existing) throw qiaoError('QIAO_INTERNAL', `conversation ${id} vanished while being created`);
      return { conversation: existing, created: false };
    }
    await insertMembers(db, w, id, roles);
    return { conversation: await announceCreated(db, w, id, { userId: input.createdBy }), created: true };
  });
}

export interface NewConversation {
  id: string;
  type: ConversationType;
  name: string | null;
  createdBy: number | null;
  departmentId?: number | null;
  includeSub?: boolean;
  permissions?: Partial<GroupPermissions> | null;
}

/** Inserts the conversation row; false when the id exists already. */
export async function insertConversation(db: Database, w: ImTx, c: NewConversation): Promise<boolean> {
  const now = new Date();
  const inserted = await queryRows<{ id: string }>(
    db,
    `INSERT INTO conversations (id, type, name, created_by, department_id, include_sub, permissions, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ${db.dialect === 'postgres' ? '?::json' : '?'}, ?, ?)
     ON CONFLICT (id) DO NOTHING RETURNING id`,
    [c.id, c.type, c.name, c.createdBy, c.departmentId ?? null, c.includeSub ?? false, c.permissions ? JSON.stringify(c.permissions) : null, now, now],
    w.t,
  );
  return inserted.length > 0;
}

export async function insertMembers(db: Database, w: ImTx, conversationId: string, roles: Map<number, Role>): Promise<void> {
  const now = new Date();
  for (const chunk of chunked([...roles.entries()], 500)) {
    await db.sequelize.query(
      `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES ${chunk.map(() => '(?, ?, ?, ?)').join(', ')}
       ON CONFLICT (conversation_id, user_id) DO NOTHING`,
      { replacements: chunk.flatMap(([u, role]) => [conversationId, u, role, now]), transaction: w.t },
    );
  }
}

/** Logs a new conversation and tells its members; returns it as stored. */
export async function announceCreated(db: Database, w: ImTx, id: string, by: Actor): Promise<Conversation> {
  const conversation = (await getConversation(db, id, w.t))!;
  w.events.push({ topic: 'conversation.created', subject: id, payload: conversation });
  await fanOut(db, w, await conversationRecipients(db, w, id), {
    kind: 'conversation',
    conversationId: id,
    payload: { change: 'created', conversationId: id, type: conversation.type, name: conversation.name, by },
  });
  return conversation;
}

/**
 * Tells a conversation's members (and `alsoTell`, e.g. people just removed) about a change, and logs it
 * as `conversation.changed`. Payloads are small; clients reload the conversation when they need more.
 */
export async function announceChange(
  db: Database,
  w: ImTx,
  conversationId: string,
  change: Record<string, unknown> & { change: string; by: Actor },
  alsoTell: number[] = [],
): Promise<void> {
  const payload = { conversationId, ...change };
  w.events.push({ topic: 'conversation.changed', subject: conversationId, payload });
  const recipients = await conversationRecipients(db, w, conversationId);
  await fanOut(db, w, [...recipients, ...alsoTell], { kind: 'conversation', conversationId, payload });
}

export interface Access {
  conversation: ConversationRow;
  role: Role;
}

/**
 * Throws unless the conversation exists and `userId` is one of its members with an active account: a
 * disabled or resigned user loses access to every conversation at once, without touching membership.
 * `write` also refuses dissolved conversations (their history stays readable to former members).
 */
export async function memberAccess(db: Database, conversationId: string, userId: number, field: string, opts: { t?: Transaction; write?: boolean } = {}): Promise<Access> {
  const [row] = await queryRows<ConversationRow & { role: Role | null; status: string | null }>(
    db,
    `SELECT c.id, c.type, c.name, c.created_by, c.created_at, c.department_id, c.include_sub, c.permissions, c.announcement, c.space_quota,
            c.dissolved_at, m.role, u.status
     FROM conversations c
     LEFT JOIN conversation_members m ON m.conversation_id = c.id AND m.user_id = ?
     LEFT JOIN users u ON u.id = m.user_id
     WHERE c.id = ?`,
    [userId, conversationId],
    opts.t,
  );
  if (!row) throw qiaoError('QIAO_CONVERSATION_NOT_FOUND', `conversation ${conversationId} does not exist`, { field: 'conversationId' });
  if (!row.role) throw qiaoError('QIAO_NOT_A_MEMBER', `user ${userId} is not a member of conversation ${conversationId}`, { field });
  if (row.status !== 'active') {
    throw qiaoError('QIAO_NOT_A_MEMBER', `user ${userId} is ${row.status} and no longer has access to conversation ${conversationId}`, { field });
  }
  if (opts.write && row.dissolved_at !== null) {
    throw qiaoError('QIAO_CONVERSATION_DISSOLVED', `conversation ${conversationId} was dissolved on ${isoDate(row.dissolved_at)}`, { field: 'conversationId' });
  }
  const { role, status: _status, ...conversation } = row;
  return { conversation, role };
}

export interface ConversationSummary {
  id: string;
  type: ConversationType;
  name: string | null;
  role: Role;
  memberCount: number;
  lastMessageId: number;
  lastReadId: number;
  /** Messages from others after the read cursor, recalled ones not counted. */
  unread: number;
  dissolvedAt: string | null;
  announcement: Announcement | null;
}

/** A user's conversations, most recently active first: what a client's conversation list shows. */
export async function listConversations(db: Database, userId: number): Promise<ConversationSummary[]> {
  const rows = await queryRows<ConversationRow & { role: Role; last_read_id: number | string; member_count: number | string; last_message_id: number | string | null; unread: number | string }>(
    db,
    `SELECT c.id, c.type, c.name, c.created_by, c.created_at, c.department_id, c.include_sub, c.permissions, c.announcement, c.space_quota, c.dissolved_at,
            m.role, m.last_read_id,
            (SELECT COUNT(*) FROM conversation_members x WHERE x.conversation_id = c.id) AS member_count,
            (SELECT MAX(id) FROM messages y WHERE y.conversation_id = c.id) AS last_message_id,
            (SELECT COUNT(*) FROM messages z WHERE z.conversation_id = c.id AND z.id > m.last_read_id AND z.sender_id <> ? AND z.recalled_at IS NULL) AS unread
     FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id
     WHERE m.user_id = ?`,
    [userId, userId],
  );
  return rows
    .map((r) => {
      const c = toConversation(r, []);
      return {
        id: c.id,
        type: c.type,
        name: c.name,
        role: r.role,
        memberCount: Number(r.member_count),
        lastMessageId: Number(r.last_message_id ?? 0),
        lastReadId: Number(r.last_read_id),
        unread: Number(r.unread),
        dissolvedAt: c.dissolvedAt,
        announcement: c.announcement,
      };
    })
    .sort((a, b) => b.lastMessageId - a.lastMessageId || a.id.localeCompare(b.id));
}
