import type { WebSocket } from 'ws';
import type { ConnectionStatus, PresenceConnection } from '../../presence/presence-state.ts';
import type { Identity } from '../client/identity.ts';
import type { ServerFrame } from './protocol.ts';
import { TokenBucket } from './token-bucket.ts';

export interface SocketOptions {
  /** Server ping interval; a socket that has not answered the previous ping is dropped. */
  heartbeatMs: number;
  /** How long an unauthenticated socket may stay open waiting for its auth frame. */
  authTimeoutMs: number;
  /** Frames larger than this are refused with an error frame (the socket stays open). */
  maxFrameBytes: number;
  /** Frames larger than this close the socket (1009) before they are even read. */
  hardMaxFrameBytes: number;
  /** Token bucket per socket: this many frames at once… */
  burst: number;
  /** …refilled at this rate. */
  perSecond: number;
  /** Refused frames within `abuseWindowMs` after which the socket is closed (1008). */
  abuseRefusals: number;
  abuseWindowMs: number;
  /** Each socket's token is checked again this often, in case a revocation event was lost. */
  recheckMs: number;
  /** Inbox heads fetched at once when a wake-up reaches many people. */
  wakeConcurrency: number;
}

export const SOCKET_DEFAULTS: SocketOptions = {
  heartbeatMs: 30_000,
  authTimeoutMs: 10_000,
  maxFrameBytes: 16 * 1024,
  hardMaxFrameBytes: 1024 * 1024,
  burst: 30,
  perSecond: 10,
  abuseRefusals: 100,
  abuseWindowMs: 10_000,
  recheckMs: 5 * 60_000,
  wakeConcurrency: 32,
};

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
  watching = new Set<number>();
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
