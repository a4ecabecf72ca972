import type moleculer from 'moleculer';
import type { RawData, WebSocket } from 'ws';
import { describeError } from '../../errors.ts';
import type { PresenceConnection, UserPresence } from '../../presence/presence-state.ts';
import { toHttpError } from '../http-error.ts';
import { assertMayAct, authenticate, type Identity } from '../client/identity.ts';
import { ClientSocket, type SocketOptions } from './client-socket.ts';
import { PresenceReporter } from './presence-reporter.ts';
import { CLOSE, parseFrame, type ClientFrame, type FrameId } from './protocol.ts';

const fingerprint = (p: UserPresence) => `${p.status}|${p.devices.map((d) => `${d.deviceType}/${d.deviceId}/${d.status}`).join(',')}`;

function add<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(value);
}

function drop<K, V>(index: Map<K, Set<V>>, key: K, value: V): boolean {
  const set = index.get(key);
  if (!set) return false;
  set.delete(value);
  if (set.size === 0) index.delete(key);
  return set.size === 0;
}

/**
 * The client sockets of one gateway: authenticates them, answers their frames, and pushes to them what
 * the broker announces (wake-ups from im, ended sessions and wipe orders from auth, presence changes).
 * Everything it pushes is a hint to go and read the durable record; nothing is lost when a push is.
 */
export class SocketHub {
  readonly options: SocketOptions;
  readonly reporter: PresenceReporter;
  readonly #broker: moleculer.ServiceBroker;
  readonly #all = new Set<ClientSocket>();
  readonly #byUser = new Map<number, Set<ClientSocket>>();
  readonly #bySession = new Map<number, Set<ClientSocket>>();
  readonly #watchers = new Map<number, Set<ClientSocket>>();
  /** The last presence pushed per watched person: several presence instances announce the same change. */
  readonly #lastPresence = new Map<number, string>();
  readonly #authTimers = new Map<ClientSocket, NodeJS.Timeout>();
  #nextId = 0;
  #timers: NodeJS.Timeout[] = [];
  // Wake-ups: one head lookup per person at a time, a wake during it makes it go round again.
  readonly #queue: number[] = [];
  readonly #queued = new Set<number>();
  readonly #inflight = new Set<number>();
  readonly #again = new Set<number>();
  #running = 0;

  constructor(broker: moleculer.ServiceBroker, options: SocketOptions, reporterId: string) {
    this.#broker = broker;
    this.options = options;
    this.reporter = new PresenceReporter(broker, reporterId, () => this.connections());
  }

  start(): void {
    this.reporter.start();
    const heartbeat = setInterval(() => this.#heartbeat(), this.options.heartbeatMs);
    const recheck = setInterval(() => void this.#recheckAll(), this.options.recheckMs);
    for (const t of [heartbeat, recheck]) t.unref?.();
    this.#timers = [heartbeat, recheck];
    this.reporter.snapshot();
  }

  /** Closes every socket (1001: reconnect elsewhere) and tells presence they are gone. */
  stop(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    for (const c of this.#all) {
      if (c.identity) this.reporter.remove(c.id);
      c.close(CLOSE.GOING_AWAY, 'server shutting down');
    }
    this.reporter.flush();
    this.reporter.stop();
  }

  /** Every authenticated socket, as presence sees it. */
  connections(): PresenceConnection[] {
    const out: PresenceConnection[] = [];
    for (const c of this.#all) {
      const p = c.ready ? c.presence() : null;
      if (p) out.push(p);
    }
    return out;
  }

  counts(): { sockets: number; users: number } {
    return { sockets: this.#all.size, users: this.#byUser.size };
  }

  /** A new socket; `pre` when the upgrade request carried a valid token already. */
  accept(socket: WebSocket, remoteAddress: string, pre: { identity: Identity; token: string } | null): void {
    const c = new ClientSocket(`${this.reporter.reporterId}:${++this.#nextId}`, socket, remoteAddress, this.options);
    this.#all.add(c);
    socket.on('message', (data: RawData, isBinary: boolean) => this.#onMessage(c, data, isBinary));
    socket.on('pong', () => (c.alive = true));
    socket.on('close', () => this.#remove(c));
    if (pre) {
      void this.#ready(c, pre.identity, pre.token);
      return;
    }
    const timer = setTimeout(() => {
      if (c.identity || c.closed) return;
      this.#error(c, 'QIAO_UNAUTHENTICATED', `no auth frame within ${this.options.authTimeoutMs} ms: send {"type":"auth","token":…} first`, 'token');
      c.close(CLOSE.AUTH_TIMEOUT, 'authentication timed out');
    }, this.options.authTimeoutMs);
    timer.unref?.();
    this.#authTimers.set(c, timer);
  }

  // ---- what the broker announces ------------------------------------------------------------------

  /** `im.sync.wake`: tells each connected person's sockets where their inbox ends now. */
  wake(userIds: unknown): void {
    if (!Array.isArray(userIds)) return;
    for (const u of userIds) if (typeof u === 'number' && this.#byUser.has(u)) this.#schedule(u);
  }

  /** `auth.session.revoked`: the session's sockets are told why and closed. */
  revoked(sessionId: unknown, reason: unknown): void {
    if (typeof sessionId !== 'number') return;
    for (const c of [...(this.#bySession.get(sessionId) ?? [])]) this.#end(c, typeof reason === 'string' ? reason : 'revoked');
  }

  /** `auth.session.wipe`: the order reaches every socket of the session; the device logs out when done. */
  wiped(sessionId: unknown): void {
    if (typeof sessionId !== 'number') return;
    for (const c of this.#bySession.get(sessionId) ?? []) {
      if (c.identity) c.identity = { ...c.identity, wipe: true };
      c.send({ type: 'wipe' });
    }
  }

  presenceChanged(p: unknown): void {
    const presence = p as UserPresence | null;
    if (!presence || typeof presence.userId !== 'number' || !Array.isArray(presence.devices)) return;
    const watchers = this.#watchers.get(presence.userId);
    if (!watchers) return;
    const fp = fingerprint(presence);
    if (this.#lastPresence.get(presence.userId) === fp) return;
    this.#lastPresence.set(presence.userId, fp);
    for (const c of watchers) c.send({ type: 'presence', users: [presence] });
  }

  // ---- frames ------------------------------------------------------------------------------------

  #onMessage(c: ClientSocket, data: RawData, isBinary: boolean): void {
    if (c.closed) return;
    c.alive = true;
    const admission = c.admit();
    if (admission !== 'ok') return this.#refused(c, admission, 'QIAO_RATE_LIMITED', `too many frames: at most ${this.options.burst} at once and ${this.options.perSecond} a second; slow down`);
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length;
    if (size > this.options.maxFrameBytes) {
      return this.#refused(c, c.refuse(), 'QIAO_PAYLOAD_TOO_LARGE', `a frame holds at most ${this.options.maxFrameBytes} bytes, this one had ${size}`);
    }
    if (isBinary) return this.#error(c, 'QIAO_BAD_REQUEST', 'binary frames are not accepted: send JSON text frames', 'frame');
    const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('utf8');
    const parsed = parseFrame(text);
    if ('error' in parsed) return this.#error(c, parsed.error.code, parsed.error.message, parsed.error.field, parsed.error.ref);
    void this.#dispatch(c, parsed.frame).catch((err: unknown) => {
      const { body } = toHttpError(err);
      this.#error(c, body.error.code, body.error.message, body.error.field, parsed.frame.id);
    });
  }

  async #dispatch(c: ClientSocket, frame: ClientFrame): Promise<void> {
    if (frame.type === 'auth') {
      if (c.identity || c.authenticating) return this.#error(c, 'QIAO_BAD_REQUEST', 'this socket is authenticated already', 'type', frame.id);
      return this.#authenticate(c, frame.token, frame.id);
    }
    if (frame.type === 'ping') return c.send({ type: 'pong', at: new Date().toISOString(), ...(frame.id === undefined ? {} : { ref: frame.id }) });
    if (!c.identity) {
      return this.#error(c, 'QIAO_UNAUTHENTICATED', `authenticate first: send {"type":"auth","token":…} before a "${frame.type}" frame`, 'type', frame.id);
    }
    if (frame.type === 'presence') {
      if (c.status !== frame.status) {
        c.status = frame.status;
        c.since = new Date().toISOString();
        this.reporter.upsert(c.presence()!);
      }
      return c.send({ type: 'ack', ...(frame.id === undefined ? {} : { ref: frame.id }) });
    }
    return this.#watch(c, frame.userIds, frame.id);
  }

  async #authenticate(c: ClientSocket, token: string, ref?: FrameId): Promise<void> {
    c.authenticating = true;
    let identity: Identity;
    try {
      identity = await authenticate(this.#broker, token, 'token');
    } catch (err) {
      const { body } = toHttpError(err);
      this.#error(c, body.error.code, body.error.message, body.error.field, ref);
      // A refused token ends the socket; a platform that cannot answer now is worth a retry later.
      c.close(body.error.code === 'QIAO_UNAUTHENTICATED' ? CLOSE.UNAUTHENTICATED : CLOSE.INTERNAL, body.error.message.slice(0, 100));
      return;
    } finally {
      c.authenticating = false;
    }
    await this.#ready(c, identity, token, ref);
  }

  async #ready(c: ClientSocket, identity: Identity, token: string, ref?: FrameId): Promise<void> {
    if (c.closed) return;
    clearTimeout(this.#authTimers.get(c));
    this.#authTimers.delete(c);
    try {
      assertMayAct(identity, 'token');
    } catch (err) {
      const { body } = toHttpError(err);
      this.#error(c, body.error.code, body.error.message, body.error.field, ref);
      c.close(CLOSE.PASSWORD_CHANGE_REQUIRED, 'password change required');
      return;
    }
    c.identity = identity;
    c.token = token;
    add(this.#byUser, identity.userId, c);
    add(this.#bySession, identity.sessionId, c);
    this.reporter.upsert(c.presence()!);
    const head = await this.#head(identity.userId);
    const o = this.options;
    c.send({
      type: 'ready',
      userId: identity.userId,
      account: identity.account,
      sessionId: identity.sessionId,
      deviceType: identity.deviceType,
      deviceId: identity.deviceId,
      head,
      heartbeatMs: o.heartbeatMs,
      limits: { maxFrameBytes: o.maxFrameBytes, burst: o.burst, perSecond: o.perSecond },
      ...(ref === undefined ? {} : { ref }),
    });
    if (identity.wipe) c.send({ type: 'wipe' });
  }

  async #watch(c: ClientSocket, userIds: number[], ref?: FrameId): Promise<void> {
    const next = new Set(userIds);
    for (const u of c.watching) if (!next.has(u) && drop(this.#watchers, u, c)) this.#lastPresence.delete(u);
    for (const u of next) add(this.#watchers, u, c);
    c.watching = next;
    if (next.size === 0) return c.send({ type: 'presence', users: [], ...(ref === undefined ? {} : { ref }) });
    const { users } = await this.#broker.call<{ users: UserPresence[] }, { userIds: number[] }>('presence.get', { userIds: [...next] });
    for (const p of users) this.#lastPresence.set(p.userId, fingerprint(p));
    c.send({ type: 'presence', users, ...(ref === undefined ? {} : { ref }) });
  }

  // ---- helpers -----------------------------------------------------------------------------------

  #error(c: ClientSocket, code: string, message: string, field?: string, ref?: FrameId): void {
    c.send({ type: 'error', code, message, ...(field ? { field } : {}), ...(ref === undefined ? {} : { ref }) });
  }

  #refused(c: ClientSocket, admission: ReturnType<ClientSocket['admit']>, code: string, message: string): void {
    if (admission === 'abuse') {
      this.#error(c, 'QIAO_RATE_LIMITED', `closing: more than ${this.options.abuseRefusals} frames refused within ${this.options.abuseWindowMs} ms`, 'frame');
      c.close(CLOSE.POLICY, 'rate limit exceeded repeatedly');
      return;
    }
    if (admission === 'refused') this.#error(c, code, message, 'frame');
  }

  #end(c: ClientSocket, reason: string): void {
    c.send({ type: 'revoked', reason });
    c.close(CLOSE.UNAUTHENTICATED, `session ended: ${reason}`);
  }

  #remove(c: ClientSocket): void {
    if (!this.#all.delete(c)) return;
    c.closed = true;
    clearTimeout(this.#authTimers.get(c));
    this.#authTimers.delete(c);
    for (const u of c.watching) if (drop(this.#watchers, u, c)) this.#lastPresence.delete(u);
    if (c.identity) {
      drop(this.#byUser, c.identity.userId, c);
      drop(this.#bySession, c.identity.sessionId, c);
      this.reporter.remove(c.id);
    }
  }

  #heartbeat(): void {
    for (const c of this.#all) {
      if (!c.alive) {
        // No answer to the last ping: the peer is gone without a close (a dead network, a crashed client).
        c.socket.terminate();
        continue;
      }
      c.alive = false;
      try {
        c.socket.ping();
      } catch {
        c.socket.terminate();
      }
    }
  }

  async #head(userId: number): Promise<number | null> {
    try {
      return (await this.#broker.call<{ head: number }, { userId: number }>('im.sync.head', { userId })).head;
    } catch {
      return null;
    }
  }

  #schedule(userId: number): void {
    if (this.#inflight.has(userId)) {
      this.#again.add(userId);
      return;
    }
    if (this.#queued.has(userId)) return;
    this.#queued.add(userId);
    this.#queue.push(userId);
    this.#pump();
  }

  #pump(): void {
    while (this.#running < this.options.wakeConcurrency && this.#queue.length > 0) {
      const userId = this.#queue.shift()!;
      this.#queued.delete(userId);
      void this.#push(userId);
    }
  }

  async #push(userId: number): Promise<void> {
    this.#running++;
    this.#inflight.add(userId);
    try {
      const head = await this.#head(userId);
      for (const c of this.#byUser.get(userId) ?? []) c.send({ type: 'sync', head });
    } finally {
      this.#running--;
      this.#inflight.delete(userId);
      if (this.#again.delete(userId)) this.#schedule(userId);
      this.#pump();
    }
  }

  /** Checks every socket's token again: a session whose revocation event was lost ends here at the latest. */
  async #recheckAll(): Promise<void> {
    const sockets = [...this.#all].filter((c) => c.ready && c.token);
    for (let i = 0; i < sockets.length; i += 8) {
      await Promise.all(
        sockets.slice(i, i + 8).map(async (c) => {
          try {
            const identity = await authenticate(this.#broker, c.token!, 'token');
            if (identity.wipe && !c.identity?.wipe) this.wiped(identity.sessionId);
          } catch (err) {
            const d = describeError(err);
            if (d.code === 'QIAO_UNAUTHENTICATED') this.#end(c, String((d.data as { reason?: string } | undefined)?.reason ?? 'revoked'));
          }
        }),
      );
    }
  }
}
