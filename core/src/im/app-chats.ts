import { randomBytes } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { chunked, inList, jsonParam, queryRows } from '../db/sql.ts';
import { announceCreated, getConversation, insertConversation, insertMembers, type Conversation } from './conversations.ts';
import { searchText, typeDef, validateBody, type MessageBody, type MessageType } from './message-types/index.ts';
import { checkBroadcast, resolveAudience, type Audience } from './broadcasts.ts';
import type { StoredMessage } from './messages.ts';
import { fanOut } from './sync.ts';
import { imWrite, type ImTx } from './write.ts';

/**
 * A person's chat with an open-API app (seed 001 §3.5.9.4): one conversation per (app, person), whose only
 * member is the person, so it syncs, counts unread and searches like any 1:1 chat. What the person writes
 * is an ordinary send; the apps service follows `message.stored` for `a:` conversations and answers with
 * auto-replies or a callback to the app. What the app sends arrives here with `senderApp` set and sender 0.
 */

/** What a person may send to an app: what Youdu's app callbacks can carry. */
export const TO_APP_TYPES: readonly MessageType[] = ['text', 'image', 'file'];
/** What an app may send into the chat. */
export const FROM_APP_TYPES: readonly MessageType[] = ['text', 'link', 'card', 'image', 'file'];
/** People per transaction when an app writes to many: bounded lock time, still set-based enough. */
const CHUNK = 200;

const APP_ID = '[A-Za-z0-9_-]{1,50}';
export const APP_ID_PATTERN = new RegExp(`^${APP_ID}$`);
const APP_CHAT_ID = new RegExp(`^a:(${APP_ID}):(\\d{1,10})$`);

export function appConversationId(appId: string, userId: number): string {
  return `a:${appId}:${userId}`;
}

/** The app and person an `a:` conversation id names, or null for any other conversation. */
export function parseAppConversationId(id: string): { appId: string; userId: number } | null {
  const m = APP_CHAT_ID.exec(id);
  return m ? { appId: m[1], userId: Number(m[2]) } : null;
}

export interface AppRef {
  appId: string;
  /** Shown as the conversation's name. */
  name: string;
}

async function activeUsers(db: Database, w: ImTx, ids: number[]): Promise<Set<number>> {
  const rows = await queryRows<{ id: number }>(db, `SELECT id FROM users WHERE status = 'active' AND id IN ${inList(ids.length)}`, ids, w.t);
  return new Set(rows.map((r) => Number(r.id)));
}

/** Creates the chat when missing (announced to the person like any new conversation); keeps its name fresh. */
async function ensureChat(db: Database, w: ImTx, app: AppRef, userId: number): Promise<string> {
  const id = appConversationId(app.appId, userId);
  if (await insertConversation(db, w, { id, type: 'app', name: app.name, createdBy: null })) {
    await insertMembers(db, w, id, new Map([[userId, 'member']]));
    await announceCreated(db, w, id, { directory: true });
  } else {
    await db.sequelize.query('UPDATE conversations SET name = ? WHERE id = ? AND name <> ?', { replacements: [app.name, id, app.name], transaction: w.t });
  }
  return id;
}

/** Opens (creates if needed) the person's chat with the app. */
export async function openAppChat(db: Database, app: AppRef, userId: number): Promise<{ conversation: Conversation; wake: number[]; logged: Array<{ seq: number; topic: string }> }> {
  const { result, wake, logged } = await imWrite(db, async (w) => {
    if (!(await activeUsers(db, w, [userId])).has(userId)) throw qiaoError('QIAO_FORBIDDEN', `user ${userId} is not an active account`, { field: 'userId' });
    return getConversation(db, await ensureChat(db, w, app, userId), w.t);
  });
  return { conversation: result!, wake, logged };
}

export interface AppSendInput {
  app: AppRef;
  /** People, departments or everyone, as for broadcasts. */
  audience: Audience;
  type: MessageType;
  body: MessageBody;
}

export interface AppSendResult {
  /** One message per person who got it, in id order. */
  messages: Array<{ userId: number; messageId: number }>;
  wake: number[];
  logged: Array<{ seq: number; topic: string }>;
}

/**
 * An app's message to people: one message in each person's chat with the app, written in chunks of
 * people (a message to everyone is many small transactions, not one long lock). Unknown people and
 * departments are refused before anything is written; disabled and resigned people are left out.
 */
export async function sendAsApp(db: Database, input: AppSendInput): Promise<AppSendResult> {
  if (!FROM_APP_TYPES.includes(input.type)) {
    throw qiaoError('QIAO_VALIDATION', `an app sends ${FROM_APP_TYPES.join(', ')} messages, not "${input.type}"`, { field: 'type' });
  }
  validateBody(input.type, input.body);
  // Only files the app itself stored (owner 0, `storeAppFile`) may be attached: never somebody's upload.
  const fileIds = (typeDef(input.type)?.files?.(input.body, 'body') ?? []).map((f) => f.fileId);
  for (const fileId of fileIds) {
    const [f] = await queryRows<{ owner_id: number; purged_at: unknown }>(db, 'SELECT owner_id, purged_at FROM im_files WHERE id = ?', [fileId]);
    if (!f || Number(f.owner_id) !== 0 || f.purged_at !== null) throw qiaoError('QIAO_NOT_FOUND', `file ${fileId} is not a file of an app`, { field: 'body.fileId' });
  }
  checkBroadcast({ audience: input.audience, type: 'text', body: { text: '-' } });
  const ids = await resolveAudience(db, undefined, input.audience);
  const out: AppSendResult = { messages: [], wake: [], logged: [] };
  const json = JSON.stringify(input.body);
  const search = searchText(input.type, input.body);
  for (const part of chunked(ids, CHUNK)) {
    const commit = await imWrite(db, async (w) => {
      const active = await activeUsers(db, w, part);
      const sent: AppSendResult['messages'] = [];
      for (const userId of part) {
        if (!active.has(userId)) continue;
        const conversationId = await ensureChat(db, w, input.app, userId);
        const createdAt = new Date();
        // Apps have no client ids to retry with; a random one keeps the (sender, client id) index satisfied.
        const clientMsgId = `app:${randomBytes(12).toString('hex')}`;
        const [row] = await queryRows<{ id: number }>(
          db,
          `INSERT INTO messages (conversation_id, sender_id, sender_app, client_msg_id, type, body, created_at, receipt, search_text)
           VALUES (?, 0, ?, ?, ?, ${jsonParam(db)}, ?, ?, ?) RETURNING id`,
          [conversationId, input.app.appId, clientMsgId, input.type, json, createdAt, false, search],
          w.t,
        );
        const message: StoredMessage = {
          id: Number(row.id),
          conversationId,
          senderId: 0,
          senderApp: input.app.appId,
          clientMsgId,
          type: input.type,
          body: input.body,
          createdAt: createdAt.toISOString(),
        };
        for (const fileId of fileIds) {
          await db.sequelize.query('INSERT INTO im_file_links (file_id, conversation_id, created_at) VALUES (?, ?, ?) ON CONFLICT (file_id, conversation_id) DO NOTHING', {
            replacements: [fileId, conversationId, createdAt],
            transaction: w.t,
          });
        }
        await fanOut(db, w, [userId], { kind: 'message', conversationId, refId: message.id });
        w.events.push({ topic: 'message.stored', subject: conversationId, payload: message });
        sent.push({ userId, messageId: message.id });
      }
      return sent;
    });
    out.messages.push(...commit.result);
    out.wake.push(...commit.wake);
    out.logged.push(...commit.logged);
  }
  return out;
}
