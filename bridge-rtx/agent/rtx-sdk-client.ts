import http from 'node:http';
import { decodeGbk, gbkQueryString, IP_LIMITED_TEXT } from '../emulator/index.ts';

/**
 * The agent's side of RTX's HTTP SDK (port 8012): GBK in, GBK out, success recognised by `操作成功` and
 * nothing else (RTX's error texts were never published, so they are logged, never parsed). A network error,
 * a 5xx or a timeout means RTX is not there and the call may be retried; an answer without `操作成功` is RTX
 * refusing this particular call.
 */

export interface SdkClientOptions {
  /** e.g. http://127.0.0.1:8012 */
  url: string;
  /** Source address for the calls (which address SDKProperty.xml must allow). */
  localAddress?: string;
  timeoutMs?: number;
}

export type SdkOutcome = { kind: 'ok'; text: string } | { kind: 'ip-limited'; text: string } | { kind: 'refused'; text: string };

export class RtxUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RtxUnavailable';
  }
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const SUCCESS = '操作成功';

export class RtxSdkClient {
  readonly url: string;
  readonly #localAddress: string | undefined;
  readonly #timeoutMs: number;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  constructor(opts: SdkClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.#localAddress = opts.localAddress;
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
  }

  /** Any request to the SDK, answered raw; throws RtxUnavailable when RTX does not answer (or answers 5xx). */
  request(method: string, target: string, body?: Buffer, contentType?: string): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {};
      if (body) {
        headers['content-type'] = contentType ?? 'application/x-www-form-urlencoded';
        headers['content-length'] = body.length;
      }
      const req = http.request(`${this.url}${target}`, { method, headers, agent: this.#agent, localAddress: this.#localAddress, timeout: this.#timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 500) reject(new RtxUnavailable(`RTX's HTTP SDK answered ${status}`));
          else resolve({ status, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on('error', (err) => reject(new RtxUnavailable(err.message)));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => reject(new RtxUnavailable(`${err.code ?? err.message} calling ${this.url}`)));
      if (body) req.write(body);
      req.end();
    });
  }

  /** A page that reports `操作成功` on success, called with a GBK-encoded form body. */
  async callPage(page: string, params: Record<string, string | number | undefined>): Promise<SdkOutcome> {
    // POST: long messages do not fit a URL; RTX's pages read POST when every GET field is empty.
    const answer = await this.request('POST', `/${page}`, Buffer.from(gbkQueryString(params), 'latin1'));
    const text = decodeGbk(answer.body);
    if (text.includes(IP_LIMITED_TEXT)) return { kind: 'ip-limited', text: IP_LIMITED_TEXT };
    if (answer.status === 200 && text.includes(SUCCESS)) return { kind: 'ok', text };
    return { kind: 'refused', text: text.replace(/<[^>]*>/g, '').trim().slice(0, 500) || `HTTP ${answer.status}` };
  }

  sendIm(p: { sender: string; pwd: string; receivers: string[]; msg: string; sessionid: string }): Promise<SdkOutcome> {
    return this.callPage('SendIM.cgi', { sender: p.sender, pwd: p.pwd, receivers: p.receivers.join(';'), msg: p.msg, sessionid: p.sessionid });
  }

  /** getstatus.php (GET only): 0 offline, 1 online, 2 away; null for an account RTX does not know. */
  async getStatus(username: string): Promise<number | null> {
    const answer = await this.request('GET', `/getstatus.php?${gbkQueryString({ username })}`);
    const text = decodeGbk(answer.body).trim();
    if (text.includes(IP_LIMITED_TEXT)) throw new RtxUnavailable(IP_LIMITED_TEXT);
    return /^[012]$/.test(text) ? Number(text) : null;
  }

  /** Login.php: whether RTX accepts this account and password. */
  async login(user: string, pwd: string): Promise<boolean> {
    const answer = await this.request('GET', `/Login.php?${gbkQueryString({ user, pwd })}`);
    const text = decodeGbk(answer.body).trim();
    if (text.includes(IP_LIMITED_TEXT)) throw new RtxUnavailable(IP_LIMITED_TEXT);
    return text === 'true';
  }

  close(): void {
    this.#agent.destroy();
  }
}
