import type moleculer from 'moleculer';
import type { RawData, WebSocket } from 'ws';
import { describeError } from '../../errors.ts';
import type { PresenceConnection, UserPresence } from '../../presence/presence-state.ts';
import { toHttpError } from '../http-error.ts';
import { assertMayAct, authenticate, type Identity } from '../client/identity.ts';
import { presenceFor, unseen, visibleIds } from '../client/visible-presence.ts';
import { ClientSocket, type SocketOptions } from './client-socket.ts';
import { PresenceReporter } from './presence-reporter.ts';
import { CLOSE, frameRef, parseFrame, type ClientFrame, type FrameId } from './protocol.ts';

/** The most heads one `im.sync.heads` call asks for (its own limit). */
const SYNC_HEADS_MAX = 5000;

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
  #watchChecking = false;
  #watchCheckAgain = false;
  #nextId = 0;
  #timers: NodeJS.Timeout[] = [];
  // Wake-ups: the heads of everyone woken are asked for in batches (`im.sync.heads`), so a message to a
  // 5,000-member group costs one call here. Someone woken again while their batch is out waits for the
  // next one: each socket sees its heads in order.
  readonly #waking = new Set<number>();
  readonly #inflight = new Set<number>();
  #running = 0;
  #wakeScheduled = false;

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
    for (const u of userIds) if (typeof u === 'number' && this.#byUser.has(u)) this.#waking.add(u);
    if (this.#waking.size) this.#scheduleWake();
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

  /** `org.changed`: whom each watcher may see may have changed. */
  orgChanged(): void {
    void this.#recheckWatchers();
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
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length;
    if (admission !== 'ok') {
      // The refusal names the frame it refuses (when it is small enough to read), so a client waiting for
      // that answer can stop waiting at once instead of timing out.
      const ref = size <= this.options.maxFrameBytes && !isBinary ? frameRef(data) : undefined;
      return this.#refused(c, admission, 'QIAO_RATE_LIMITED', `too many frames: at most ${this.options.burst} at once and ${this.options.perSecond} a second; slow down`, ref);
    }
    if (size > this.options.maxFrameBytes) {
      return this.#refused(c, c.refuse(), 'QIAO_PAYLOAD_TOO_LARGE', `a frame holds at most ${this.options.maxFrameBytes} bytes, this one had ${size}`);
    }
    if (isBinary) return this.#error(c, 'QIAO_BAD_REQUEST', 'binary frames are not accepted: send JSON text frames', 'frame');
    const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('utf8');
    const parsed = parseFrame(text, this.options.watchLimit);
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
      limits: { maxFrameBytes: o.maxFrameBytes, burst: o.burst, perSecond: o.perSecond, watchLimit: o.watchLimit },
      ...(ref === undefined ? {} : { ref }),
    });
    if (identity.wipe) c.send({ type: 'wipe' });
  }

  async #watch(c: ClientSocket, userIds: number[], ref?: FrameId): Promise<void> {
    const version = ++c.watchVersion;
    const next = new Set(userIds);
    c.watching = next;
    // Only people the watcher may see in the directory are watched; the others are answered like ids of
    // nobody, now and later, so the answer tells nothing about them.
    const visible = await visibleIds(this.#broker, c.identity!.userId, [...next]);
    if (version !== c.watchVersion || c.closed) return;
    this.#setVisible(c, visible);
    const users = await presenceFor(this.#broker, [...next], visible);
    if (version !== c.watchVersion) return;
    for (const p of users) if (visible.has(p.userId)) this.#lastPresence.set(p.userId, fingerprint(p));
    c.send({ type: 'presence', users, ...(ref === undefined ? {} : { ref }) });
  }

  /** Points the watcher index at the people of `c`'s list it may see now. */
  #setVisible(c: ClientSocket, visible: Set<number>): void {
    for (const u of c.watchingVisible) if (!visible.has(u) && drop(this.#watchers, u, c)) this.#lastPresence.delete(u);
    for (const u of visible) add(this.#watchers, u, c);
    c.watchingVisible = visible;
  }

  /**
   * The directory changed (`org.changed`): a rule or a move may have changed whom each watcher may see.
   * Every watch list is checked again, one question per person watching (however many sockets they have),
   * one pass at a time: changes during a pass make it go round once more, so an import's burst of changes
   * costs a pass or two. People who became hidden are sent as offline, as ids of nobody would be, and then
   * nothing more; people who became visible are sent as they are.
   */
  async #recheckWatchers(): Promise<void> {
    if (this.#watchChecking) {
      this.#watchCheckAgain = true;
      return;
    }
    this.#watchChecking = true;
    try {
      const byViewer = new Map<number, ClientSocket[]>();
      for (const c of this.#all) {
        if (!c.ready || c.watching.size === 0) continue;
        const list = byViewer.get(c.identity!.userId);
        if (list) list.push(c);
        else byViewer.set(c.identity!.userId, [c]);
      }
      const viewers = [...byViewer];
      for (let i = 0; i < viewers.length; i += 8) {
        await Promise.all(viewers.slice(i, i + 8).map(([viewer, sockets]) => this.#recheckViewer(viewer, sockets)));
      }
    } finally {
      this.#watchChecking = false;
      if (this.#watchCheckAgain) {
        this.#watchCheckAgain = false;
        void this.#recheckWatchers();
      }
    }
  }

  async #recheckViewer(viewer: number, sockets: ClientSocket[]): Promise<void> {
    const versions = new Map(sockets.map((c) => [c, c.watchVersion]));
    let visible: Set<number>;
    try {
      visible = await visibleIds(this.#broker, viewer, [...new Set(sockets.flatMap((c) => [...c.watching]))]);
    } catch (err) {
      this.#broker.logger.warn(`gateway: checking whom user ${viewer} may watch failed: ${(err as Error).message}`);
      return;
    }
    for (const c of sockets) {
      // A watch frame answered meanwhile has the newer word.
      if (versions.get(c) !== c.watchVersion || c.closed) continue;
      const now = new Set([...c.watching].filter((u) => visible.has(u)));
      const hidden = [...c.watchingVisible].filter((u) => !now.has(u));
      const shown = [...now].filter((u) => !c.watchingVisible.has(u));
      if (hidden.length === 0 && shown.length === 0) continue;
      this.#setVisible(c, now);
      const users = [...hidden.map(unseen), ...(shown.length ? await presenceFor(this.#broker, shown, now).catch(() => []) : [])];
      if (versions.get(c) === c.watchVersion && users.length) c.send({ type: 'presence', users });
    }
  }

  // ---- helpers -----------------------------------------------------------------------------------

  #error(c: ClientSocket, code: string, message: string, field?: string, ref?: FrameId): void {
    c.send({ type: 'error', code, message, ...(field ? { field } : {}), ...(ref === undefined ? {} : { ref }) });
  }

  #refused(c: ClientSocket, admission: ReturnType<ClientSocket['admit']>, code: string, message: string, ref?: FrameId): void {
    if (admission === 'abuse') {
      this.#error(c, 'QIAO_RATE_LIMITED', `closing: more than ${this.options.abuseRefusals} frames refused within ${this.options.abuseWindowMs} ms`, 'frame');
      c.close(CLOSE.POLICY, 'rate limit exceeded repeatedly');
      return;
    }
    if (admission === 'refused') this.#error(c, code, message, 'frame', ref);
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
    for (const u of c.watchingVisible) if (drop(this.#watchers, u, c)) this.#lastPresence.delete(u);
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

  #scheduleWake(): void {
    if (this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    // Wake-ups that arrive together (one per committed change) go out in one batch.
    setImmediate(() => {
      this.#wakeScheduled = false;
      this.#pumpWakes();
    });
  }

  #pumpWakes(): void {
    while (this.#running < this.options.wakeConcurrency && this.#waking.size > 0) {
      const batch: number[] = [];
      for (const u of this.#waking) {
        if (this.#inflight.has(u)) continue;
        batch.push(u);
        if (batch.length === SYNC_HEADS_MAX) break;
      }
      if (batch.length === 0) return;
      for (const u of batch) {
        this.#waking.delete(u);
        this.#inflight.add(u);
      }
      void this.#pushHeads(batch);
    }
  }

  async #pushHeads(batch: number[]): Promise<void> {
    this.#running++;
    try {
      let heads: Record<string, number> = {};
      try {
        heads = (await this.#broker.call<{ heads: Record<string, number> }, { userIds: number[] }>('im.sync.heads', { userIds: batch })).heads;
      } catch {
        // Everyone in the batch is still told to look again, as a single lookup that failed would.
      }
      for (const u of batch) {
        const head = heads[u] ?? null;
        for (const c of this.#byUser.get(u) ?? []) c.send({ type: 'sync', head });
      }
    } finally {
      this.#running--;
      for (const u of batch) this.#inflight.delete(u);
      this.#pumpWakes();
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
