import path from 'node:path';
import JSZip from 'jszip';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import type { CgiDeps, CgiRoute } from './cgi.ts';
import { findMedia, readMedia, storeMedia } from './cgi-media.ts';
import { cgiError } from './errcodes.ts';
import { readImFile } from './im-files.ts';
import { optString } from './params.ts';
import type { Caller } from './replace-all.ts';

/**
 * Chat messages handed to an app as a zip (docs/api/c01_00011.md, 自定义菜单): a person picks messages in
 * a conversation and a chat-window menu item of an app; the zip is stored for that app under an
 * unguessable `file_id`, which travels to the app's URL beside an SSO token; the app downloads it with
 * `/cgi/session/msg/download.zip`, the bytes sealed with its key.
 *
 * The zip holds `chat.json` (ChatMsgList: SessionId, Sender "name (account)", Content as base64 JSON,
 * MsgId, SendTime in ms; CustomAttr: date_time, forwarder) and `file/` with the pictures and files, named
 * `<id>.<ext>`. Text, formatted text, pictures and files are exported, as the page lists; other message
 * kinds and recalled messages are left out.
 */

export const SESSION_ZIP = 'session-zip';
const MAX_MESSAGES = 500;
const MAX_BYTES = 100 * 1024 * 1024;

interface Message {
  id: number;
  senderId: number;
  senderApp?: string;
  type: string;
  body: Record<string, any>;
  createdAt: string;
  recalled?: unknown;
}

interface Person {
  id: number;
  account: string;
  name: string;
}

interface Img {
  id: string;
  name: string;
  width: number;
  height: number;
  size: number;
  isGif: number;
}

const label = (p: Person | undefined, fallback: string) => (p ? `${p.name} (${p.account})` : fallback);
const pad = (n: number) => String(n).padStart(2, '0');
const stamp = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;

async function selected(ctx: Caller, userId: number, conversationId: string, ids: number[]): Promise<Message[]> {
  const wanted = new Set(ids);
  const max = Math.max(...ids);
  const out: Message[] = [];
  let after = Math.min(...ids) - 1;
  for (;;) {
    const r = await ctx.call<{ messages: Message[] }, object>('im.messages.list', { conversationId, userId, after, limit: 500 });
    for (const m of r.messages) if (wanted.has(m.id)) out.push(m);
    if (r.messages.length < 500 || r.messages[r.messages.length - 1].id >= max) return out;
    after = r.messages[r.messages.length - 1].id;
  }
}

/**
 * Builds and stores the zip of the messages `messageIds` of a conversation `userId` is in, for `appId`;
 * answers the `file_id` to hand to the app. For the action behind the chat window's app menu.
 */
export async function exportSession(
  ctx: Caller,
  store: { db: Database; mediaDir: string; now?: Date },
  input: { userId: number; conversationId: string; messageIds: number[]; appId: string },
): Promise<{ fileId: string; messages: number }> {
  if (!input.messageIds.length) throw qiaoError('QIAO_VALIDATION', 'messageIds must name at least one message', { field: 'messageIds' });
  if (input.messageIds.length > MAX_MESSAGES) throw qiaoError('QIAO_VALIDATION', `messageIds lists ${input.messageIds.length}; at most ${MAX_MESSAGES} can be exported at once`, { field: 'messageIds' });
  const messages = (await selected(ctx, input.userId, input.conversationId, input.messageIds)).filter((m) => !m.recalled);
  const missing = input.messageIds.filter((id) => !messages.some((m) => m.id === id));
  if (missing.length) throw qiaoError('QIAO_NOT_FOUND', `message ${missing[0]} is not in conversation ${input.conversationId} (or was recalled)`, { field: 'messageIds' });

  const mentioned = messages.flatMap((m) => (m.type === 'rich' ? (m.body.segments as Array<{ type: string; userId?: number }>).filter((s) => s.type === 'mention').map((s) => s.userId!) : []));
  const ids = [...new Set([input.userId, ...messages.map((m) => m.senderId).filter((x) => x > 0), ...mentioned])];
  const { users } = await ctx.call<{ users: Person[] }, object>('org.users.byIds', { ids });
  const people = new Map(users.map((u) => [u.id, u]));

  const zip = new JSZip();
  let bytes = 0;
  const files = new Map<string, Img>();
  const fetchFile = async (fileId: string): Promise<Img> => {
    const known = files.get(fileId);
    if (known) return known;
    const data = await readImFile(ctx, input.userId, fileId);
    const stat = await ctx.call<{ name?: string; size: number; mime?: string }, object>('im.files.stat', { userId: input.userId, fileId });
    const name = stat.name ?? fileId;
    bytes += data.length;
    if (bytes > MAX_BYTES) throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `the messages' files come to more than ${MAX_BYTES} bytes; export fewer at once`, { field: 'messageIds' });
    const id = `${fileId}-${data.length}`;
    zip.file(`file/${id}${path.extname(name).toLowerCase()}`, data);
    const img: Img = { id, name, width: 0, height: 0, size: data.length, isGif: stat.mime === 'image/gif' ? 1 : 0 };
    files.set(fileId, img);
    return img;
  };
  const picture = async (fileId: string, w?: number, h?: number) => ({ txt: '', em: '', img: { ...(await fetchFile(fileId)), width: w ?? 0, height: h ?? 0 } });

  const list: Array<{ SessionId: string; Sender: string; Content: string; MsgId: number; SendTime: number }> = [];
  for (const m of messages) {
    let content: Record<string, unknown> | null = null;
    if (m.type === 'text') content = { msgType: 0, text: [{ txt: String(m.body.text ?? '') }] };
    else if (m.type === 'image') content = { msgType: 1, text: [await picture(String(m.body.fileId), m.body.width, m.body.height)], name: '', size: 0, id: '' };
    else if (m.type === 'file') {
      const f = await fetchFile(String(m.body.fileId));
      content = { msgType: 3, name: f.name, size: f.size, id: f.id };
    } else if (m.type === 'rich') {
      const text = [];
      for (const s of m.body.segments as Array<Record<string, any>>) {
        if (s.type === 'text') text.push({ txt: String(s.text) });
        else if (s.type === 'link') text.push({ txt: s.text ? `${s.text} (${s.url})` : String(s.url) });
        else if (s.type === 'mention') text.push({ txt: `@${people.get(s.userId)?.name ?? s.userId}` });
        else if (s.type === 'mentionAll') text.push({ txt: '@所有人' });
        else if (s.type === 'lineBreak') text.push({ txt: '\n' });
        else if (s.type === 'image') text.push(await picture(String(s.fileId)));
      }
      content = { msgType: 1, text, name: '', size: 0, id: '' };
    }
    if (!content) continue;
    list.push({
      SessionId: input.conversationId,
      Sender: m.senderApp ? m.senderApp : label(people.get(m.senderId), String(m.senderId)),
      Content: Buffer.from(JSON.stringify(content)).toString('base64'),
      MsgId: m.id,
      SendTime: Date.parse(m.createdAt),
    });
  }
  const now = store.now ?? new Date();
  zip.file('chat.json', JSON.stringify({ ChatMsgList: list, CustomAttr: { date_time: stamp(now), forwarder: label(people.get(input.userId), String(input.userId)) } }, null, 2));
  const data = await zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE' });
  const media = await storeMedia({ db: store.db, deps: { mediaDir: store.mediaDir } as CgiDeps, now }, input.appId, SESSION_ZIP, `${input.conversationId.replace(/[^\w-]/g, '_')}.zip`, data);
  return { fileId: media.mediaId, messages: list.length };
}

export const sessionExportRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/session/msg/download.zip', '/cgi/session/msg/download'],
    methods: ['POST', 'GET'],
    apps: 'any',
    async handler(req) {
      const fileId = optString(req.params, 'file_id', 'ERRCODE_INVALID_REQUEST', 64) ?? optString(req.params, 'fileId', 'ERRCODE_INVALID_REQUEST', 64);
      if (!fileId) throw cgiError('ERRCODE_INVALID_REQUEST', 'file_id is missing');
      const media = await findMedia(req, fileId);
      // Another app's export, or any other media, is not there for this caller.
      if (!media || media.type !== SESSION_ZIP || media.appId !== req.app.appId) throw cgiError('ERRCODE_FILE_NOTEXIST', `file_id "${fileId.slice(0, 64)}" does not exist`);
      const { bytes } = await readMedia(req, fileId, 'file_id');
      return { raw: { headers: { 'content-type': 'application/octet-stream', 'content-disposition': `attachment; filename="${fileId}.zip"` }, body: req.seal(bytes) } };
    },
  },
];
