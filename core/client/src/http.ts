import { QiaoApiError } from './errors.ts';

export type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
  query?: Query;
  /** JSON-encoded unless it is bytes. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer the Response itself (downloads) instead of its JSON. */
  raw?: boolean;
  signal?: AbortSignal;
}

export interface HttpOptions {
  baseUrl: string;
  token: () => string | null;
  fetch: typeof fetch;
  timeoutMs: number;
  /** Called when an answer carries the admin's wipe order (`X-Qiao-Wipe: 1`). */
  onWipe: () => void;
}

/** JSON over fetch with the bearer token, turning every refusal into a QiaoApiError. */
export class HttpClient {
  readonly #o: HttpOptions;

  constructor(options: HttpOptions) {
    this.#o = options;
  }

  url(path: string, query?: Query): string {
    const u = new URL(path, this.#o.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
    return u.toString();
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { ...opts.headers };
    const token = this.#o.token();
    if (token) headers.authorization = `Bearer ${token}`;
    let body: NonNullable<RequestInit['body']> | undefined;
    if (opts.body instanceof Uint8Array || opts.body instanceof ArrayBuffer || (typeof Blob !== 'undefined' && opts.body instanceof Blob)) {
      body = opts.body as NonNullable<RequestInit['body']>;
      headers['content-type'] ??= 'application/octet-stream';
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const timeout = AbortSignal.timeout(this.#o.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await this.#o.fetch(this.url(path, opts.query), { method, headers, body, signal });
    } catch (err) {
      const timedOut = timeout.aborted;
      throw new QiaoApiError(0, timedOut ? 'TIMEOUT' : 'NETWORK', `${method} ${path}: ${timedOut ? `no answer within ${this.#o.timeoutMs} ms` : ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`);
    }
    if (res.headers.get('x-qiao-wipe') === '1') this.#o.onWipe();
    if (res.ok && opts.raw) return res as T;
    const text = await res.text().catch(() => '');
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Not ours: a proxy's error page, say.
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
      throw new QiaoApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? `${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`, e?.field);
    }
    return json as T;
  }
}
