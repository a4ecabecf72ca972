import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeGbk, IP_LIMITED_TEXT, SUCCESS_TEXT } from '../emulator/index.ts';
import { formParams, getOrPost, queryParams } from '../emulator/php-params.ts';
import type { InboundNotify } from '../plugin/link-protocol.ts';
import { readBody } from './feed-receiver.ts';
import { RtxUnavailable, type RawAnswer, type RtxSdkClient } from './rtx-sdk-client.ts';

/**
 * The agent's copy of RTX's HTTP SDK pages, for OA/ERP systems. RTX gives no way to see the notifications
 * (SendNotify.cgi and the department/group pages) that other systems push into it — the application filter
 * sees IMs only — so the agent offers the same pages on its own port: point the OA system at the agent
 * instead of at RTX (same page names, same GBK parameters, same answers). Each call goes on to RTX unchanged
 * and, once RTX accepted it, a copy goes to Qiao. While RTX is down the call is kept on disk for RTX, the copy
 * still goes to Qiao, and the caller gets RTX's success answer. `getstatus.php` answers 1 (online) for people
 * online in Qiao, so OA systems see Qiao presence too. Every other page is passed through unchanged.
 */

export interface QueuedSdkCall {
  method: string;
  target: string;
  /** base64 of the request body */
  body: string | null;
  contentType: string | null;
  page: string;
}

export interface SdkProxyDeps {
  sdk: RtxSdkClient;
  /** Extra caller addresses allowed besides loopback (RTX's SDKProperty.xml rule, applied by the agent). */
  allow: string[];
  qiaoOnline(uid: string): boolean;
  /** Journals the copy for Qiao; resolves once it is on disk. */
  relay(n: InboundNotify): Promise<void>;
  /** Journals a call for RTX to receive once it is back; resolves once it is on disk. */
  queueForRtx(call: QueuedSdkCall): Promise<void>;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

const NOTIFY_PAGES = {
  '/sendnotify.cgi': 'SendNotify.cgi',
  '/sendnotifybydepart.php': 'sendnotifybydepart.php',
  '/sendnotifybygroup.php': 'sendnotifybygroup.php',
} as const;

const SUCCESS_BYTES = encodeGbk('操作成功');
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function sendGbk(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=gb2312' }).end(encodeGbk(text));
}

function passAnswer(res: ServerResponse, a: RawAnswer): void {
  const headers: Record<string, string> = {};
  for (const h of ['content-type', 'location']) {
    const v = a.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  res.writeHead(a.status, headers).end(a.body);
}

function delayMs(raw: string): number {
  const n = Number.parseInt(raw.trim(), 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function splitNames(list: string): string[] {
  return list
    .split(/[,;]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** What a notification page was asked to do, read with the page's own GET-wins rule. */
export function readNotify(page: InboundNotify['page'], req: IncomingMessage, body: Buffer | null): InboundNotify {
  const get = queryParams(req.url ?? '/');
  const post = formParams(req.headers['content-type'], body);
  const base = { kind: 'notify' as const, id: randomUUID(), page, at: new Date().toISOString() };
  if (page === 'SendNotify.cgi') {
    const f = getOrPost(['receiver', 'msg', 'title', 'delaytime', 'okurl', 'errurl'], get, post);
    const r = f.receiver!.trim();
    const all = r === '' || r.toLowerCase() === 'all';
    return { ...base, receivers: all ? [] : splitNames(r), all, onlineOnly: false, title: f.title || '通知', msg: f.msg!, delayMs: delayMs(f.delaytime!) };
  }
  const field = page === 'sendnotifybydepart.php' ? 'receiverdepart' : 'receivergroup';
  const f = getOrPost([field, 'msg', 'title', 'online', 'delaytime', 'okurl', 'errurl'], get, post);
  const online = f.online!.trim();
  return {
    ...base,
    receivers: [],
    all: false,
    ...(page === 'sendnotifybydepart.php' ? { department: f.receiverdepart!.trim() } : { group: f.receivergroup!.trim() }),
    onlineOnly: online === '' || Number.parseInt(online, 10) !== 0,
    title: f.title || '通知',
    msg: f.msg!,
    delayMs: delayMs(f.delaytime!),
  };
}

export async function handleSdkProxy(deps: SdkProxyDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = req.url ?? '/';
  let pathname = target.split('?')[0]!;
  try {
    pathname = decodeURIComponent(pathname);
  } catch {
    // matched as written
  }
  const lower = pathname.toLowerCase();
  const body = await readBody(req, 8 * 1024 * 1024);
  const remote = req.socket.remoteAddress ?? '';
  if (!LOOPBACK.has(remote) && !deps.allow.includes(remote.replace(/^::ffff:/, ''))) {
    sendGbk(res, 200, IP_LIMITED_TEXT);
    return;
  }
  const contentType = typeof req.headers['content-type'] === 'string' ? req.headers['content-type'] : undefined;
  const method = req.method ?? 'GET';
  const page = NOTIFY_PAGES[lower as keyof typeof NOTIFY_PAGES];

  if (lower === '/getstatus.php') {
    const username = queryParams(target).get('username') ?? '';
    try {
      const a = await deps.sdk.request('GET', target);
      const rtxSays = a.body.toString('latin1').trim();
      if (rtxSays === '0' && deps.qiaoOnline(username)) return sendGbk(res, 200, '1');
      return passAnswer(res, a);
    } catch (err) {
      if (!(err instanceof RtxUnavailable)) throw err;
      if (deps.qiaoOnline(username)) return sendGbk(res, 200, '1');
      return sendGbk(res, 502, `RTX 服务器无法连接：${err.message}`);
    }
  }

  if (!page) {
    try {
      return passAnswer(res, await deps.sdk.request(method, target, body && body.length ? body : undefined, contentType));
    } catch (err) {
      if (!(err instanceof RtxUnavailable)) throw err;
      return sendGbk(res, 502, `RTX 服务器无法连接：${err.message}`);
    }
  }

  const notify = readNotify(page, req, body);
  let answer: RawAnswer;
  try {
    answer = await deps.sdk.request(method, target, body && body.length ? body : undefined, contentType);
  } catch (err) {
    if (!(err instanceof RtxUnavailable)) throw err;
    // RTX is down: keep the call for RTX, copy it to Qiao now, and answer as RTX would have.
    await deps.queueForRtx({ method, target, body: body && body.length ? body.toString('base64') : null, contentType: contentType ?? null, page });
    await deps.relay(notify);
    deps.log('warn', `${page}: RTX unreachable (${err.message}); kept for RTX and copied to Qiao`);
    return sendGbk(res, 200, SUCCESS_TEXT);
  }
  // Only what RTX accepted is copied: the caller sees RTX's own refusal and will fix or retry.
  if (answer.status === 200 && answer.body.includes(SUCCESS_BYTES)) await deps.relay(notify);
  passAnswer(res, answer);
}
