import type { Database } from '../db/database.ts';
import { memberAccess } from './conversations.ts';
import { MESSAGE_COLUMNS, toMessage, type MessageRow, type StoredMessage } from './messages.ts';
import { likePattern, queryRows } from '../db/sql.ts';
import { assertActiveUser } from './sync.ts';

export interface SearchInput {
  userId: number;
  keyword?: string;
  conversationId?: string;
  senderId?: number;
  /** ISO date-times bounding `createdAt`, inclusive. */
  from?: string;
  to?: string;
  /** Only messages older than this id (the next page). */
  before?: number;
  limit?: number;
}

/**
 * History search over the conversations the user is a member of now, newest first. The keyword is matched
 * with `LIKE … ESCAPE '\'` on a lower-cased copy of each message's text (`search_text`), which reads the
 * same on SQLite and PostgreSQL and treats `%`, `_` and `\` in the keyword literally. It scans the user's
 * conversations by (conversation_id, id); a full-text index (PostgreSQL tsvector, SQLite FTS5) is the
 * upgrade when histories grow to tens of millions of messages. Recalled messages are never found.
 */
export async function searchMessages(db: Database, q: SearchInput): Promise<{ messages: StoredMessage[]; nextBefore: number | null }> {
  await assertActiveUser(db, q.userId);
  if (q.conversationId) await memberAccess(db, q.conversationId, q.userId, 'userId');
  const where = ['m.recalled_at IS NULL', 'cm.user_id = ?'];
  const args: unknown[] = [q.userId];
  if (q.conversationId) {
    where.push('m.conversation_id = ?');
    args.push(q.conversationId);
  }
  if (q.senderId !== undefined) {
    where.push('m.sender_id = ?');
    args.push(q.senderId);
  }
  if (q.from) {
    where.push('m.created_at >= ?');
    args.push(new Date(q.from));
  }
  if (q.to) {
    where.push('m.created_at <= ?');
    args.push(new Date(q.to));
  }
  if (q.before !== undefined) {
    where.push('m.id < ?');
    args.push(q.before);
  }
  const keyword = q.keyword?.trim().toLowerCase();
  if (keyword) {
    where.push("m.search_text LIKE ? ESCAPE '\\'");
    args.push(likePattern(keyword));
  }
  const limit = q.limit ?? 50;
  const rows = await queryRows<MessageRow>(
    db,
    `SELECT ${MESSAGE_COLUMNS.split(', ').map((c) => `m.${c}`).join(', ')}
     FROM messages m JOIN conversation_members cm ON cm.conversation_id = m.conversation_id
     WHERE ${where.join(' AND ')} ORDER BY m.id DESC LIMIT ?`,
    [...args, limit + 1],
  );
  const messages = rows.slice(0, limit).map(toMessage);
  return { messages, nextBefore: rows.length > limit ? messages[messages.length - 1].id : null };
}
