import type { Context } from 'moleculer';
import type { Database } from '../db/database.ts';
import { findApp } from './app-store.ts';
import { isQueued } from './callbacks.ts';

/**
 * Message audit (会话消息回调, docs/api/c01_00010.md): while the built-in app sysMsgMonitor has a callback
 * URL, every stored conversation message is called back to it. Messages are read from the durable event
 * log (topic `message.stored`) with a committed cursor, so a restart or a lost wake-up loses nothing; the
 * cursor moves only after the callbacks are queued, and each message's packageId (`msg-<id>`) is queued
 * once. While no URL is set, the cursor follows the log's head: enabling audit starts from then on.
 */
const CONSUMER = 'apps.msg-monitor';
const STREAM = 'message.stored';
const BATCH = 200;

type Caller = Pick<Context, 'call'>;

interface StoredEvent {
  seq: number;
  topic: string;
  payload: { id: number; conversationId: string; senderId: number; type: string; body: Record<string, any>; createdAt: string };
}

function auditMessage(m: StoredEvent['payload'], sender: string, receiver: string | null): Record<string, unknown> {
  const base = {
    ...(receiver ? { receiver } : { sessionId: m.conversationId, version: 0 }),
    fromUser: sender,
    createTime: Math.floor(new Date(m.createdAt).getTime() / 1000),
    msgId: m.id,
  };
  switch (m.type) {
    case 'text':
      return { ...base, msgType: 'text', text: { content: String(m.body.text ?? '') } };
    case 'image':
      return { ...base, msgType: 'image', image: { media_id: m.body.fileId, name: m.body.name ?? '', size: m.body.size ?? 0 } };
    case 'file':
      return { ...base, msgType: 'file', file: { media_id: m.body.fileId, name: m.body.name ?? '', size: m.body.size ?? 0 } };
    case 'voice':
      return { ...base, msgType: 'audio', audio: { media_id: m.body.fileId, size: m.body.size ?? 0 } };
    default:
      return { ...base, msgType: m.type, [m.type]: m.body };
  }
}

export async function followAudit(ctx: Caller, db: Database, enqueue: (appId: string, message: Record<string, unknown>) => Promise<unknown>): Promise<number> {
  const monitor = await findApp(db, 'sysMsgMonitor');
  const { position } = await ctx.call<{ position: number }, object>('eventlog.cursor.get', { consumer: CONSUMER, stream: STREAM });
  if (!monitor?.enabled || !monitor.callbackUrl) {
    const { seq: at } = await ctx.call<{ seq: number }, object>('eventlog.head', {});
    if (at > position) await ctx.call('eventlog.cursor.commit', { consumer: CONSUMER, stream: STREAM, position: at });
    return 0;
  }
  let done = 0;
  let after = position;
  const names = new Map<number, string>();
  const account = async (id: number) => {
    if (!names.has(id)) names.set(id, (await ctx.call<{ account: string }, object>('org.users.get', { id }).catch(() => ({ account: String(id) }))).account);
    return names.get(id)!;
  };
  for (;;) {
    const page = await ctx.call<{ events: StoredEvent[]; last: number }, object>('eventlog.read', { after, limit: BATCH, topics: [STREAM] });
    for (const e of page.events) {
      const m = e.payload;
      const packageId = `msg-${m.id}`;
      if (await isQueued(db, 'sysMsgMonitor', packageId)) continue;
      const single = /^s:(\d+):(\d+)$/.exec(m.conversationId);
      const other = single ? (Number(single[1]) === m.senderId ? Number(single[2]) : Number(single[1])) : null;
      await enqueue('sysMsgMonitor', { ...auditMessage(m, await account(m.senderId), other === null ? null : await account(other)), packageId });
      done++;
    }
    if (page.last > after) await ctx.call('eventlog.cursor.commit', { consumer: CONSUMER, stream: STREAM, position: page.last });
    if (page.events.length < BATCH) return done;
    after = page.last;
  }
}
