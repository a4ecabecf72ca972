import { QiaoApiError } from './errors.ts';
import type { HttpClient } from './http.ts';
import type { BeginResult, FileInfo, FileKind, GroupSpace } from './types.ts';

export interface UploadOptions {
  name: string;
  kind: FileKind;
  mime?: string;
  conversationId?: string;
  space?: boolean;
  /** Bytes per PUT (default 4 MiB); a broken PUT costs at most this much again. */
  chunkBytes?: number;
  /** Broken PUTs retried (each time from where the server is) before giving up. */
  retries?: number;
  onProgress?: (received: number, size: number) => void;
}

export interface DownloadOptions {
  /** First byte wanted (default 0): a resumed download starts where the bytes you have end. */
  offset?: number;
  /** Last byte wanted, inclusive (default: the end). */
  end?: number;
  /** Broken transfers continued (with Range from the bytes received) before giving up. */
  retries?: number;
}

const hex = (bytes: ArrayBuffer) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');

async function bytesOf(data: Uint8Array | ArrayBuffer | Blob): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(await data.arrayBuffer());
}

/** Uploads (resumable, deduplicated by checksum) and downloads (resumable, ranged). */
export class FilesApi {
  readonly #http: HttpClient;

  constructor(http: HttpClient) {
    this.#http = http;
  }

  /** Begins (or resumes) an upload, sends what the server lacks, and completes it. */
  async upload(data: Uint8Array | ArrayBuffer | Blob, opts: UploadOptions): Promise<FileInfo> {
    const bytes = await bytesOf(data);
    const sha256 = hex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
    const begin = () =>
      this.#http.request<BeginResult>('POST', '/v1/files/uploads', {
        body: { name: opts.name, size: bytes.length, sha256, kind: opts.kind, mime: opts.mime, conversationId: opts.conversationId, space: opts.space },
      });
    let state = await begin();
    if (state.file) return state.file;
    const step = opts.chunkBytes ?? 4 * 1024 * 1024;
    let failures = 0;
    let received = state.received;
    while (received < bytes.length) {
      try {
        const r = await this.#http.request<{ received: number }>('PUT', `/v1/files/uploads/${state.uploadId}`, {
          query: { offset: received },
          body: bytes.subarray(received, Math.min(bytes.length, received + step)),
        });
        received = r.received;
        opts.onProgress?.(received, bytes.length);
      } catch (err) {
        const e = err as QiaoApiError;
        if (++failures > (opts.retries ?? 5) || !(e.transient || e.status === 409)) throw err;
        // Ask the server where it stands and go on from there.
        state = await begin();
        if (state.file) return state.file;
        received = state.received;
      }
    }
    return this.#http.request<FileInfo>('POST', `/v1/files/uploads/${state.uploadId}/complete`);
  }

  stat(fileId: string): Promise<FileInfo> {
    return this.#http.request('GET', `/v1/files/${encodeURIComponent(fileId)}`);
  }

  /** Downloads a file (or the range asked for), continuing with `Range` after a broken transfer. */
  async download(fileId: string, opts: DownloadOptions = {}): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let pos = opts.offset ?? 0;
    let etag: string | null = null;
    let total: number | null = null;
    for (let failures = 0; ; ) {
      const headers: Record<string, string> = {};
      if (pos > 0 || opts.end !== undefined) headers.range = `bytes=${pos}-${opts.end ?? ''}`;
      if (etag) headers['if-range'] = etag;
      try {
        const res = await this.#http.request<Response>('GET', `/v1/files/${encodeURIComponent(fileId)}/content`, { headers, raw: true });
        etag ??= res.headers.get('etag');
        if (res.status === 200 && pos > 0) {
          // The file changed under us (If-Range failed): start over.
          parts.length = 0;
          pos = 0;
        }
        const length = Number(res.headers.get('content-length') ?? NaN);
        total = pos + (Number.isFinite(length) ? length : 0);
        const reader = res.body!.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parts.push(value);
          pos += value.length;
        }
        if (!Number.isFinite(length) || pos >= total) break;
        throw new QiaoApiError(0, 'NETWORK', `download of ${fileId} ended at byte ${pos} of ${total}`);
      } catch (err) {
        const e = err as QiaoApiError;
        if (++failures > (opts.retries ?? 3) || (e instanceof QiaoApiError && !e.transient)) throw err;
      }
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  remove(fileId: string): Promise<{ fileId: string; removed: boolean }> {
    return this.#http.request('DELETE', `/v1/files/${encodeURIComponent(fileId)}`);
  }

  space(conversationId: string): Promise<GroupSpace> {
    return this.#http.request('GET', `/v1/conversations/${encodeURIComponent(conversationId)}/files`);
  }
}
