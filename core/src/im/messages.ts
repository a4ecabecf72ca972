import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { appendEvent, lockEventLog } from '../eventlog/event-log.ts';
import { assertMember } from './conversations.ts';
import { isoDate, jsonParam, parseJson, queryRows } from './sql.ts';

export const MAX_TEXT_LENGTH = 5000;

export type MessageBody = Record<string, unknown>;

/** A message before it is stored: what the client sent, and what `beforeMessageStored` hooks see. */
export interface PendingMessage {
  conversationId: string;
  senderId: number;
  clientMsgId: string;
  type: MessageType;
  body: MessageBody;
}

/** A committed message; `id` is its place in the global commit order. */
export interface StoredMessage extends PendingMessage {
  id: number;
  createdAt: string;
}

/** Each message type's body rules; throws QIAO_VALIDATION naming the field (`body.text`). */
type BodyValidator = (body: MessageBody, field: string) => void;

function onlyKeys(body: MessageBody, allowed: string[], field: string): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw qiaoError('QIAO_VALIDATION', `${field}.${key} is not a field of this message type`, { field: `${field}.${key}` });
  }
}

const BODY_VALIDATORS = {
  text: (body, field) => {
    onlyKeys(body, ['text'], field);
    const text = body.text;
    if (typeof text !== 'string') throw qiaoError('QIAO_VALIDATION', `${field}.text must be a string`, { field: `${field}.text` });
    if (text.trim() === '') throw qiaoError('QIAO_VALIDATION', `${field}.text must not be empty`, { field: `${field}.text` });
    // Counted in characters (code points), not UTF-16 units, so a limit means the same for Chinese and emoji.
    const length = [...text].length;
    if (length > MAX_TEXT_LENGTH) {
      throw qiaoError('QIAO_VALIDATION', `${field}.text is ${length} characters, the limit is ${MAX_TEXT_LENGTH}`, { field: `${field}.text`, limit: MAX_TEXT_LENGTH });
    }
  },
} satisfies Record<string, BodyValidator>;

export type MessageType = keyof typeof BODY_VALIDATORS;
export const MESSAGE_TYPES = Object.keys(BODY_VALIDATORS) as MessageType[];

export function validateBody(type: MessageType, body: unknown, field = 'body'): asserts body is MessageBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw qiaoError('QIAO_VALIDATION', `${field} must be an object`, { field });
  }
  const validate: BodyValidator | undefined = BODY_VALIDATORS[type];
  if (!validate) throw qiaoError('QIAO_VALIDATION', `message type "${type}" is not supported`, { field: 'type' });
  validate(body as MessageBody, field);
}

interface MessageRow {
  id: number;
  conversation_id: string;
  sender_id: number;
  client_msg_id: string;
  type: MessageType;
  body: unknown;
  created_at: string | Date;
}

const COLUMNS = 'id, conversation_id, sender_id, client_msg_id, type, body, created_at';

function toMessage(row: MessageRow): StoredMessage {
  return {
    id: Number(row.id),
    conversationId: row.conversation_id,
    senderId: Number(row.sender_id),
    clientMsgId: row.client_msg_id,
    type: row.type,
    body: parseJson<MessageBody>(row.body),
    createdAt: isoDate(row.created_at),
  };
}

export async function findByClientMsgId(db: Database, senderId: number, clientMsgId: string): Promise<StoredMessage | null> {
  const [row] = await queryRows<MessageRow>(db, `SELECT ${COLUMNS} FROM messages WHERE sender_id = ? AND client_msg_id = ?`, [senderId, clientMsgId]);
  return row ? toMessage(row) : null;
}

/** The result of a store: the message, and the log entry to announce when this call wrote it. */
export interface StoreResult {
  message: StoredMessage;
  logged: { seq: number; topic: string } | null;
}

/**
 * Stores a message and its `message.stored` log entry in one transaction. Membership is checked again
 * inside it, under the log lock, so a member removed while the hook ran cannot slip a message in.
 * When (sender, clientMsgId) is already taken, by an earlier send or a concurrent one, nothing is written
 * and the message that holds the id is returned: the unique index, not a prior read, decides.
 */
export async function storeMessage(db: Database, pending: PendingMessage): Promise<StoreResult> {
  const result = await db.transaction(async (t): Promise<StoreResult | null> => {
    await lockEventLog(db, t);
    await assertMember(db, pending.conversationId, pending.senderId, 'senderId', t);
    const createdAt = new Date();
    const [row] = await queryRows<{ id: number }>(
      db,
      `INSERT INTO messages (conversation_id, sender_id, client_msg_id, type, body, created_at) VALUES (?, ?, ?, ?, ${jsonParam(db)}, ?)
       ON CONFLICT (sender_id, client_msg_id) DO NOTHING RETURNING id`,
      [pending.conversationId, pending.senderId, pending.clientMsgId, pending.type, JSON.stringify(pending.body), createdAt],
      t,
    );
    if (!row) return null;
    const message: StoredMessage = { id: Number(row.id), ...pending, createdAt: createdAt.toISOString() };
    const topic = 'message.stored';
    const seq = await appendEvent(db, t, topic, pending.conversationId, message);
    return { message, logged: { seq, topic } };
  });
  if (result) return result;
  const existing = await findByClientMsgId(db, pending.senderId, pending.clientMsgId);
  if (!existing) throw qiaoError('QIAO_INTERNAL', `message ${pending.clientMsgId} of user ${pending.senderId} conflicted but cannot be found`);
  return { message: existing, logged: null };
}

export interface ListMessagesInput {
  conversationId: string;
  userId: number;
  after?: number;
  limit?: number;
}

export async function listMessages(db: Database, input: ListMessagesInput): Promise<StoredMessage[]> {
  await assertMember(db, input.conversationId, input.userId, 'userId');
  const rows = await queryRows<MessageRow>(
    db,
    `SELECT ${COLUMNS} FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?`,
    [input.conversationId, input.after ?? 0, input.limit ?? 100],
  );
  return rows.map(toMessage);
}
