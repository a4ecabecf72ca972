import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { memberAccess } from './conversations.ts';
import { MESSAGE_COLUMNS, toMessage, type MessageRow, type StoredMessage } from './messages.ts';
import { isGroupAdmin, isPairChat } from './permissions.ts';
import { readSettings } from './settings.ts';
import { parseJson, queryRows } from '../db/sql.ts';
import { conversationRecipients, fanOut } from './sync.ts';
import { imWrite, type ImCommit } from './write.ts';

function describeWindow(seconds: number): string {
  if (seconds % 3600 === 0 && seconds >= 3600) return `${seconds / 3600} hour(s)`;
  if (seconds % 60 === 0 && seconds >= 60) return `${seconds / 60} minute(s)`;
  return `${seconds} second(s)`;
}

/**
 * Recalls a message (撤回): its sender, or the owner or an admin of its group, within the window the admin
 * set (default 2 minutes, up to 48 hours). The body is no longer served to anyone; every member gets a
 * `recall` entry, and the log gets `conversation.messageRecalled` (the audit trail keeps the original in
 * `message.stored`). Recalling an already recalled message answers the same again.
 */
export async function recallMessage(db: Database, p: { userId: number; messageId: number }): Promise<ImCommit<StoredMessage>> {
  const window = (await readSettings(db)).recallWindowSeconds;
  return imWrite(db, async (w) => {
    const [row] = await queryRows<MessageRow>(db, `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`, [p.messageId], w.t);
    if (!row) throw qiaoError('QIAO_NOT_FOUND', `message ${p.messageId} does not exist`, { field: 'messageId' });
    const message = toMessage(row);
    const { conversation, role } = await memberAccess(db, message.conversationId, p.userId, 'userId', { t: w.t, write: true });
    if (message.recalled) return message;
    const mayRecallOthers = !isPairChat(conversation.type) && isGroupAdmin(role);
    if (message.senderId !== p.userId && !mayRecallOthers) {
      throw qiaoError('QIAO_FORBIDDEN', `user ${p.userId} may not recall message ${message.id}: only its sender or a group admin may`, { field: 'userId' });
    }
    const now = new Date();
    const age = (now.getTime() - Date.parse(message.createdAt)) / 1000;
    if (age > window) {
      throw qiaoError(
        'QIAO_RECALL_WINDOW_CLOSED',
        `message ${message.id} was sent ${Math.floor(age)} seconds ago; messages can be recalled only within ${describeWindow(window)} of sending`,
        { field: 'messageId', windowSeconds: window, ageSeconds: Math.floor(age) },
      );
    }
    await db.sequelize.query('UPDATE messages SET recalled_at = ?, recalled_by = ? WHERE id = ?', { replacements: [now, p.userId, message.id], transaction: w.t });
    // A recalled announcement stops being the group's announcement.
    const current = conversation.announcement === null ? null : parseJson<{ messageId?: number }>(conversation.announcement);
    if (current?.messageId === message.id) {
      await db.sequelize.query('UPDATE conversations SET announcement = NULL, updated_at = ? WHERE id = ?', { replacements: [now, conversation.id], transaction: w.t });
    }
    const payload = { conversationId: message.conversationId, messageId: message.id, senderId: message.senderId, recalledBy: p.userId, recalledAt: now.toISOString() };
    await fanOut(db, w, await conversationRecipients(db, w, message.conversationId), { kind: 'recall', conversationId: message.conversationId, refId: message.id, payload });
    w.events.push({ topic: 'conversation.messageRecalled', subject: message.conversationId, payload });
    return { ...message, body: {}, recalled: { at: payload.recalledAt, by: p.userId } };
  });
}
