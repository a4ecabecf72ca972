import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The forwarding half of the RTX-host script, in-process: every IM the application filter copies
 * (`Tencent.RTX.IM`, AA_COPY) is POSTed to the agent, one at a time, in the order RTX saw them. A message
 * is only dropped from the queue after the agent answered 2xx; anything else (refused connection, timeout,
 * non-2xx) is retried, with growing pauses, before anything behind it is sent. See rtx-host/README.md for
 * the wire format; the real script additionally spools the queue to disk.
 */

export const FEED_CONTENT_TYPE = 'text/xml; charset=utf-8';

export interface FeedItem {
  /** Position in this forwarder's stream, from 1; gaps never happen, but restart numbering may. */
  seq: number;
  sender: string;
  receivers: string[];
  /** The RTXCData XML exactly as the filter's Message.Content holds it. */
  content: string;
  /** The im_message_id inside `content`, kept alongside for inspection. */
  imMessageId: string;
}

export interface FeedOptions {
  url?: string;
  token?: string;
  retryInitialMs?: number;
  retryMaxMs?: number;
  requestTimeoutMs?: number;
  /** How many forwarded items to remember for inspection. */
  keepRecent?: number;
}

export interface FeedStatus {
  url: string | null;
  pending: number;
  delivered: number;
  attempts: number;
  lastSeq: number;
  lastError: string | null;
  recent: FeedItem[];
}

export function feedHeaders(item: FeedItem, token?: string): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': FEED_CONTENT_TYPE,
    'x-rtx-seq': String(item.seq),
    'x-rtx-request-type': 'Tencent.RTX.IM',
    // Account names may be Chinese; header values are ASCII, so they travel percent-encoded UTF-8.
    'x-rtx-sender': encodeURIComponent(item.sender),
    'x-rtx-receivers': encodeURIComponent(item.receivers.join(';')),
  };
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

export class FilterFeed {
  private queue: FeedItem[] = [];
  private recent: FeedItem[] = [];
  private url: string | null;
  private token: string | undefined;
  private seq = 0;
  private delivered = 0;
  private attempts = 0;
  private lastError: string | null = null;
  private running = false;
  private stopped = false;
  private wake: (() => void) | null = null;
  private inflight: AbortController | null = null;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly requestTimeoutMs: number;
  private readonly keepRecent: number;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: FeedOptions = {}) {
    this.url = opts.url ?? null;
    this.token = opts.token;
    this.retryInitialMs = opts.retryInitialMs ?? 200;
    this.retryMaxMs = opts.retryMaxMs ?? 5000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.keepRecent = opts.keepRecent ?? 200;
  }

  /**
   * Called for every IM the RTX server handles. Without a forwarding URL nothing is queued: that is an RTX
   * server on which the host script is not running, so the filter sees nothing.
   */
  push(sender: string, receivers: string[], content: string, imMessageId: string): FeedItem | null {
    if (this.stopped || !this.url) return null;
    const item: FeedItem = { seq: ++this.seq, sender, receivers, content, imMessageId };
    this.queue.push(item);
    // Only starts an idle worker: a new message must not cut a retry pause short, or a down agent would be
    // hammered at the rate RTX users type.
    this.ensureRunning();
    return item;
  }

  configure(url: string | null, token?: string): void {
    this.url = url;
    this.token = token;
    if (!url) this.queue = [];
    this.kick();
  }

  status(): FeedStatus {
    return {
      url: this.url,
      pending: this.queue.length,
      delivered: this.delivered,
      attempts: this.attempts,
      lastSeq: this.seq,
      lastError: this.lastError,
      recent: [...this.recent],
    };
  }

  /** Resolves once the queue is empty (every pushed item acknowledged). */
  idle(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.inflight?.abort();
    this.wake?.();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Ends a retry pause now (new URL, stop) and makes sure the worker runs. */
  private kick(): void {
    if (this.wake) {
      const w = this.wake;
      this.wake = null;
      w();
    }
    this.ensureRunning();
  }

  private ensureRunning(): void {
    if (!this.running && !this.stopped) {
      this.running = true;
      void this.drain().catch((err: unknown) => {
        // drain only ends by returning; this is a safety net so a bug cannot leave the feed stuck as "running".
        this.lastError = `feed worker failed: ${(err as Error)?.message ?? String(err)}`;
        this.running = false;
      });
    }
  }

  private async drain(): Promise<void> {
    let pause = this.retryInitialMs;
    for (;;) {
      if (this.stopped || !this.url || this.queue.length === 0) {
        // Cleared in the same tick as this last look at the queue, so a push can never slip in between.
        this.running = false;
        return;
      }
      const item = this.queue[0]!;
      if (await this.deliver(item, this.url)) {
        this.queue.shift();
        this.delivered++;
        this.recent.push(item);
        if (this.recent.length > this.keepRecent) this.recent.shift();
        pause = this.retryInitialMs;
        if (this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
        continue;
      }
      // Wait before retrying the same item; a reconfigure or stop cuts the wait short.
      await Promise.race([
        sleep(pause, undefined, { ref: false }),
        new Promise<void>((resolve) => {
          this.wake = resolve;
        }),
      ]);
      this.wake = null;
      pause = Math.min(pause * 2, this.retryMaxMs);
    }
  }

  private async deliver(item: FeedItem, url: string): Promise<boolean> {
    this.attempts++;
    const controller = new AbortController();
    this.inflight = controller;
    const timer = setTimeout(() => controller.abort(), this.requestTimeoutMs);
    try {
      const res = await fetch(url, { method: 'POST', headers: feedHeaders(item, this.token), body: item.content, signal: controller.signal });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        this.lastError = null;
        return true;
      }
      this.lastError = `HTTP ${res.status} for seq ${item.seq}`;
      return false;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      this.lastError = `${cause ?? (err as Error).message} for seq ${item.seq}`;
      return false;
    } finally {
      clearTimeout(timer);
      this.inflight = null;
    }
  }
}
