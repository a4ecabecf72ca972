import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseRtxcData } from '../emulator/index.ts';
import type { InboundIm } from '../plugin/link-protocol.ts';

/**
 * The agent's end of the application-filter feed (rtx-host/rtx-filter-forwarder.wsf, or the emulator's feed):
 * one RTXCData document per POST. The answer is 2xx only once the message is safely journaled (or known to be
 * a repeat or our own echo); anything else makes the forwarder retry the same message, so nothing is lost
 * and order holds.
 */

export const FEED_MAX_BYTES = 4 * 1024 * 1024;

export function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooBig ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function bearerMatches(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true;
  const got = Buffer.from(req.headers.authorization ?? '');
  const want = Buffer.from(`Bearer ${token}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return '';
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Reads one forwarded IM; throws with the reason when the document is not RTXCData we can use. */
export function parseFeedPost(req: IncomingMessage, body: Buffer): InboundIm {
  const m = parseRtxcData(body.toString('utf8'));
  if (!m.imMessageId) throw new Error('the RTXCData has no im_message_id item');
  if (!m.key) throw new Error('the RTXCData has no Key item');
  const sender = header(req, 'x-rtx-sender') || m.initiator || '';
  if (!sender) throw new Error('the sender is unknown: no X-Rtx-Sender header and no Initiator item');
  const receivers = header(req, 'x-rtx-receivers')
    .split(/[;,]/)
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    kind: 'im',
    imMessageId: m.imMessageId,
    sender,
    receivers,
    key: m.key,
    mode: m.mode,
    ...(m.title ? { title: m.title } : {}),
    ...(m.disGroupId !== undefined ? { disGroupId: m.disGroupId } : {}),
    text: m.text,
    at: new Date().toISOString(),
  };
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
}
