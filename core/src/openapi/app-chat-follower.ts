import type { Context } from 'moleculer';
import type { Database } from '../db/database.ts';
import { describeError } from '../errors.ts';
import { parseAppConversationId } from '../im/app-chats.ts';
import { findApp } from './app-store.ts';
import { isQueued } from './callbacks.ts';
import { autoReply, callbackMessage, canChat } from './chat-partner.ts';
import { readImFile } from './im-files.ts';

/**
 * What people write to apps, answered. A person's message to an app is an ordinary im send into their
 * `a:<appId>:<userId>` chat; this follows the durable log (`message.stored`) with a committed cursor, like
 * message audit, so a restart or a lost wake-up loses nothing. For each message from a person: the app's
 * auto-reply rules answer first; otherwise it is called back to the app with packageId `chat-<message id>`
 * (queued once: the outbox is checked for that id). An app that no longer takes messages says so.
 *
 * The cursor moves after every message, so a crash repeats at most the message being handled: a callback
 * is never queued twice, an auto-reply could be sent twice.
 */
const CONSUMER = 'apps.chat-partner';
const STREAM = 'message.stored';
const BATCH = 200;

type Caller = Pick<Context, 'call'>;

interface StoredEvent {
  seq: number;
  payload: { id: number; conversationId: string; senderId: number; senderApp?: string; type: string; body: Record<string, any> };
}

export interface FollowDeps {
  enqueue: (appId: string, message: Record<string, unknown>) => Promise<string>;
  /** Keeps a person's file as the app's media; answers its media_id. */
  storeMedia: (appId: string, type: 'image' | 'file', name: string, bytes: Buffer) => Promise<string>;
  warn: (message: string) => void;
}

async function answer(ctx: Caller, db: Database, deps: FollowDeps, m: StoredEvent['payload'], appId: string, userId: number): Promise<void> {
  const app = await findApp(db, appId);
  const reply = (text: string) => ctx.call('im.apps.send', { appId, appName: app?.name ?? appId, audience: { userIds: [userId] }, type: 'text', body: { text } });
  if (!app || !canChat(app)) {
    await reply('该应用已停用，消息未送达。This app no longer takes messages.');
    return;
  }
  if (m.type === 'text') {
    const r = autoReply(app.autoReply, String(m.body.text ?? ''));
    if (r !== null) {
      await reply(r);
      return;
    }
  }
  if (!app.callbackUrl) return;
  const packageId = `chat-${m.id}`;
  if (await isQueued(db, appId, packageId)) return;
  const { account } = await ctx.call<{ account: string }, object>('org.users.get', { id: userId });
  let mediaId: string | undefined;
  if (m.type === 'image' || m.type === 'file') {
    mediaId = await deps.storeMedia(appId, m.type, String(m.body.name ?? 'file'), await readImFile(ctx, userId, String(m.body.fileId)));
  }
  const msgType = m.type as 'text' | 'image' | 'file';
  await deps.enqueue(appId, { ...callbackMessage({ fromUser: account, msgType, content: String(m.body.text ?? ''), mediaId }, new Date()), packageId });
}

/** Handles the messages people sent to apps since the last run; answers how many it handled. */
export async function followAppChats(ctx: Caller, db: Database, deps: FollowDeps): Promise<number> {
  const { position } = await ctx.call<{ position: number }, object>('eventlog.cursor.get', { consumer: CONSUMER, stream: STREAM });
  let after = position;
  let done = 0;
  for (;;) {
    const page = await ctx.call<{ events: StoredEvent[]; last: number }, object>('eventlog.read', { after, limit: BATCH, topics: [STREAM] });
    for (const e of page.events) {
      const m = e.payload;
      const chat = parseAppConversationId(m.conversationId);
      if (chat && !m.senderApp && m.senderId === chat.userId) {
        try {
          await answer(ctx, db, deps, m, chat.appId, m.senderId);
          done++;
        } catch (err) {
          // A refusal (the person left, the file was purged) will not change on retry: note it and go on.
          // Anything else (storage down) stops here and is retried from this message on the next wake-up.
          if (describeError(err).status >= 500) throw err;
          deps.warn(`message ${m.id} to app ${chat.appId} was not answered: ${(err as Error).message}`);
        }
        await ctx.call('eventlog.cursor.commit', { consumer: CONSUMER, stream: STREAM, position: e.seq });
      }
    }
    if (page.last > after) await ctx.call('eventlog.cursor.commit', { consumer: CONSUMER, stream: STREAM, position: page.last });
    if (page.events.length < BATCH) return done;
    after = page.last;
  }
}
