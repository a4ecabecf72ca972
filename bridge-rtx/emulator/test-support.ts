import http from 'node:http';
import type { AddressInfo } from 'node:net';
import iconv from 'iconv-lite';
import { gbkQueryString } from './gbk.ts';
import type { RtxEmulator } from './emulator.ts';

/** Helpers the emulator's own tests share (and the agent's tests may reuse): real HTTP, nothing mocked. */

export interface SdkAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  raw: Buffer;
  /** The body decoded as GBK, as RTX's pages are. */
  text: string;
}

export interface SdkCall {
  method?: 'GET' | 'POST';
  /** Query string (already encoded) or params to encode as GBK. */
  query?: string | Record<string, string | number | undefined>;
  /** Form body (already encoded) or params to encode as GBK; sent as application/x-www-form-urlencoded. */
  form?: string | Buffer | Record<string, string | number | undefined>;
  /** Source address, e.g. 127.0.0.2 to look like a LAN host rather than the RTX server itself. */
  localAddress?: string;
}

export function rawRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; localAddress?: string } = {}): Promise<SdkAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, text: iconv.decode(raw, 'gbk') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Calls a page of the emulated HTTP SDK the way an OA system would. */
export function sdk(emu: RtxEmulator, page: string, call: SdkCall = {}): Promise<SdkAnswer> {
  const q = call.query === undefined ? '' : typeof call.query === 'string' ? call.query : gbkQueryString(call.query);
  const url = `${emu.url}/${page}${q ? `?${q}` : ''}`;
  if (call.form === undefined) return rawRequest(url, { method: call.method ?? 'GET', localAddress: call.localAddress });
  const body = typeof call.form === 'string' || Buffer.isBuffer(call.form) ? call.form : gbkQueryString(call.form);
  return rawRequest(url, {
    method: call.method ?? 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
    localAddress: call.localAddress,
  });
}

/** JSON call to the control API; throws with the answer when the status is not the expected one. */
export async function control<T = any>(emu: RtxEmulator, method: string, path: string, body?: unknown, expect = [200, 201]): Promise<T> {
  const res = await fetch(`${emu.controlUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!expect.includes(res.status)) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface ReceivedPost {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A stand-in for the agent's feed endpoint. `answer` decides the status per attempt (default 200);
 * only 2xx-answered posts land in `accepted`. `listenPort` re-opens a receiver where an earlier one was.
 */
export async function startFeedReceiver(answer: (attempt: number, post: ReceivedPost) => number = () => 200, listenPort = 0) {
  const accepted: ReceivedPost[] = [];
  const attempts: ReceivedPost[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const post = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      attempts.push(post);
      const status = answer(attempts.length, post);
      if (status >= 200 && status < 300) accepted.push(post);
      res.writeHead(status).end();
      for (const w of waiters.splice(0)) {
        if (accepted.length >= w.n) w.resolve();
        else waiters.push(w);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/rtx/feed`,
    port,
    accepted,
    attempts,
    /** Resolves once `n` posts have been accepted. */
    waitFor(n: number): Promise<void> {
      if (accepted.length >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Polls `check` until it holds; fails with `what` after `timeoutMs` (a safety net, not a speed assertion). */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
