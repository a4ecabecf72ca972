import { definePlugin, type PluginContext, type StoredMessage } from '@qiao/plugin-api';
import { findWord } from './match.ts';

export interface KeywordAlertSettings {
  keywords: string[];
  blocked: string[];
  caseSensitive: boolean;
  webhookUrl?: string;
}

interface Hit {
  message_id: number;
  conversation_id: string;
  sender_id: number;
  keyword: string;
  text: string;
  created_at: string;
}

async function postWebhook(url: string, hit: Omit<Hit, 'created_at'>): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'keyword-alert', ...hit }),
    signal: AbortSignal.timeout(5000),
  });
  // Not acknowledged: throw, and the host hands this message to us again later.
  if (!res.ok) throw new Error(`webhook answered ${res.status}`);
}

async function recordHit(ctx: PluginContext<KeywordAlertSettings>, message: StoredMessage, keyword: string): Promise<void> {
  const db = ctx.db!;
  const text = String(message.body.text ?? '');
  await db.execute(
    `INSERT INTO keyword_alert_hits (message_id, conversation_id, sender_id, keyword, text, created_at)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING`,
    [message.id, message.conversationId, message.senderId, keyword, text, new Date().toISOString()],
  );
  const hit = { message_id: message.id, conversation_id: message.conversationId, sender_id: message.senderId, keyword, text };
  if (ctx.settings.webhookUrl) await postWebhook(ctx.settings.webhookUrl, hit);
  await ctx.emit('keywordAlert.hit', hit);
}

export default definePlugin<KeywordAlertSettings>({
  services: (ctx) => [
    {
      name: 'keywordAlert',
      actions: {
        hits: {
          params: { limit: { type: 'number', integer: true, min: 1, max: 1000, optional: true, convert: true } },
          handler: (c) =>
            ctx.db!.query<Hit>('SELECT * FROM keyword_alert_hits ORDER BY message_id DESC LIMIT ?', [(c.params as { limit?: number }).limit ?? 100]),
        },
      },
    },
  ],
  hooks: {
    beforeMessageStored(message, ctx) {
      const word = findWord(String(message.body.text ?? ''), ctx.settings.blocked, ctx.settings.caseSensitive);
      return word ? { outcome: 'reject', reason: `the word "${word}" is not allowed here` } : { outcome: 'allow' };
    },
    async afterMessageStored(event, ctx) {
      const message = event.payload;
      const keyword = findWord(String(message.body?.text ?? ''), ctx.settings.keywords, ctx.settings.caseSensitive);
      if (keyword) await recordHit(ctx, message, keyword);
    },
  },
});
