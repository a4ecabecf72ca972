import type { WebSocket } from 'ws';
import { WS_DEFAULTS, type WsConfig } from '../../config.ts';
import type { ConnectionStatus, PresenceConnection } from '../../presence/presence-state.ts';
import type { Identity } from '../client/identity.ts';
import type { ServerFrame } from './protocol.ts';
import { TokenBucket } from './token-bucket.ts';

/** The socket limits: configuration (`QIAO_WS_…`, see config.ts), passed in by the gateway. */
export type SocketOptions = WsConfig;

export const SOCKET_DEFAULTS: SocketOptions = WS_DEFAULTS;

/** What the rate limit says about one incoming frame. */
export type Admission = 'ok' | 'refused' | 'refused-quietly' | 'abuse';

/** One client socket: who it is (once authenticated), its presence and its rate limit. */
export class ClientSocket {
  readonly id: string;
  readonly socket: WebSocket;
  readonly remoteAddress: string;
  identity: Identity | null = null;
  token: string | null = null;
  status: ConnectionStatus = 'online';
  since = new Date().toISOString();
  /** Whom this socket asked to watch… */
  watching = new Set<number>();
  /** …and those of them it may see, whose changes it is sent. */
  watchingVisible = new Set<number>();
  /** Counts watch lists, so that a slow answer to an older one never overrides a newer one. */
  watchVersion = 0;
  /** Answered the last server ping (or sent anything since). */
  alive = true;
  closed = false;
  authenticating = false;
  readonly #bucket: TokenBucket;
  readonly #options: SocketOptions;
  #refused = 0;
  #windowStart = 0;
  #lastErrorAt = Number.NEGATIVE_INFINITY;

  constructor(id: string, socket: WebSocket, remoteAddress: string, options: SocketOptions) {
    this.id = id;
    this.socket = socket;
    this.remoteAddress = remoteAddress;
    this.#options = options;
    this.#bucket = new TokenBucket(options.burst, options.perSecond);
  }

  get ready(): boolean {
    return this.identity !== null && !this.closed;
  }

  send(frame: ServerFrame): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(JSON.stringify(frame));
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    // A close reason is at most 123 bytes of UTF-8; cut whole characters (names in messages may be Chinese).
    let text = reason;
    while (Buffer.byteLength(text) > 123) text = [...text].slice(0, -1).join('');
    this.socket.close(code, text);
  }

  /**
   * Charges one frame to the bucket. A refusal is answered with an error frame at most once a second (a
   * flood must not be doubled by our answers); enough refusals within the window mean abuse.
   */
  admit(now = performance.now()): Admission {
    if (this.#bucket.take()) return 'ok';
    return this.refuse(now);
  }

  /** Counts a refused frame (rate limit, oversize) towards the abuse limit. */
  refuse(now = performance.now()): Admission {
    if (now - this.#windowStart > this.#options.abuseWindowMs) {
      this.#windowStart = now;
      this.#refused = 0;
    }
    this.#refused++;
    if (this.#refused > this.#options.abuseRefusals) return 'abuse';
    if (now - this.#lastErrorAt < 1000) return 'refused-quietly';
    this.#lastErrorAt = now;
    return 'refused';
  }

  presence(): PresenceConnection | null {
    const i = this.identity;
    if (!i) return null;
    return { id: this.id, userId: i.userId, sessionId: i.sessionId, deviceType: i.deviceType, deviceId: i.deviceId, status: this.status, since: this.since };
  }
}
