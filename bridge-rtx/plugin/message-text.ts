import { formatRtxLink, parseRtxLinks } from '../emulator/index.ts';

/**
 * Qiao message bodies as RTX text, and RTX text as Qiao bodies. RTX IMs are plain text with links written
 * `[文字|URL]`; anything RTX's HTTP SDK cannot carry (pictures, files, voice, polls) becomes a short note
 * pointing at Qiao, so an RTX user always knows a message was there.
 */

type Body = Record<string, unknown>;

const str = (v: unknown) => (typeof v === 'string' ? v : '');

function link(text: string, url: string): string {
  return formatRtxLink(text, url) ?? `${text} ${url}`;
}

export function bodyToRtxText(type: string, body: Body): string {
  switch (type) {
    case 'text':
      return str(body.text);
    case 'rich': {
      const segs = Array.isArray(body.segments) ? (body.segments as Body[]) : [];
      const parts = segs.map((s) => {
        if (s.type === 'text') return str(s.text);
        if (s.type === 'link') return link(str(s.text), str(s.url));
        if (s.type === 'lineBreak') return '\n';
        if (s.type === 'mentionAll') return '@所有人';
        if (s.type === 'mention') return '@';
        if (s.type === 'image') return '[图片，请在 Qiao 中查看]';
        return '';
      });
      return `${body.title ? `${str(body.title)}\n` : ''}${parts.join('')}`;
    }
    case 'link':
      return `${link(str(body.title), str(body.url))}${body.description ? `\n${str(body.description)}` : ''}`;
    case 'card': {
      const articles = Array.isArray(body.articles) ? (body.articles as Body[]) : [];
      return articles.map((a) => link(str(a.title), str(a.url))).join('\n');
    }
    case 'system':
    case 'announcement':
      return `${body.title ? `【${str(body.title)}】` : ''}${str(body.text)}`;
    case 'image':
      return '[图片，请在 Qiao 中查看]';
    case 'file':
      return `[文件：${str(body.name) || '附件'}，请在 Qiao 中查看]`;
    case 'voice':
      return '[语音，请在 Qiao 中查看]';
    case 'vote':
      return `[投票] ${str(body.question)}（请在 Qiao 中投票）`;
    case 'forward':
      return `[转发的聊天记录${body.title ? `：${str(body.title)}` : ''}，请在 Qiao 中查看]`;
    default:
      return `[${type} 消息，请在 Qiao 中查看]`;
  }
}

/** Qiao's text messages hold at most this many characters; longer RTX text arrives in parts. */
export const QIAO_TEXT_MAX = 5000;

/** An RTX text as one or more Qiao message bodies: `rich` when it has `[文字|URL]` links, else `text`. */
export function rtxTextToBodies(text: string): Array<{ type: 'text' | 'rich'; body: Body }> {
  const chars = [...text];
  const parts: string[] = [];
  for (let i = 0; i < chars.length || parts.length === 0; i += QIAO_TEXT_MAX) parts.push(chars.slice(i, i + QIAO_TEXT_MAX).join(''));
  return parts.map((part) => {
    const segs = parseRtxLinks(part);
    const links = segs.filter((s) => s.type === 'link');
    if (!links.length || !links.every((l) => l.type === 'link' && /^https?:\/\/\S+$/i.test(l.url) && l.text.trim() !== '')) {
      return { type: 'text' as const, body: { text: part.trim() === '' ? '(空消息)' : part } };
    }
    const segments = segs.filter((s) => s.type === 'link' || s.text !== '').map((s) => (s.type === 'link' ? { type: 'link', text: s.text, url: s.url } : { type: 'text', text: s.text }));
    return { type: 'rich' as const, body: { segments } };
  });
}

/** A notification's text: the `[文字|URL]` links pulled out as Qiao system-message links. */
export function notifyToSystemBody(title: string, msg: string): Body {
  const segs = parseRtxLinks(msg);
  const links = segs
    .filter((s): s is { type: 'link'; text: string; url: string } => s.type === 'link' && /^https?:\/\/\S+$/i.test(s.url) && s.text.trim() !== '')
    .slice(0, 20)
    .map((s) => ({ title: s.text, url: s.url }));
  const text = segs.map((s) => s.text).join('') || title || '通知';
  return { title: title.slice(0, 200), text: [...text].slice(0, QIAO_TEXT_MAX).join(''), ...(links.length ? { links } : {}) };
}
