import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { keyOf, open, seal, sign } from './crypto.ts';

/** What an app's callback handler answers: `errcode` (0 = acknowledged), optionally a payload to seal. */
export interface CallbackAnswer {
  errcode: number;
  errmsg?: string;
  encrypt?: unknown;
}

export interface CallbackApp {
  appId: string;
  encodingAesKey: string;
  /** The callback token set for the app (signs every request). */
  token: string;
}

export interface CallbackServer {
  url: string;
  close(): Promise<void>;
}

/**
 * An HTTP server for one app's callbacks: checks `msg_signature` (SHA-1 of the sorted token, timestamp,
 * nonce and encrypt), opens `encrypt`, hands the message to `handle`, and answers in the envelope format.
 * A request that fails the signature is answered HTTP 403 and never reaches `handle`.
 */
export async function serveCallbacks(app: CallbackApp, handle: (message: Record<string, any>) => Promise<CallbackAnswer> | CallbackAnswer, opts: { host?: string; port?: number; path?: string } = {}): Promise<CallbackServer> {
  const key = keyOf(app.encodingAesKey);
  const path = opts.path ?? '/youdu/callback';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1024 * 1024) req.destroy();
      else chunks.push(c);
    });
    req.on('end', async () => {
      const reply = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      try {
        const url = new URL(req.url ?? '/', 'http://local');
        if (req.method !== 'POST' || url.pathname !== path) return reply(404, { errcode: 5, errmsg: 'not found' });
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { toBuin: number; toApp: string; encrypt: string };
        const q = url.searchParams;
        if (body.toApp !== app.appId || sign(app.token, q.get('timestamp') ?? '', q.get('nonce') ?? '', body.encrypt) !== q.get('msg_signature')) {
          return reply(403, { errcode: 4, errmsg: 'bad signature' });
        }
        const message = JSON.parse(open(body.encrypt, key, app.appId).toString('utf8')) as Record<string, any>;
        const answer = await handle(message);
        return reply(200, {
          errcode: answer.errcode,
          errmsg: answer.errmsg ?? (answer.errcode === 0 ? 'ok' : 'error'),
          ...(answer.encrypt !== undefined ? { encrypt: seal(JSON.stringify(answer.encrypt), key, app.appId) } : {}),
        });
      } catch (err) {
        return reply(200, { errcode: -1, errmsg: (err as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://${opts.host ?? '127.0.0.1'}:${port}${path}`, close: () => new Promise((r) => server.close(() => r())) };
}
