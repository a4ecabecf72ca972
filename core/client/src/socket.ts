import type { Emitter } from './emitter.ts';
import { QiaoApiError } from './errors.ts';
import type { ClientEvents } from './events.ts';
import type { ReadyFrame, ServerFrame } from './types.ts';

/** Close codes after which reconnecting with the same token is pointless. */
const FATAL = new Set([4401, 4403]);

export type SocketState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface SocketOptions {
  url: string;
  token: () => string | null;
  WebSocket: typeof WebSocket;
  events: Emitter<ClientEvents>;
  /** Delay before reconnect attempt `n` (0-based). */
  backoff: (attempt: number) => number;
  onReady: (frame: ReadyFrame) => void;
  onSync: (head: number | null) => void;
}

type Pending = { resolve: (f: ServerFrame) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> };

/**
 * The client's WebSocket: authenticates with the first frame, keeps itself alive with pings, and
 * reconnects with exponential backoff (with jitter) until told to stop or the session has ended.
 */
export class SocketConnection {
  state: SocketState = 'idle';
  readonly #o: SocketOptions;
  #ws: WebSocket | null = null;
  #wanted = false;
  #attempt = 0;
  #reconnect: ReturnType<typeof setTimeout> | null = null;
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #lastFrameAt = 0;
  #lastReady: ReadyFrame | null = null;
  #ready: Array<{ resolve: (f: ReadyFrame) => void; reject: (e: Error) => void }> = [];
  readonly #pending = new Map<string, Pending>();
  #nextRef = 0;

  constructor(options: SocketOptions) {
    this.#o = options;
  }

  /** Opens the socket (if it is not open) and resolves once it is ready; rejects only if the session has ended or `close()` is called. */
  open(): Promise<ReadyFrame> {
    const waiting = new Promise<ReadyFrame>((resolve, reject) => this.#ready.push({ resolve, reject }));
    if (!this.#wanted) {
      this.#wanted = true;
      this.#attempt = 0;
      this.#connect();
    } else if (this.state === 'connected' && this.#lastReady) {
      this.#settleReady(this.#lastReady);
    }
    return waiting;
  }

  /** Closes the socket for good (until the next `open()`). */
  close(): void {
    this.#wanted = false;
    if (this.#reconnect) clearTimeout(this.#reconnect);
    this.#reconnect = null;
    const ws = this.#ws;
    this.#drop(1000, 'closed by the client', null);
    try {
      ws?.close(1000, 'bye');
    } catch {
      // Already closing.
    }
    for (const w of this.#ready.splice(0)) w.reject(new QiaoApiError(0, 'CLOSED', 'the client was disconnected'));
  }

  /** Sends a frame that the server answers (`ack`, `presence`, `pong`), resolving with the answer. */
  request(frame: Record<string, unknown>, timeoutMs = 10_000): Promise<ServerFrame> {
    const ws = this.#ws;
    if (!ws || this.state !== 'connected') return Promise.reject(new QiaoApiError(0, 'NOT_CONNECTED', 'the socket is not connected; call connect() first'));
    const ref = `r${++this.#nextRef}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new QiaoApiError(0, 'TIMEOUT', `no answer to the "${String(frame.type)}" frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(ref, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...frame, id: ref }));
    });
  }

  #connect(): void {
    this.state = this.#attempt === 0 ? 'connecting' : 'reconnecting';
    let ws: WebSocket;
    try {
      ws = new this.#o.WebSocket(this.#o.url);
    } catch (err) {
      this.#o.events.emit('error', err as Error);
      this.#drop(1006, (err as Error).message, this.#wanted ? this.#o.backoff(this.#attempt++) : null);
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      this.#lastFrameAt = Date.now();
      ws.send(JSON.stringify({ type: 'auth', token: this.#o.token() ?? '' }));
    };
    ws.onmessage = (e: MessageEvent) => {
      if (this.#ws !== ws) return;
      this.#lastFrameAt = Date.now();
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(e.data)) as ServerFrame;
      } catch {
        return;
      }
      this.#onFrame(frame);
    };
    ws.onclose = (e: CloseEvent) => {
      if (this.#ws !== ws) return;
      this.#closed(e.code, e.reason);
    };
    ws.onerror = () => {
      // A close event follows; that is where the decision is made.
    };
  }

  #onFrame(frame: ServerFrame): void {
    const ref = 'ref' in frame && frame.ref !== undefined ? String(frame.ref) : null;
    const pending = ref ? this.#pending.get(ref) : undefined;
    if (pending && ref) {
      this.#pending.delete(ref);
      clearTimeout(pending.timer);
      if (frame.type === 'error') pending.reject(new QiaoApiError(0, frame.code, frame.message, frame.field));
      else pending.resolve(frame);
    }
    switch (frame.type) {
      case 'ready':
        this.state = 'connected';
        this.#attempt = 0;
        this.#lastReady = frame;
        this.#startHeartbeat(frame.heartbeatMs);
        this.#o.events.emit('connected', frame);
        this.#settleReady(frame);
        this.#o.onReady(frame);
        return;
      case 'sync':
        this.#o.onSync(frame.head);
        return;
      case 'presence':
        for (const u of frame.users) this.#o.events.emit('presence', u);
        return;
      case 'wipe':
        this.#o.events.emit('wipe', {});
        return;
      case 'revoked':
        this.#o.events.emit('revoked', { reason: frame.reason });
        return;
      case 'error':
        if (!pending) this.#o.events.emit('error', new QiaoApiError(0, frame.code, frame.message, frame.field));
        return;
      default:
        return;
    }
  }

  #settleReady(frame: ReadyFrame): void {
    for (const w of this.#ready.splice(0)) w.resolve(frame);
  }

  #closed(code: number, reason: string): void {
    const fatal = FATAL.has(code);
    if (fatal) {
      this.#wanted = false;
      const err = new QiaoApiError(401, code === 4403 ? 'QIAO_AUTH_PASSWORD_CHANGE_REQUIRED' : 'QIAO_UNAUTHENTICATED', reason || 'the session has ended: log in again');
      for (const w of this.#ready.splice(0)) w.reject(err);
    }
    this.#drop(code, reason, this.#wanted ? this.#o.backoff(this.#attempt++) : null);
  }

  /** Forgets the current socket and, with a delay, schedules the next attempt. */
  #drop(code: number, reason: string, reconnectInMs: number | null): void {
    const had = this.#ws !== null || this.state !== 'idle';
    this.#ws = null;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    for (const [ref, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new QiaoApiError(0, 'NOT_CONNECTED', 'the socket closed before the answer came'));
      this.#pending.delete(ref);
    }
    this.state = reconnectInMs === null ? 'closed' : 'reconnecting';
    if (had) this.#o.events.emit('disconnected', { code, reason, reconnectInMs });
    if (reconnectInMs !== null) {
      this.#reconnect = setTimeout(() => {
        this.#reconnect = null;
        if (this.#wanted) this.#connect();
      }, reconnectInMs);
    }
  }

  #startHeartbeat(intervalMs: number): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const every = Math.max(1000, intervalMs);
    this.#heartbeat = setInterval(() => {
      const ws = this.#ws;
      if (!ws) return;
      if (Date.now() - this.#lastFrameAt > 2 * every) {
        // Nothing heard for two intervals: the connection is dead even if no close came. Give up on it.
        try {
          ws.close(4000, 'heartbeat timeout');
        } catch {
          // Closing anyway.
        }
        this.#closed(4000, 'heartbeat timeout');
        return;
      }
      ws.send(JSON.stringify({ type: 'ping' }));
    }, every);
  }
}
