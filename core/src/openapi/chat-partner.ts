import type { App, AutoReplyRule, MenuItem } from './app-store.ts';

/**
 * Apps as chat partners (seed 001 §3.5.9.4, docs/api/c01_00004.md): a person writes to an app in their
 * chat with it (im/app-chats.ts); the app's auto-reply rules answer first (the admin's simple robot);
 * anything they do not answer goes to the app's callback URL as `{ fromUser, createTime, packageId,
 * msgType, text|image|file }` (app-chat-follower.ts), and the app answers through `/cgi/msg/send`, which
 * lands in the same chat. A custom-menu click is called back as an `event`.
 */
export interface Inbound {
  fromUser: string;
  msgType: 'text' | 'image' | 'file' | 'menu';
  content?: string;
  mediaId?: string;
  menuKey?: string;
}

export function autoReply(rules: AutoReplyRule[], text: string): string | null {
  const t = text.trim();
  for (const r of rules) {
    if (r.match === 'any') return r.reply;
    if (r.match === 'exact' && r.keyword !== undefined && t === r.keyword.trim()) return r.reply;
    if (r.match === 'contains' && r.keyword && t.includes(r.keyword)) return r.reply;
  }
  return null;
}

/** The callback message for what the person sent (packageId is added when it is queued). */
export function callbackMessage(m: Inbound, now: Date): Record<string, unknown> {
  const base = { fromUser: m.fromUser, createTime: Math.floor(now.getTime() / 1000), msgType: m.msgType === 'menu' ? 'event' : m.msgType };
  if (m.msgType === 'text') return { ...base, text: { content: m.content ?? '' } };
  if (m.msgType === 'image') return { ...base, image: { media_id: m.mediaId } };
  if (m.msgType === 'file') return { ...base, file: { media_id: m.mediaId } };
  return { ...base, event: { type: 'menu_click', key: m.menuKey } };
}

/** `$TOKEN$` in an app's home URL or menu URL, replaced by a fresh identify token. */
export function withToken(url: string, token: string): string {
  return url.replaceAll('$TOKEN$', encodeURIComponent(token));
}

/** The menu item a client names: click items by key, url items by key or, having none, by name. */
export function findMenuItem(menus: MenuItem[], key: string): MenuItem | null {
  for (const m of menus) {
    if (m.key === key || (m.type === 'url' && !m.key && m.name === key)) return m;
    const child = m.children ? findMenuItem(m.children, key) : null;
    if (child) return child;
  }
  return null;
}

export function canChat(app: App): boolean {
  return app.kind === 'app' && app.enabled;
}
