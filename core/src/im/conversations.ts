import { randomBytes } from 'node:crypto';
import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { appendEvent } from '../eventlog/event-log.ts';
import { isoDate, queryRows } from './sql.ts';

export const CONVERSATION_TYPES = ['single', 'discussion'] as const;
export type ConversationType = (typeof CONVERSATION_TYPES)[number];

/** Until the admin setting exists (messaging issue), discussion groups are capped at the product default. */
export const DISCUSSION_MEMBER_CAP = 200;

export interface ConversationMember {
  userId: number;
  role: 'owner' | 'member';
}

export interface Conversation {
  id: string;
  type: ConversationType;
  name: string | null;
  createdBy: number | null;
  createdAt: string;
  members: ConversationMember[];
}

export interface CreateConversationInput {
  type: ConversationType;
  members: number[];
  name?: string;
  createdBy: number;
}

/** The outcome of a create, and the log entry to announce when it made something new. */
export interface CreateConversationResult {
  conversation: Conversation;
  created: { seq: number; topic: string } | null;
}

/** A 1:1 chat has one id per pair of users, so "open chat with X" always lands in the same conversation. */
export function singleConversationId(a: number, b: number): string {
  return `s:${Math.min(a, b)}:${Math.max(a, b)}`;
}

function newDiscussionId(): string {
  return `d:${randomBytes(10).toString('hex')}`;
}

/** The creator is always a member; ids are deduplicated so `[1, 2, 2]` is a 1:1 chat, not a group of three. */
function memberSet(input: CreateConversationInput): number[] {
  return [...new Set([input.createdBy, ...input.members])].sort((a, b) => a - b);
}

async function assertActiveUsers(db: Database, ids: number[], createdBy: number, t: Transaction): Promise<void> {
  const placeholders = ids.map(() => '?').join(', ');
  const rows = await queryRows<{ id: number; status: string }>(db, `SELECT id, status FROM users WHERE id IN (${placeholders})`, ids, t);
  const found = new Map(rows.map((r) => [Number(r.id), r.status]));
  for (const id of ids) {
    const field = id === createdBy ? 'createdBy' : 'members';
    if (!found.has(id)) throw qiaoError('QIAO_NOT_FOUND', `user ${id} does not exist`, { field, userId: id });
    if (found.get(id) !== 'active') throw qiaoError('QIAO_FORBIDDEN', `user ${id} is ${found.get(id)} and cannot join a conversation`, { field, userId: id });
  }
}

export async function getConversation(db: Database, id: string, t?: Transaction): Promise<Conversation | null> {
  const [row] = await queryRows<{ id: string; type: ConversationType; name: string | null; created_by: number | null; created_at: string | Date }>(
    db,
    'SELECT id, type, name, created_by, created_at FROM conversations WHERE id = ?',
    [id],
    t,
  );
  if (!row) return null;
  const members = await queryRows<{ user_id: number; role: ConversationMember['role'] }>(
    db,
    'SELECT user_id, role FROM conversation_members WHERE conversation_id = ? ORDER BY user_id',
    [id],
    t,
  );
  return {
    id: row.id,
    type: row.type,
    name: row.name,
    createdBy: row.created_by === null ? null : Number(row.created_by),
    createdAt: isoDate(row.created_at),
    members: members.map((m) => ({ userId: Number(m.user_id), role: m.role })),
  };
}

/**
 * Creates a conversation. Creating a 1:1 chat that already exists returns it unchanged, also when two
 * creates race: the insert of the fixed id is a no-op for the loser. A new conversation is logged as
 * `conversation.created` in the same transaction, so readers of the log learn about its members.
 */
export async function createConversation(db: Database, input: CreateConversationInput): Promise<CreateConversationResult> {
  const members = memberSet(input);
  const name = input.name?.trim() || null;
  if (input.type === 'single') {
    if (members.length !== 2) {
      throw qiaoError('QIAO_VALIDATION', `a single chat has exactly two different users, got ${members.length}`, { field: 'members' });
    }
    if (name) throw qiaoError('QIAO_VALIDATION', 'a single chat has no name', { field: 'name' });
  } else if (members.length > DISCUSSION_MEMBER_CAP) {
    throw qiaoError('QIAO_VALIDATION', `a discussion group holds at most ${DISCUSSION_MEMBER_CAP} members, got ${members.length}`, { field: 'members' });
  }
  const id = input.type === 'single' ? singleConversationId(members[0], members[1]) : newDiscussionId();
  const roleOf = (userId: number): ConversationMember['role'] => (input.type === 'discussion' && userId === input.createdBy ? 'owner' : 'member');

  return db.transaction(async (t) => {
    await assertActiveUsers(db, members, input.createdBy, t);
    const now = new Date();
    const inserted = await queryRows<{ id: string }>(
      db,
      `INSERT INTO conversations (id, type, name, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [id, input.type, name, input.createdBy, now, now],
      t,
    );
    if (inserted.length === 0) {
      const existing = await getConversation(db, id, t);
      if (!existing) throw qiaoError('QIAO_INTERNAL', `conversation ${id} vanished while being created`);
      return { conversation: existing, created: null };
    }
    for (const userId of members) {
      await db.sequelize.query('INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)', {
        replacements: [id, userId, roleOf(userId), now],
        transaction: t,
      });
    }
    const conversation: Conversation = {
      id,
      type: input.type,
      name,
      createdBy: input.createdBy,
      createdAt: now.toISOString(),
      members: members.map((userId) => ({ userId, role: roleOf(userId) })),
    };
    const topic = 'conversation.created';
    const seq = await appendEvent(db, t, topic, id, conversation);
    return { conversation, created: { seq, topic } };
  });
}

/**
 * Throws unless the conversation exists and `userId` is one of its members with an active account: a
 * disabled or resigned user loses access to every conversation at once, without touching membership.
 */
export async function assertMember(db: Database, conversationId: string, userId: number, field: string, t?: Transaction): Promise<void> {
  const [conv] = await queryRows<{ id: string }>(db, 'SELECT id FROM conversations WHERE id = ?', [conversationId], t);
  if (!conv) throw qiaoError('QIAO_CONVERSATION_NOT_FOUND', `conversation ${conversationId} does not exist`, { field: 'conversationId' });
  const [member] = await queryRows<{ status: string }>(
    db,
    'SELECT u.status FROM conversation_members m JOIN users u ON u.id = m.user_id WHERE m.conversation_id = ? AND m.user_id = ?',
    [conversationId, userId],
    t,
  );
  if (!member) throw qiaoError('QIAO_NOT_A_MEMBER', `user ${userId} is not a member of conversation ${conversationId}`, { field });
  if (member.status !== 'active') {
    throw qiaoError('QIAO_NOT_A_MEMBER', `user ${userId} is ${member.status} and no longer has access to conversation ${conversationId}`, { field });
  }
}
