import type { Context, ServiceBroker } from 'moleculer';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { TO_APP_TYPES } from './app-chats.ts';
import { memberAccess, permissionsOf, type Access } from './conversations.ts';
import { checkAttachments } from './files/files.ts';
import { runBeforeMessageStored } from './hooks.ts';
import type { ForwardedItem } from './message-types/forward.ts';
import { typeDef, validateBody, type MessageBody } from './message-types/index.ts';
import { findByClientMsgId, loadMessages, storeMessage, type PendingMessage, type StoredMessage, type StoreResult } from './messages.ts';
import { assertAllowed, isGroupAdmin, isPairChat } from './permissions.ts';
import { applySensitiveWords } from './sensitive-words.ts';
import { readSettings } from './settings.ts';
import { queryRows } from '../db/sql.ts';

export interface SendInput extends PendingMessage {
  /** Ask for read receipts on this message (回执消息). */
  receipt?: boolean;
}

/** A retry must name the conversation the first send went to; anything else is a client bug worth showing. */
function sameSend(stored: StoredMessage, pending: PendingMessage): StoredMessage {
  if (stored.conversationId !== pending.conversationId) {
    throw qiaoError('QIAO_CONFLICT', `clientMsgId "${pending.clientMsgId}" was already used by user ${pending.senderId} in conversation ${stored.conversationId}`, {
      field: 'clientMsgId',
    });
  }
  return stored;
}

async function checkMentions(db: Database, access: Access, input: SendInput): Promise<void> {
  const mentions = typeDef(input.type)?.mentions?.(input.body, 'body');
  if (!mentions) return;
  const { conversation, role } = access;
  if (mentions.all) {
    if (isPairChat(conversation.type)) throw qiaoError('QIAO_VALIDATION', '@all is for groups, not 1:1 chats', { field: 'body' });
    if (conversation.type !== 'discussion' && !isGroupAdmin(role)) {
      throw qiaoError('QIAO_FORBIDDEN', `only the owner and admins of group ${conversation.id} may mention everyone`, { field: 'body' });
    }
  }
  if (mentions.userIds.length === 0) return;
  const rows = await queryRows<{ user_id: number }>(db, 'SELECT user_id FROM conversation_members WHERE conversation_id = ?', [conversation.id]);
  const members = new Set(rows.map((r) => Number(r.user_id)));
  for (const m of mentions.userIds) {
    if (!members.has(m.userId)) throw qiaoError('QIAO_VALIDATION', `${m.field}: user ${m.userId} is not a member of conversation ${conversation.id}`, { field: m.field });
  }
}

/** Copies the forwarded messages into the body; each must exist, be readable by the sender and not be recalled. */
async function expandForward(db: Database, input: SendInput): Promise<MessageBody> {
  const ids = input.body.messageIds as number[];
  const found = new Map((await loadMessages(db, ids)).map((m) => [m.id, m]));
  const checked = new Set<string>();
  const items: ForwardedItem[] = [];
  for (const [i, id] of ids.entries()) {
    const field = `body.messageIds[${i}]`;
    const m = found.get(id);
    if (!m) throw qiaoError('QIAO_NOT_FOUND', `${field}: message ${id} does not exist`, { field });
    if (!checked.has(m.conversationId)) {
      try {
        await memberAccess(db, m.conversationId, input.senderId, field);
      } catch {
        // Not readable is answered like missing: a forward must not reveal what exists elsewhere.
        throw qiaoError('QIAO_NOT_FOUND', `${field}: message ${id} does not exist`, { field });
      }
      checked.add(m.conversationId);
    }
    if (m.recalled) throw qiaoError('QIAO_VALIDATION', `${field}: message ${id} was recalled and cannot be forwarded`, { field });
    items.push({ id: m.id, conversationId: m.conversationId, senderId: m.senderId, type: m.type, body: m.body, createdAt: m.createdAt });
  }
  return { ...input.body, items };
}

/**
 * The send pipeline: type rules, idempotency, access and permissions, mentions, forwarded messages,
 * attachments, the admin's sensitive words, then the plugins' `beforeMessageStored` hook, then one
 * transaction that stores the message and fills every member's inbox. Answered only after commit.
 */
export async function sendMessage(db: Database, broker: ServiceBroker, ctx: Context, input: SendInput): Promise<StoreResult> {
  const { conversationId, senderId, clientMsgId, type } = input;
  validateBody(type, input.body);
  const def = typeDef(type)!;
  if (def.sentBy === 'server') {
    throw qiaoError('QIAO_VALIDATION', `"${type}" messages are sent by the platform (im.broadcasts.send), not by users`, { field: 'type' });
  }
  // A retry of a committed send gets the stored message back, without running anything again.
  const earlier = await findByClientMsgId(db, senderId, clientMsgId);
  if (earlier) return { message: sameSend(earlier, input), logged: null, wake: [] };
  // Checked before the hook so plugins never see a message that cannot be stored; checked again inside the write.
  const access = await memberAccess(db, conversationId, senderId, 'senderId', { write: true });
  if (access.conversation.type === 'app' && !TO_APP_TYPES.includes(type)) {
    throw qiaoError('QIAO_VALIDATION', `an app takes ${TO_APP_TYPES.join(', ')} messages, not "${type}"`, { field: 'type' });
  }
  if (type === 'announcement') {
    if (isPairChat(access.conversation.type)) throw qiaoError('QIAO_VALIDATION', 'announcements are for groups, not 1:1 chats', { field: 'type' });
    assertAllowed(permissionsOf(access.conversation), access.role, 'announce', senderId, conversationId, 'senderId');
  }
  await checkMentions(db, access, input);
  let body = type === 'forward' ? await expandForward(db, input) : input.body;
  const refs = def.files?.(body, 'body') ?? [];
  const files = await checkAttachments(db, senderId, refs);
  if (typeof body.fileId === 'string' && files.has(body.fileId)) {
    const f = files.get(body.fileId)!;
    body = { ...body, name: f.name, size: f.size, sha256: f.sha256, ...(f.mime ? { mime: f.mime } : {}) };
  }
  const settings = await readSettings(db);
  body = applySensitiveWords(settings.sensitiveWords, type, body);
  const pending: PendingMessage = { conversationId, senderId, clientMsgId, type, body };
  const approved = await runBeforeMessageStored(broker, ctx, pending);
  const stored = await storeMessage(db, approved, { receipt: input.receipt, fileIds: [...files.keys()] });
  return { ...stored, message: sameSend(stored.message, pending) };
}
