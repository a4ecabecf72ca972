import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { memberAccess } from './conversations.ts';
import { searchText, type MessageBody, type MessageType } from './message-types/index.ts';
import { bool, chunked, inList, isoDate, jsonParam, parseJson, queryRows } from '../db/sql.ts';
import { conversationRecipients, fanOut } from './sync.ts';
import { imWrite } from './write.ts';

export { MAX_TEXT_LENGTH, MESSAGE_TYPES, validateBody, type MessageBody, type MessageType } from './message-types/index.ts';

/** A message before it is stored: what the client sent, and what `beforeMessageStored` hooks see. */
export interface PendingMessage {
  conversationId: string;
  senderId: number;
  clientMsgId: string;
  type: MessageType;
  body: MessageBody;
}

/**
 * A committed message; `id` is its place in the global commit order (the server sequence number a send is
 * acknowledged with). `receipt` is present when the sender asked for read receipts; `recalled` once it is
 * recalled, and the body is then empty for everybody.
 */
export interface StoredMessage extends PendingMessage {
  id: number;
  createdAt: string;
  receipt?: true;
  recalled?: { at: string; by: number };
  /** Set when an app sent it (into a person's chat with the app); `senderId` is then 0. */
  senderApp?: string;
}

export interface MessageRow {
  id: number | string;
  conversation_id: string;
  sender_id: number;
  client_msg_id: string;
  type: MessageType;
  body: unknown;
  created_at: string | Date;
  receipt: unknown;
  recalled_at: string | Date | null;
  recalled_by: number | null;
  sender_app: string | null;
}

export const MESSAGE_COLUMNS = 'id, conversation_id, sender_id, client_msg_id, type, body, created_at, receipt, recalled_at, recalled_by, sender_app';

export function toMessage(row: MessageRow): StoredMessage {
  const m: StoredMessage = {
    id: Number(row.id),
    conversationId: row.conversation_id,
    senderId: Number(row.sender_id),
    clientMsgId: row.client_msg_id,
    type: row.type,
    body: row.recalled_at === null ? parseJson<MessageBody>(row.body) : {},
    createdAt: isoDate(row.created_at),
  };
  if (bool(row.receipt)) m.receipt = true;
  if (row.recalled_at !== null) m.recalled = { at: isoDate(row.recalled_at), by: Number(row.recalled_by) };
  if (row.sender_app) m.senderApp = row.sender_app;
  return m;
}

export async function loadMessages(db: Database, ids: number[]): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for (const chunk of chunked([...new Set(ids)])) {
    const rows = await queryRows<MessageRow>(db, `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id IN ${inList(chunk.length)}`, chunk);
    out.push(...rows.map(toMessage));
  }
  return out;
}

export async function findMessage(db: Database, id: number): Promise<StoredMessage | null> {
  return (await loadMessages(db, [id]))[0] ?? null;
}

export async function findByClientMsgId(db: Database, senderId: number, clientMsgId: string): Promise<StoredMessage | null> {
  const [row] = await queryRows<MessageRow>(db, `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE sender_id = ? AND client_msg_id = ?`, [senderId, clientMsgId]);
  return row ? toMessage(row) : null;
}

export interface StoreOptions {
  /** The sender asks for read receipts on this message. */
  receipt?: boolean;
  /** Uploaded files the message carries: their links to the conversation let its members download them. */
  fileIds?: string[];
}

/** The result of a store: the message, the log entry when this call wrote it, and whose inboxes changed. */
export interface StoreResult {
  message: StoredMessage;
  logged: { seq: number; topic: string } | null;
  wake: number[];
}

/**
 * Stores a message, its inbox entries for every member (the sender's other devices included) and its
 * `message.stored` log entry in one transaction. Membership is checked again inside it, under the lock,
 * so a member removed while the hooks ran cannot slip a message in. When (sender, clientMsgId) is already
 * taken, by an earlier send or a concurrent one, nothing is written and the message that holds the id is
 * returned: the unique index, not a prior read, decides.
 */
export async function storeMessage(db: Database, pending: PendingMessage, opts: StoreOptions = {}): Promise<StoreResult> {
  const { result, logged, wake } = await imWrite(db, async (w): Promise<StoredMessage | null> => {
    await memberAccess(db, pending.conversationId, pending.senderId, 'senderId', { t: w.t, write: true });
    const createdAt = new Date();
    const [row] = await queryRows<{ id: number }>(
      db,
      `INSERT INTO messages (conversation_id, sender_id, client_msg_id, type, body, created_at, receipt, search_text)
       VALUES (?, ?, ?, ?, ${jsonParam(db)}, ?, ?, ?)
       ON CONFLICT (sender_id, client_msg_id) DO NOTHING RETURNING id`,
      [pending.conversationId, pending.senderId, pending.clientMsgId, pending.type, JSON.stringify(pending.body), createdAt, opts.receipt === true, searchText(pending.type, pending.body)],
      w.t,
    );
    if (!row) return null;
    const message: StoredMessage = { id: Number(row.id), ...pending, createdAt: createdAt.toISOString() };
    if (opts.receipt) message.receipt = true;
    const recipients = await conversationRecipients(db, w, pending.conversationId);
    await fanOut(db, w, recipients, { kind: 'message', conversationId: pending.conversationId, refId: message.id });
    // What you wrote you have read; no receipt entry is needed for that.
    await db.sequelize.query('UPDATE conversation_members SET last_read_id = ? WHERE conversation_id = ? AND user_id = ? AND last_read_id < ?', {
      replacements: [message.id, pending.conversationId, pending.senderId, message.id],
      transaction: w.t,
    });
    for (const fileId of new Set(opts.fileIds ?? [])) {
      await db.sequelize.query('INSERT INTO im_file_links (file_id, conversation_id, created_at) VALUES (?, ?, ?) ON CONFLICT (file_id, conversation_id) DO NOTHING', {
        replacements: [fileId, pending.conversationId, createdAt],
        transaction: w.t,
      });
    }
    if (pending.type === 'announcement') {
      const announcement = { title: pending.body.title, text: pending.body.text, messageId: message.id, by: pending.senderId, at: message.createdAt };
      await db.sequelize.query(`UPDATE conversations SET announcement = ${jsonParam(db)}, updated_at = ? WHERE id = ?`, {
        replacements: [JSON.stringify(announcement), createdAt, pending.conversationId],
        transaction: w.t,
      });
    }
    w.events.push({ topic: 'message.stored', subject: pending.conversationId, payload: message });
    return message;
  });
  if (result) return { message: result, logged: logged[0] ?? null, wake };
  const existing = await findByClientMsgId(db, pending.senderId, pending.clientMsgId);
  if (!existing) throw qiaoError('QIAO_INTERNAL', `message ${pending.clientMsgId} of user ${pending.senderId} conflicted but cannot be found`);
  return { message: existing, logged: null, wake: [] };
}

export interface ListMessagesInput {
  conversationId: string;
  userId: number;
  /** Messages after this id, oldest first (catching up). */
  after?: number;
  /** Messages before this id, the newest `limit` of them, still oldest first (scrolling back). */
  before?: number;
  limit?: number;
}

export async function listMessages(db: Database, input: ListMessagesInput): Promise<StoredMessage[]> {
  await memberAccess(db, input.conversationId, input.userId, 'userId');
  const limit = input.limit ?? 100;
  if (input.before !== undefined) {
    const rows = await queryRows<MessageRow>(
      db,
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND id < ? AND id > ? ORDER BY id DESC LIMIT ?`,
      [input.conversationId, input.before, input.after ?? 0, limit],
    );
    return rows.reverse().map(toMessage);
  }
  const rows = await queryRows<MessageRow>(
    db,
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?`,
    [input.conversationId, input.after ?? 0, limit],
  );
  return rows.map(toMessage);
}
