import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { memberAccess } from './conversations.ts';
import { findMessage, loadMessages, type StoredMessage } from './messages.ts';
import { readSettings } from './settings.ts';
import { queryRows } from '../db/sql.ts';
import { fanOut } from './sync.ts';
import { imWrite, type ImCommit } from './write.ts';

export interface ReadResult {
  conversationId: string;
  lastReadId: number;
  /** False when the cursor was already there (a repeated or stale read). */
  changed: boolean;
}

/**
 * Moves a member's read cursor forward to `upTo` (never back; clamped to the newest message). The reader's
 * own devices get a `read` entry so they converge; so do the senders of the newly read messages whose read
 * state is visible (the admin forces it for all, or the sender asked for a receipt), to update "read by 5
 * of 8". Other members are not told: in a 5,000-member group that would be 5,000 entries per read.
 */
export async function markRead(db: Database, p: { userId: number; conversationId: string; upTo: number }): Promise<ImCommit<ReadResult>> {
  const forced = (await readSettings(db)).readReceiptsForced;
  return imWrite(db, async (w) => {
    await memberAccess(db, p.conversationId, p.userId, 'userId', { t: w.t });
    const [{ newest }] = await queryRows<{ newest: number | string | null }>(db, 'SELECT MAX(id) AS newest FROM messages WHERE conversation_id = ?', [p.conversationId], w.t);
    const [{ last_read_id }] = await queryRows<{ last_read_id: number | string }>(
      db,
      'SELECT last_read_id FROM conversation_members WHERE conversation_id = ? AND user_id = ?',
      [p.conversationId, p.userId],
      w.t,
    );
    const before = Number(last_read_id);
    const target = Math.min(p.upTo, Number(newest ?? 0));
    if (target <= before) return { conversationId: p.conversationId, lastReadId: before, changed: false };
    await db.sequelize.query('UPDATE conversation_members SET last_read_id = ? WHERE conversation_id = ? AND user_id = ?', {
      replacements: [target, p.conversationId, p.userId],
      transaction: w.t,
    });
    const senders = await queryRows<{ sender_id: number }>(
      db,
      `SELECT DISTINCT sender_id FROM messages WHERE conversation_id = ? AND id > ? AND id <= ? AND sender_id <> ? AND sender_id <> 0 AND recalled_at IS NULL${forced ? '' : ' AND receipt = ?'}`,
      forced ? [p.conversationId, before, target, p.userId] : [p.conversationId, before, target, p.userId, true],
      w.t,
    );
    const payload = { conversationId: p.conversationId, userId: p.userId, lastReadId: target };
    await fanOut(db, w, [p.userId, ...senders.map((s) => Number(s.sender_id))], { kind: 'read', conversationId: p.conversationId, payload });
    return { conversationId: p.conversationId, lastReadId: target, changed: true };
  });
}

export interface Receipt {
  messageId: number;
  conversationId: string;
  /** Members who can read it: everyone active in the conversation except the sender. */
  total: number;
  readCount: number;
  read: number[];
  unread: number[];
}

async function readers(db: Database, conversationId: string, senderId: number): Promise<Array<{ userId: number; lastReadId: number }>> {
  const rows = await queryRows<{ user_id: number; last_read_id: number | string }>(
    db,
    `SELECT m.user_id, m.last_read_id FROM conversation_members m JOIN users u ON u.id = m.user_id
     WHERE m.conversation_id = ? AND m.user_id <> ? AND u.status = 'active' ORDER BY m.user_id`,
    [conversationId, senderId],
  );
  return rows.map((r) => ({ userId: Number(r.user_id), lastReadId: Number(r.last_read_id) }));
}

function assertVisible(m: StoredMessage, userId: number, forced: boolean): void {
  if (m.senderId !== userId) throw qiaoError('QIAO_FORBIDDEN', `only the sender of message ${m.id} sees who read it`, { field: 'userId' });
  if (!forced && !m.receipt) {
    throw qiaoError('QIAO_FORBIDDEN', `message ${m.id} was sent without a read receipt, and the admin has not turned read state on for all messages`, { field: 'messageId' });
  }
}

/** Who has and who has not read one of your messages ("read by 5 of 8"). */
export async function receiptOf(db: Database, p: { userId: number; messageId: number }): Promise<Receipt> {
  const m = await findMessage(db, p.messageId);
  if (!m) throw qiaoError('QIAO_NOT_FOUND', `message ${p.messageId} does not exist`, { field: 'messageId' });
  await memberAccess(db, m.conversationId, p.userId, 'userId');
  assertVisible(m, p.userId, (await readSettings(db)).readReceiptsForced);
  const people = await readers(db, m.conversationId, m.senderId);
  const read = people.filter((r) => r.lastReadId >= m.id).map((r) => r.userId);
  const unread = people.filter((r) => r.lastReadId < m.id).map((r) => r.userId);
  return { messageId: m.id, conversationId: m.conversationId, total: people.length, readCount: read.length, read, unread };
}

/** Read counts of several of your messages in one conversation, for a chat window; others are skipped. */
export async function receiptCounts(db: Database, p: { userId: number; conversationId: string; messageIds: number[] }) {
  await memberAccess(db, p.conversationId, p.userId, 'userId');
  const forced = (await readSettings(db)).readReceiptsForced;
  const mine = (await loadMessages(db, p.messageIds)).filter((m) => m.conversationId === p.conversationId && m.senderId === p.userId && (forced || m.receipt));
  const people = await readers(db, p.conversationId, p.userId);
  return {
    receipts: mine
      .sort((a, b) => a.id - b.id)
      .map((m) => ({ messageId: m.id, total: people.length, readCount: people.filter((r) => r.lastReadId >= m.id).length })),
  };
}
