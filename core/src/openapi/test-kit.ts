import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAuthApp, type AuthApp } from '../auth/test-kit.ts';
import type { App } from './app-store.ts';
import { aesKey, decrypt, encrypt } from './crypto.ts';

export const OPENAPI_SERVICES = ['system', 'eventlog', 'org', 'licence', 'auth', 'audit', 'im', 'apps', 'gateway'];

export interface OpenApiApp extends AuthApp {
  base: string;
  buin: number;
  appInfo(appId: string): Promise<App>;
  /** A Youdu-style client for one app, speaking the wire format directly (no SDK). */
  yd(appId: string): Promise<YdTestClient>;
}

export async function startOpenApi(url: string): Promise<OpenApiApp> {
  const app = await startAuthApp(url, { services: OPENAPI_SERVICES });
  const base = (await app.call<{ url: string }>('gateway.address')).url;
  const buin = (await app.call<{ company: { buin: number } }>('system.info')).company.buin;
  return Object.assign(app, {
    base,
    buin,
    appInfo: (appId: string) => app.admin<App>('apps.get', { appId }),
    async yd(appId: string) {
      const info = await app.admin<App>('apps.get', { appId });
      return new YdTestClient(base, buin, info.appId, info.encodingAesKey);
    },
  });
}

/** A real HTTP receiver for callbacks: records every request, fails the first `failFirst`, then acknowledges. */
export async function receiver(answer: (body: any, n: number) => { status: number; text: string }) {
  const hits: Array<{ query: URLSearchParams; body: any }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      hits.push({ query: new URL(req.url!, 'http://x').searchParams, body });
      const a = answer(body, hits.length);
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cb`, hits, close: () => new Promise<void>((r) => server.close(() => r())) };
}

export interface ChatMessage {
  id: number;
  senderId: number;
  senderApp?: string;
  type: string;
  body: Record<string, any>;
}

/** A person writes to an app the way a client does: open the chat, send into it. */
export async function writeToApp(app: AuthApp, appId: string, userId: number, text: string): Promise<ChatMessage> {
  const { id } = await app.call<{ id: string }>('apps.chat.open', { appId, userId });
  return app.call<ChatMessage>('im.send', { conversationId: id, senderId: userId, clientMsgId: `t-${Math.random().toString(36).slice(2)}`, type: 'text', body: { text } });
}

export async function chatWithApp(app: AuthApp, appId: string, userId: number): Promise<ChatMessage[]> {
  return (await app.call<{ messages: ChatMessage[] }>('im.messages.list', { conversationId: `a:${appId}:${userId}`, userId })).messages;
}

export interface YdAnswer {
  errcode: number;
  errmsg: string;
  encrypt?: string;
}

export class YdTestClient {
  token = '';
  readonly key: Buffer;
  readonly base: string;
  readonly buin: number;
  readonly appId: string;
  constructor(base: string, buin: number, appId: string, encodingAesKey: string) {
    this.base = base;
    this.buin = buin;
    this.appId = appId;
    this.key = aesKey(encodingAesKey);
  }

  seal(value: unknown): string {
    return encrypt(typeof value === 'string' || Buffer.isBuffer(value) ? value : JSON.stringify(value), this.key, this.appId);
  }

  open(value: string): Buffer {
    return decrypt(value, this.key, this.appId);
  }

  envelope(payload: unknown) {
    return { buin: this.buin, appId: this.appId, encrypt: this.seal(payload) };
  }

  async gettoken(stamp = Math.floor(Date.now() / 1000)): Promise<YdAnswer & { accessToken?: string; expireIn?: number }> {
    const r = await this.raw('POST', '/cgi/gettoken', { body: JSON.stringify(this.envelope(String(stamp))), contentType: 'application/json' });
    const a = JSON.parse(r.text) as YdAnswer;
    if (a.errcode !== 0) return a;
    const t = JSON.parse(this.open(a.encrypt!).toString('utf8'));
    this.token = t.accessToken;
    return { ...a, ...t };
  }

  async raw(method: string, path: string, opts: { body?: string | Buffer; contentType?: string | null; query?: Record<string, string>; token?: string | null } = {}) {
    const u = new URL(this.base + path);
    const token = opts.token === undefined ? this.token : opts.token;
    if (token) u.searchParams.set('accessToken', token);
    for (const [k, v] of Object.entries(opts.query ?? {})) u.searchParams.set(k, v);
    const headers: Record<string, string> = {};
    if (opts.contentType) headers['content-type'] = opts.contentType;
    const res = await fetch(u, { method, headers, body: opts.body as never });
    return { status: res.status, headers: res.headers, text: await res.text() };
  }

  /** POST an encrypted payload; answers the decrypted result (or the error envelope). */
  async post<T = any>(path: string, payload: unknown): Promise<YdAnswer & { data?: T }> {
    const r = await this.raw('POST', path, { body: JSON.stringify(this.envelope(payload)), contentType: 'application/json' });
    return this.answer<T>(r.text);
  }

  async get<T = any>(path: string, query: Record<string, string> = {}): Promise<YdAnswer & { data?: T }> {
    const r = await this.raw('GET', path, { query });
    return this.answer<T>(r.text);
  }

  answer<T>(text: string): YdAnswer & { data?: T } {
    const a = JSON.parse(text) as YdAnswer & { data?: T };
    if (a.errcode === 0 && a.encrypt) a.data = JSON.parse(this.open(a.encrypt).toString('utf8')) as T;
    return a;
  }

  /** Multipart upload the way the vendor SDKs do it: text fields and the encrypted file as base64 text. */
  async upload(path: string, meta: unknown, file: Buffer, query: Record<string, string> = {}) {
    const boundary = `----qiao${Date.now()}`;
    const part = (name: string, value: string, filename?: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n${filename ? 'Content-Type: text/plain\r\n' : ''}\r\n${value}\r\n`;
    const body = part('buin', String(this.buin)) + part('appId', this.appId) + part('encrypt', this.seal(meta)) + part('file', this.seal(file), 'file') + `--${boundary}--\r\n`;
    const r = await this.raw('POST', path, { body, contentType: `multipart/form-data; boundary=${boundary}`, query });
    return this.answer<{ mediaId: string }>(r.text);
  }
}
