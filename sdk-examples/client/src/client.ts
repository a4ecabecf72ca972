import { keyOf, open, seal } from './crypto.ts';

/** What every open API answer carries; `errcode` 0 is success. */
export class YouduError extends Error {
  readonly errcode: number;
  constructor(errcode: number, errmsg: string, path: string) {
    super(`${path}: errcode ${errcode}: ${errmsg}`);
    this.name = 'YouduError';
    this.errcode = errcode;
  }
}

export interface AppCredentials {
  /** `http://host:7080` */
  baseUrl: string;
  buin: number;
  appId: string;
  encodingAesKey: string;
}

export interface Dept {
  id: number;
  name: string;
  parentId: number;
  sortId?: number;
  alias?: string;
}

export interface User {
  userId: string;
  name: string;
  gender: 0 | 1;
  mobile?: string;
  phone?: string;
  email?: string;
  dept: number[];
  deptDetail?: Array<{ deptId: number; position?: string; weight?: number; sortId?: number }>;
}

export interface UserInfo extends User {
  gid: number;
  enableState: -1 | 0 | 1;
}

export type Recipients = { toUser?: string[]; toDept?: number[] };
export type Link = { title: string; url: string; /** 1: append the viewer's SSO token */ action?: 0 | 1 };
export type SysMsgItem = { text: { content: string } } | { link: Link };

export interface IdentifiedUser {
  gid: number;
  account: string;
  chsName: string;
  gender: number;
  mobile: string;
  phone: string;
  email: string;
}

/**
 * A small typed client for the Youdu-compatible open API that Qiao serves (`/cgi/...`). One instance per
 * app: it fetches and renews the access token itself, seals every request and opens every answer.
 */
export class YouduClient {
  readonly creds: AppCredentials;
  readonly #key: Buffer;
  #token: { value: string; until: number } | null = null;

  constructor(creds: AppCredentials) {
    this.creds = creds;
    this.#key = keyOf(creds.encodingAesKey);
  }

  seal(value: unknown): string {
    return seal(typeof value === 'string' || Buffer.isBuffer(value) ? value : JSON.stringify(value), this.#key, this.creds.appId);
  }

  open(value: string): Buffer {
    return open(value, this.#key, this.creds.appId);
  }

  envelope(payload: unknown): { buin: number; appId: string; encrypt: string } {
    return { buin: this.creds.buin, appId: this.creds.appId, encrypt: this.seal(payload) };
  }

  async token(): Promise<string> {
    if (this.#token && this.#token.until > Date.now() + 60_000) return this.#token.value;
    const answer = await this.#send('/cgi/gettoken', { method: 'POST', body: JSON.stringify(this.envelope(String(Math.floor(Date.now() / 1000)))) }, false);
    const t = JSON.parse(this.open(answer.encrypt!).toString('utf8')) as { accessToken: string; expireIn: number };
    this.#token = { value: t.accessToken, until: Date.now() + t.expireIn * 1000 };
    return t.accessToken;
  }

  async #send(path: string, init: { method: string; body?: string; headers?: Record<string, string> }, withToken = true, query: Record<string, string | number> = {}) {
    const url = new URL(path, this.creds.baseUrl);
    if (withToken) url.searchParams.set('accessToken', await this.token());
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
    const res = await fetch(url, { method: init.method, body: init.body, headers: { 'content-type': 'application/json', ...init.headers } });
    if (res.status !== 200) throw new YouduError(-1, `HTTP ${res.status}`, path);
    const raw = { headers: res.headers, text: await res.text() };
    let answer: { errcode: number; errmsg: string; encrypt?: string };
    try {
      answer = JSON.parse(raw.text);
    } catch {
      return { errcode: 0, errmsg: 'ok', raw };
    }
    if (answer.errcode !== 0) throw new YouduError(answer.errcode, answer.errmsg, path);
    return { ...answer, raw };
  }

  /** POSTs an encrypted payload and answers the decrypted result (null when the answer carries none). */
  async post<T = unknown>(path: string, payload: unknown): Promise<T | null> {
    const a = await this.#send(path, { method: 'POST', body: JSON.stringify(this.envelope(payload)) });
    return a.encrypt ? (JSON.parse(this.open(a.encrypt).toString('utf8')) as T) : null;
  }

  async get<T = unknown>(path: string, query: Record<string, string | number> = {}): Promise<T | null> {
    const a = await this.#send(path, { method: 'GET' }, true, query);
    return a.encrypt ? (JSON.parse(this.open(a.encrypt).toString('utf8')) as T) : null;
  }

  // ---- messages -----------------------------------------------------------------------------------------
  async sendMessage(to: Recipients, msgType: string, body: unknown): Promise<void> {
    await this.post('/cgi/msg/send', { toUser: (to.toUser ?? []).join('|'), toDept: (to.toDept ?? []).join('|'), msgType, [msgType]: body });
  }
  sendText(to: Recipients, content: string) {
    return this.sendMessage(to, 'text', { content });
  }
  sendLink(to: Recipients, link: Link) {
    return this.sendMessage(to, 'link', link);
  }
  async sendSysMsg(to: Recipients | 'all', sysMsg: { title: string; popDuration?: number; msg: SysMsgItem[] }, onlyOnline = false): Promise<void> {
    const target = to === 'all' ? { toAll: { onlyOnline } } : { toUser: (to.toUser ?? []).join('|'), toDept: (to.toDept ?? []).join('|') };
    await this.post('/cgi/msg/send', { ...target, msgType: 'sysMsg', sysMsg });
  }

  // ---- media --------------------------------------------------------------------------------------------
  async uploadMedia(type: 'image' | 'file' | 'voice' | 'video', name: string, data: Buffer): Promise<string> {
    const boundary = `----youdu${Date.now().toString(16)}`;
    const part = (n: string, v: string, file = false) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${n}"${file ? '; filename="file"\r\nContent-Type: text/plain' : ''}\r\n\r\n${v}\r\n`;
    const body = part('buin', String(this.creds.buin)) + part('appId', this.creds.appId) + part('encrypt', this.seal({ type, name })) + part('file', this.seal(data), true) + `--${boundary}--\r\n`;
    const a = await this.#send('/cgi/media/upload', { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
    return (JSON.parse(this.open(a.encrypt!).toString('utf8')) as { mediaId: string }).mediaId;
  }

  async downloadMedia(mediaId: string): Promise<{ name: string; size: number; data: Buffer }> {
    const a = await this.#send('/cgi/media/get', { method: 'POST', body: JSON.stringify(this.envelope({ mediaId })) });
    const info = JSON.parse(this.open(a.raw.headers.get('encrypt')!).toString('utf8')) as { name: string; size: number };
    return { ...info, data: this.open(a.raw.text) };
  }

  // ---- org ----------------------------------------------------------------------------------------------
  createDept(d: Partial<Dept> & { name: string; parentId: number }) {
    return this.post<{ id: number }>('/cgi/dept/create', d).then((r) => r!.id);
  }
  updateDept(d: Partial<Dept> & { id: number }) {
    return this.post('/cgi/dept/update', d).then(() => undefined);
  }
  deleteDept(id: number) {
    return this.get('/cgi/dept/delete', { id }).then(() => undefined);
  }
  listDepts(id = 0) {
    return this.get<{ deptList: Dept[] }>('/cgi/dept/list', { id }).then((r) => r!.deptList);
  }
  createUser(u: User & { enableState?: -1 | 0 | 1 }) {
    return this.post('/cgi/user/create', u).then(() => undefined);
  }
  updateUser(u: Partial<User> & { userId: string }) {
    return this.post('/cgi/user/update', u).then(() => undefined);
  }
  deleteUser(userId: string) {
    return this.get('/cgi/user/delete', { userId }).then(() => undefined);
  }
  getUser(userId: string) {
    return this.get<UserInfo>('/cgi/user/get', { userId }).then((r) => r!);
  }
  listUsers(deptId: number) {
    return this.get<{ userList: UserInfo[] }>('/cgi/user/list', { deptId }).then((r) => r!.userList);
  }
  setAuth(userId: string, authType: 0 | 2) {
    return this.post('/cgi/user/setauth', { userId, authType }).then(() => undefined);
  }
  replaceAll(body: { deptList?: Dept[]; userList: Array<User & { authType?: 0 | 2 }>; callback?: { url: string; token: string } }) {
    return this.post<{ jobId: string }>('/cgi/org/replaceall', body).then((r) => r!.jobId);
  }
  jobResult(jobId: string) {
    return this.get<{ type: string; result: 1 | 2 | 3 | 4; desc: string }>('/cgi/getjobresult', { jobId }).then((r) => r!);
  }
}

/** `/cgi/identify?token=`: who a `$TOKEN$` belongs to (no app key needed). Null when the token is not valid. */
export async function identify(baseUrl: string, token: string): Promise<IdentifiedUser | null> {
  const url = new URL('/cgi/identify', baseUrl);
  url.searchParams.set('token', token);
  const r = (await (await fetch(url)).json()) as { status: { code: number; message: string }; userInfo?: IdentifiedUser };
  return r.status.code === 0 && r.userInfo ? r.userInfo : null;
}
