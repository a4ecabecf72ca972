import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeGbk } from './gbk.ts';

/** Reads a request body; past `limit` bytes the rest is drained and `null` returned (PHP's post_max_size). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** What every RTX SDK page answers with: HTML in code page 936, labelled gb2312. */
export function sendGbk(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const body = encodeGbk(text);
  res.writeHead(status, { 'content-type': 'text/html; charset=gb2312', 'content-length': String(body.length), ...headers });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) });
  res.end(body);
}

export function sendBytes(res: ServerResponse, status: number, contentType: string, body: Buffer): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(body.length) });
  res.end(body);
}

/** Parses a JSON request body into a plain object, or explains what is wrong with it. */
export async function readJsonObject(req: IncomingMessage, limit = 1 << 20): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; message: string }> {
  const body = await readBody(req, limit);
  if (body === null) return { ok: false, message: `body is larger than ${limit} bytes` };
  if (body.length === 0) return { ok: true, value: {} };
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) return { ok: false, message: 'body must be a JSON object' };
    return { ok: true, value: v as Record<string, unknown> };
  } catch (err) {
    return { ok: false, message: `body is not JSON: ${(err as Error).message}` };
  }
}
