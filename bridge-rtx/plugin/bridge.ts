import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PluginContext, StoredMessage } from '@qiao/plugin-api';
import cron, { type ScheduledTask } from 'node-cron';
import type { WebSocket } from 'ws';
import { startAgent, type RtxAgent } from '../agent/agent.ts';
import { writeJsonFile } from '../agent/state-file.ts';
import { Accounts, type CoreCall } from './accounts.ts';
import { CLOSE_PROTOCOL, CLOSE_REPLACED, CLOSE_REVOKED, LINK_PROTOCOL_VERSION, type AgentFrame, type AgentStats, type InboundItem, type PluginFrame, type RtxHealth } from './link-protocol.ts';
import { startLinkServer, type LinkServer } from './link-server.ts';
import { OrgSync, SyncRefused, type SyncCounts } from './org-sync.ts';
import { embeddedCredential, issueCode, type AgentRecord } from './pairing.ts';
import { InboundRelay, isTransient } from './relay-in.ts';
import { OutboxWriter } from './relay-out.ts';
import { PresenceFeed } from './presence-feed.ts';
import type { Store } from './store.ts';

export interface BridgeSettings {
  listen: { host: string; port: number };
  publicUrl?: string;
  codeTtlMinutes: number;
  sync: { enabled: boolean; cron: string; batchSize: number; maxRemovePercent: number; timeoutSeconds: number };
  presence: { intervalSeconds: number };
  readOnlyWhileOn: boolean;
  embeddedAgent?: {
    enabled: boolean;
    rtxSdkUrl: string;
    rtxHostUrl: string;
    rtxHostToken?: string;
    feedPort: number;
    feedBind: string;
    feedToken?: string;
    sdkProxyPort?: number;
    sdkProxyAllow: string[];
    relayAccount?: string;
    relayPassword?: string;
  };
}

type Log = (level: 'info' | 'warn' | 'error', m: string) => void;

/** How many out items may be with the agent but not yet on its disk. */
const OUT_WINDOW = 1000;
const IN_RETRIES = 5;
const READ_ONLY_KEY = 'org.readOnlySources';

interface Session {
  ws: WebSocket;
  agent: AgentRecord;
  address: string;
  connectedAt: number;
  hello: Extract<AgentFrame, { t: 'hello' }> | null;
  rtx: RtxHealth;
  stats: AgentStats | null;
  /** Highest seq sent on this connection, and the highest the agent has on disk. */
  outSent: number;
  agentReceived: number;
  inChain: Promise<void>;
  inDone: number;
  closed: boolean;
}

/** One sync run as admins see it: its counts, and no RTX user count when it failed before reading RTX. */
export interface RunView extends Omit<SyncCounts, 'rtxUsers'> {
  id: number;
  trigger: string;
  status: string;
  startedAt: string;
  finishedAt: string | null;
  rtxUsers: number | null;
  error: string | null;
}

function runView(r: Record<string, unknown>): RunView {
  const n = (k: string) => Number(r[k] ?? 0);
  return {
    id: n('id'),
    trigger: String(r.trigger),
    status: String(r.status),
    startedAt: new Date(n('started_at')).toISOString(),
    finishedAt: r.finished_at === null || r.finished_at === undefined ? null : new Date(n('finished_at')).toISOString(),
    rtxUsers: r.rtx_users === null || r.rtx_users === undefined ? null : n('rtx_users'),
    added: n('added'),
    changed: n('changed'),
    moved: n('moved'),
    removed: n('removed'),
    restored: n('restored'),
    departmentsAdded: n('departments_added'),
    departmentsRemoved: n('departments_removed'),
    skipped: n('skipped'),
    problems: r.problems ? (JSON.parse(String(r.problems)) as string[]) : [],
    error: (r.error as string | null) ?? null,
  };
}

function bridgeError(type: string, code: number, message: string, field?: string): Error {
  const err = new Error(message) as Error & { type: string; code: number; data?: unknown };
  err.name = 'QiaoError';
  err.type = type;
  err.code = code;
  if (field) err.data = { field };
  return err;
}

/**
 * The plugin at run time: the link port, the one agent session, both relay directions, the org sync on its
 * cron, presence, and what the admin console shows. One instance per plugin process.
 */
export class Bridge {
  readonly settings: BridgeSettings;
  readonly store: Store;
  readonly call: CoreCall;
  readonly log: Log;
  readonly accounts: Accounts;
  readonly outbox: OutboxWriter;
  readonly inbound: InboundRelay;
  readonly orgSync: OrgSync;
  readonly presence: PresenceFeed;
  readonly #ctx: PluginContext<BridgeSettings>;
  #server: LinkServer | null = null;
  #session: Session | null = null;
  #pumping = false;
  #pumpAgain = false;
  #syncing: Promise<{ id: number; done: Promise<RunView> }> | null = null;
  #orgWaiters = new Map<number, { resolve(f: Extract<AgentFrame, { t: 'org' }>): void; reject(e: Error): void }>();
  #credWaiters = new Map<number, { resolve(f: { ok: boolean; error?: string }): void }>();
  #nextCred = 1;
  #rtxPresence = new Map<string, { account: string; status: number; at: number }>();
  #timers: NodeJS.Timeout[] = [];
  #cronTask: ScheduledTask | null = null;
  #cronError: string | null = null;
  #embedded: RtxAgent | null = null;
  #stopping = false;

  constructor(ctx: PluginContext<BridgeSettings>, store: Store, call: CoreCall) {
    this.#ctx = ctx;
    this.settings = ctx.settings;
    this.store = store;
    this.call = call;
    this.log = (level, m) => ctx.logger[level](m);
    this.accounts = new Accounts(store, call);
    this.outbox = new OutboxWriter(store, call, this.accounts);
    this.inbound = new InboundRelay(store, call, this.accounts);
    this.orgSync = new OrgSync(store, call, this.accounts, this.log);
    this.presence = new PresenceFeed({
      call,
      // RTX presence is known only through a linked agent that can reach RTX; otherwise nobody is shown from RTX.
      current: () => (this.#stopping || !this.#session || this.#session.closed || this.#session.rtx.host === 'down' ? null : [...this.#rtxPresence.values()].map((p): [string, number] => [p.account, p.status])),
      qiaoId: (account) => this.accounts.qiaoId(account),
      log: this.log,
    });
  }

  get port(): number | null {
    return this.#server?.port ?? null;
  }

  // ---- life cycle -------------------------------------------------------------------------------------------
  async start(): Promise<void> {
    this.accounts.relayAccount = await this.store.getMeta('relayAccount');
    // A sync that was running when the plugin died will never finish; say so in the history.
    await this.store.execute("UPDATE rtx_bridge_sync_runs SET status = 'failed', error = ?, finished_at = ? WHERE status = 'running'", [
      'interrupted: the plugin stopped during this sync; the next sync finishes the work',
      Date.now(),
    ]);
    this.#server = await startLinkServer({
      host: this.settings.listen.host,
      port: this.settings.listen.port,
      store: this.store,
      onSession: (ws, agent, address) => this.#onSession(ws, agent, address),
      onPaired: (agentId) => {
        if (this.#session && this.#session.agent.id !== agentId) this.#session.ws.close(CLOSE_REVOKED, 'a new agent was paired with this bridge');
      },
      log: this.log,
    });
    this.log('info', `RTX bridge link listening on ${this.settings.listen.host}:${this.#server.port}`);
    if (this.settings.readOnlyWhileOn) await this.#setReadOnly(true).catch((err: Error) => this.log('error', `could not mark RTX records read-only: ${err.message}`));
    if (this.settings.sync.enabled) {
      if (cron.validate(this.settings.sync.cron)) {
        this.#cronTask = cron.schedule(this.settings.sync.cron, () => void this.runSync('cron').catch(() => undefined), { name: 'rtx-bridge-sync', noOverlap: true });
      } else {
        this.#cronError = `sync.cron "${this.settings.sync.cron}" is not a valid cron expression; scheduled syncs are off (run them on demand)`;
        this.log('error', this.#cronError);
      }
    }
    this.#timers.push(setInterval(() => void this.pumpOut(), 1000));
    this.#timers.push(setInterval(() => void this.store.flushCounters().catch(() => undefined), 1000));
    this.#timers.push(setInterval(() => void this.inbound.flush().catch((err: Error) => this.log('warn', `recording relayed messages: ${err.message}`)), 200));
    this.#timers.push(
      setInterval(() => {
        void this.#pushQiaoPresence();
        // Also retries a round that failed (the presence service was away): the agent sends changes only.
        void this.presence.update();
      }, this.settings.presence.intervalSeconds * 1000),
    );
    this.#timers.forEach((t) => t.unref());
    // A predecessor that crashed may have left people shown online from RTX: start from nobody.
    void this.presence.update();
    if (this.settings.embeddedAgent?.enabled) await this.#startEmbeddedAgent();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#timers.forEach((t) => clearInterval(t));
    // First: nothing below may keep people shown online from RTX if the host runs out of patience.
    await this.presence.clear();
    if (this.#cronTask) await this.#cronTask.destroy();
    await this.#embedded?.stop().catch(() => undefined);
    this.#session?.ws.close(1001, 'the bridge is stopping');
    await this.#server?.close();
    await this.#syncing?.then((r) => r.done).catch(() => undefined);
    await this.store.flushCounters().catch(() => undefined);
    await this.inbound.flush().catch(() => undefined);
    if (this.settings.readOnlyWhileOn) await this.#setReadOnly(false).catch(() => undefined);
  }

  async #setReadOnly(on: boolean): Promise<void> {
    const cur = await this.call<unknown>('system.settings.get', { key: READ_ONLY_KEY });
    const list = typeof cur === 'string' ? cur.split(',').map((s) => s.trim()).filter(Boolean) : Array.isArray(cur) ? cur.filter((s): s is string => typeof s === 'string') : [];
    const next = on ? [...new Set([...list, 'rtx'])] : list.filter((s) => s !== 'rtx');
    if (next.length !== list.length) await this.call('system.settings.set', { key: READ_ONLY_KEY, value: next });
  }

  async #startEmbeddedAgent(): Promise<void> {
    const e = this.settings.embeddedAgent!;
    const stateDir = path.join(this.#ctx.dataDir, 'embedded-agent');
    const qiaoUrl = `ws://127.0.0.1:${this.port}`;
    const cred = await embeddedCredential(this.store);
    writeJsonFile(path.join(stateDir, 'qiao-link.json'), { qiaoUrl, ...cred });
    this.#embedded = await startAgent({
      qiaoUrl,
      name: 'embedded agent',
      stateDir,
      rtxSdkUrl: e.rtxSdkUrl,
      rtxHostUrl: e.rtxHostUrl,
      rtxHostToken: e.rtxHostToken,
      feed: { port: e.feedPort, bind: e.feedBind, token: e.feedToken },
      sdkProxy: e.sdkProxyPort !== undefined ? { port: e.sdkProxyPort, allow: e.sdkProxyAllow } : undefined,
      relay: e.relayAccount ? { account: e.relayAccount, password: e.relayPassword ?? '' } : undefined,
      log: this.log,
    });
  }

  // ---- the agent's session ------------------------------------------------------------------------------------
  #send(s: Session, f: PluginFrame): boolean {
    if (s.closed || s.ws.readyState !== 1) return false;
    s.ws.send(JSON.stringify(f));
    return true;
  }

  #onSession(ws: WebSocket, agent: AgentRecord, address: string): void {
    const old = this.#session;
    if (old) {
      old.closed = true;
      old.ws.close(CLOSE_REPLACED, 'another connection of this agent took over');
    }
    const s: Session = { ws, agent, address, connectedAt: Date.now(), hello: null, rtx: { sdk: 'unknown', host: 'unknown', detail: null }, stats: null, outSent: 0, agentReceived: 0, inChain: Promise.resolve(), inDone: 0, closed: false };
    this.#session = s;
    this.log('info', `agent ${agent.id} (${agent.name}) linked from ${address}`);
    void this.store.execute('UPDATE rtx_bridge_agents SET last_seen_at = ?, last_address = ? WHERE id = ?', [Date.now(), address.slice(0, 100), agent.id]);
    void this.#ctx.emit('rtxBridge.link.changed', { connected: true, agentId: agent.id }).catch(() => undefined);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let f: AgentFrame;
      try {
        f = JSON.parse(data.toString()) as AgentFrame;
      } catch {
        ws.close(CLOSE_PROTOCOL, 'frames must be JSON');
        return;
      }
      this.#onFrame(s, f).catch((err: Error) => this.log('error', `frame ${f.t}: ${err.message}`));
    });
    ws.on('close', () => {
      s.closed = true;
      if (this.#session === s) {
        this.#session = null;
        this.log('warn', `agent ${agent.id} disconnected`);
        // Unknown from now on; the agent sends everyone again when it is back.
        this.#rtxPresence.clear();
        void this.presence.update();
        void this.#ctx.emit('rtxBridge.link.changed', { connected: false, agentId: agent.id }).catch(() => undefined);
      }
      for (const w of this.#orgWaiters.values()) w.reject(new Error('the RTX agent disconnected during the sync'));
      this.#orgWaiters.clear();
    });
    ws.on('error', () => undefined);
  }

  async #onFrame(s: Session, f: AgentFrame): Promise<void> {
    switch (f.t) {
      case 'hello': {
        if (f.v !== LINK_PROTOCOL_VERSION) {
          s.ws.close(CLOSE_PROTOCOL, `link protocol ${f.v} is not supported; this bridge speaks ${LINK_PROTOCOL_VERSION}`);
          return;
        }
        s.hello = f;
        s.rtx = f.rtx;
        // The relay account is RTX's, but it is the bridge itself: never a person in Qiao.
        this.accounts.relayAccount = f.relayAccount;
        await this.store.setMeta('relayAccount', f.relayAccount);
        s.outSent = f.received;
        s.agentReceived = f.received;
        // Outcomes a crashed agent could not report: RTX had them, take them as delivered.
        await this.store.execute("UPDATE rtx_bridge_outbox SET status = 'delivered', delivered_at = ? WHERE status = 'pending' AND seq <= ?", [Date.now(), f.deliveredUpTo]);
        this.#send(s, { t: 'welcome', v: LINK_PROTOCOL_VERSION, agentId: s.agent.id, presenceIntervalMs: this.settings.presence.intervalSeconds * 1000 });
        void this.pumpOut();
        void this.#pushQiaoPresence();
        if (this.settings.sync.enabled && !(await this.store.getMeta('lastSyncOkAt'))) void this.runSync('first-link').catch(() => undefined);
        return;
      }
      case 'in':
        s.inChain = s.inChain
          .then(() => this.#processIn(s, f.n, f.item))
          .catch((err: Error) => {
            // Could not even record the failure (storage gone?): drop the link; the agent resends from the last ack.
            this.log('error', `RTX message ${f.n} could not be handled: ${err.message}; reconnecting the agent`);
            s.closed = true;
            s.ws.close(1011, 'inbound processing failed');
          });
        return;
      case 'received':
        s.agentReceived = Math.max(s.agentReceived, f.upTo);
        void this.pumpOut();
        return;
      case 'delivered':
        await this.#onDelivered(f.items);
        return;
      case 'org':
        this.#orgWaiters.get(f.runId)?.resolve(f);
        this.#orgWaiters.delete(f.runId);
        return;
      case 'presence':
        this.#onPresence(f.states, f.full);
        return;
      case 'health': {
        const hostWas = s.rtx.host;
        s.rtx = f.rtx;
        s.stats = f.stats;
        if ((hostWas === 'down') !== (f.rtx.host === 'down')) void this.presence.update();
        return;
      }
      case 'credResult':
        this.#credWaiters.get(f.id)?.resolve(f);
        this.#credWaiters.delete(f.id);
        return;
      default:
        return;
    }
  }

  // ---- RTX → Qiao ----------------------------------------------------------------------------------------------
  async #processIn(s: Session, n: number, item: InboundItem): Promise<void> {
    if (s.closed || n <= s.inDone) return;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.inbound.handle(item);
        break;
      } catch (err) {
        if (s.closed) return; // the agent sends it again on the next connection
        if (!isTransient(err) || attempt >= IN_RETRIES) {
          // Kept with its reason and the whole item; the admin sees it, retries run after each sync.
          await this.inbound.fail(item, `${(err as Error).message} (after ${attempt + 1} attempts)`);
          break;
        }
        await sleep(200 * 2 ** attempt);
      }
    }
    s.inDone = n;
    // Acknowledgements are coalesced: one frame for a run of messages handled back to back.
    setImmediate(() => {
      if (s.inDone === n) this.#send(s, { t: 'acked', upTo: n });
    });
  }

  // ---- Qiao → RTX ----------------------------------------------------------------------------------------------
  /** Called by the durable afterMessageStored hook, once per committed message, in commit order. */
  async onMessageStored(message: StoredMessage): Promise<void> {
    let state: 'pending' | 'skipped' | null;
    try {
      state = await this.outbox.write(message);
    } catch (err) {
      // Transient trouble: the host hands this message over again. Anything else would block every later
      // message for good, so it is recorded (visible in relay.failures) and passed.
      if (isTransient(err)) throw err;
      await this.store.execute(
        "INSERT INTO rtx_bridge_outbox (qiao_message_id, conversation_id, item, status, error, created_at) VALUES (?, ?, '{}', 'skipped', ?, ?) ON CONFLICT (qiao_message_id) DO NOTHING",
        [message.id, message.conversationId, `not relayed: ${(err as Error).message}`, Date.now()],
      );
      this.store.count('toRtx.skipped');
      return;
    }
    if (state === 'pending') void this.pumpOut();
  }

  async pumpOut(): Promise<void> {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        for (;;) {
          const s = this.#session;
          if (!s?.hello || s.closed || s.outSent - s.agentReceived >= OUT_WINDOW) break;
          const rows = await this.store.query<{ seq: number; item: string }>("SELECT seq, item FROM rtx_bridge_outbox WHERE status = 'pending' AND seq > ? ORDER BY seq LIMIT 200", [s.outSent]);
          if (!rows.length) break;
          for (const r of rows) {
            if (!this.#send(s, { t: 'out', seq: Number(r.seq), item: JSON.parse(r.item) })) break;
            s.outSent = Number(r.seq);
          }
        }
      } while (this.#pumpAgain);
    } catch (err) {
      this.log('error', `sending to the agent failed: ${(err as Error).message}`);
    } finally {
      this.#pumping = false;
    }
  }

  async #onDelivered(items: Array<{ seq: number; ok: boolean; error?: string; lossy?: boolean; viaRelay?: boolean }>): Promise<void> {
    const now = Date.now();
    const ok = items.filter((d) => d.ok);
    for (let i = 0; i < ok.length; i += 300) {
      const part = ok.slice(i, i + 300);
      await this.store.execute(`UPDATE rtx_bridge_outbox SET status = 'delivered', error = NULL, delivered_at = ? WHERE seq IN (${part.map(() => '?').join(', ')})`, [now, ...part.map((d) => d.seq)]);
    }
    for (const d of items) {
      if (d.ok && !d.lossy && !d.viaRelay) continue;
      await this.store.execute('UPDATE rtx_bridge_outbox SET status = ?, error = ?, lossy = ?, via_relay = ?, delivered_at = ? WHERE seq = ?', [
        d.ok ? 'delivered' : 'failed',
        d.error ?? null,
        d.lossy ? 1 : 0,
        d.viaRelay ? 1 : 0,
        now,
        d.seq,
      ]);
    }
    this.store.count('toRtx.delivered', ok.length);
    this.store.count('toRtx.failed', items.length - ok.length);
    this.store.count('toRtx.lossy', items.filter((d) => d.lossy).length);
    this.store.count('toRtx.viaRelay', items.filter((d) => d.viaRelay).length);
  }

  // ---- org sync ------------------------------------------------------------------------------------------------
  /** Runs a sync now (or joins the one running). */
  runSync(trigger: string, force = false): Promise<RunView> {
    return this.startSync(trigger, force).then((r) => r.done);
  }

  /** Starts a sync (or joins the one running); resolves once its run is recorded, with its id. */
  startSync(trigger: string, force = false): Promise<{ id: number; done: Promise<RunView> }> {
    if (this.#syncing) return this.#syncing;
    const started = (async () => {
      // Numbered here rather than by the database: SQLite through Sequelize cannot return the new id, and one
      // sync runs at a time.
      const [row] = await this.store.query<{ id: number | string }>('SELECT COALESCE(MAX(id), 0) + 1 AS id FROM rtx_bridge_sync_runs');
      const id = Number(row!.id);
      await this.store.execute("INSERT INTO rtx_bridge_sync_runs (id, trigger, status, started_at) VALUES (?, ?, 'running', ?)", [id, trigger, Date.now()]);
      const done = this.#sync(id, force).finally(() => {
        if (this.#syncing === started) this.#syncing = null;
      });
      return { id, done };
    })();
    this.#syncing = started;
    started.catch(() => {
      if (this.#syncing === started) this.#syncing = null;
    });
    return started;
  }

  async #sync(id: number, force: boolean): Promise<RunView> {
    const finish = async (status: string, counts: Partial<SyncCounts> & { hash?: string }, error: string | null) => {
      await this.store.execute(
        `UPDATE rtx_bridge_sync_runs SET status = ?, finished_at = ?, org_hash = ?, rtx_users = ?, added = ?, changed = ?, moved = ?, removed = ?, restored = ?,
         departments_added = ?, departments_removed = ?, skipped = ?, problems = ?, error = ? WHERE id = ?`,
        [
          status,
          Date.now(),
          counts.hash ?? null,
          counts.rtxUsers ?? null,
          counts.added ?? 0,
          counts.changed ?? 0,
          counts.moved ?? 0,
          counts.removed ?? 0,
          counts.restored ?? 0,
          counts.departmentsAdded ?? 0,
          counts.departmentsRemoved ?? 0,
          counts.skipped ?? 0,
          counts.problems?.length ? JSON.stringify(counts.problems.slice(0, 200)) : null,
          error,
          id,
        ],
      );
      return this.syncRun(id);
    };
    try {
      const s = this.#session;
      if (!s?.hello) return await finish('failed', {}, 'the RTX agent is not connected: start it (see the RTX 集成 page for a connection code)');
      const ifNotHash = force ? null : await this.store.getMeta('lastOrgHash');
      const answer = await new Promise<Extract<AgentFrame, { t: 'org' }>>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#orgWaiters.delete(id);
          reject(new Error(`the RTX agent did not send the organisation within ${this.settings.sync.timeoutSeconds} s`));
        }, this.settings.sync.timeoutSeconds * 1000);
        this.#orgWaiters.set(id, {
          resolve: (f) => (clearTimeout(timer), resolve(f)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        if (!this.#send(s, { t: 'orgRequest', runId: id, ifNotHash })) this.#orgWaiters.get(id)?.reject(new Error('the RTX agent disconnected'));
      });
      if (answer.status === 'error') return await finish('failed', {}, `the agent could not read RTX's organisation: ${answer.error}`);
      if (answer.status === 'unchanged') {
        await this.store.setMeta('lastSyncOkAt', String(Date.now()));
        return await finish('unchanged', { hash: answer.hash }, null);
      }
      const counts = await this.orgSync.apply(Buffer.from(answer.data ?? '', 'base64'), { batchSize: this.settings.sync.batchSize, maxRemovePercent: this.settings.sync.maxRemovePercent, force });
      // An export with people left out is fetched again next time, so they are retried.
      await this.store.setMeta('lastOrgHash', counts.skipped ? null : (answer.hash ?? null));
      await this.store.setMeta('lastSyncOkAt', String(Date.now()));
      this.inbound.forgetDepartments();
      // People just imported can now be shown with their RTX presence.
      void this.presence.update();
      const view = await finish(counts.skipped ? 'partial' : 'ok', { ...counts, hash: answer.hash }, null);
      void this.retryFailures().catch(() => undefined);
      return view;
    } catch (err) {
      const refused = err instanceof SyncRefused;
      this.log(refused ? 'warn' : 'error', `org sync ${id}: ${(err as Error).message}`);
      return finish(refused ? 'refused' : 'failed', {}, (err as Error).message);
    }
  }

  async syncRun(id: number): Promise<RunView> {
    const row = await this.store.one<Record<string, unknown>>('SELECT * FROM rtx_bridge_sync_runs WHERE id = ?', [id]);
    if (!row) throw bridgeError('QIAO_NOT_FOUND', 404, `there is no sync run ${id}`, 'id');
    return runView(row);
  }

  async syncHistory(limit: number): Promise<RunView[]> {
    return (await this.store.query<Record<string, unknown>>('SELECT * FROM rtx_bridge_sync_runs ORDER BY id DESC LIMIT ?', [limit])).map(runView);
  }

  /** Tries the RTX → Qiao items that could not be placed again (after a sync, or when an admin asks). */
  async retryFailures(): Promise<{ retried: number; stored: number; stillFailing: number; outboundRequeued: number }> {
    const rows = await this.store.query<{ id: string; item: string }>("SELECT id, item FROM rtx_bridge_inbound WHERE status = 'failed' ORDER BY received_at LIMIT 1000");
    let stored = 0;
    for (const r of rows) {
      try {
        if ((await this.inbound.handle(JSON.parse(r.item) as InboundItem, true)) === 'stored') stored++;
      } catch {
        /* transient: stays failed, tried again next time */
      }
    }
    // Outbound failures go back in the outbox under a new number (the agent has the old one already).
    const failed = await this.store.query<{ seq: number; qiao_message_id: number; conversation_id: string; item: string }>(
      "SELECT seq, qiao_message_id, conversation_id, item FROM rtx_bridge_outbox WHERE status = 'failed' ORDER BY seq LIMIT 1000",
    );
    for (const f of failed) {
      await this.store.execute('DELETE FROM rtx_bridge_outbox WHERE seq = ?', [f.seq]);
      await this.store.execute("INSERT INTO rtx_bridge_outbox (qiao_message_id, conversation_id, item, status, created_at) VALUES (?, ?, ?, 'pending', ?)", [
        f.qiao_message_id,
        f.conversation_id,
        f.item,
        Date.now(),
      ]);
    }
    if (failed.length) void this.pumpOut();
    return { retried: rows.length, stored, stillFailing: rows.length - stored, outboundRequeued: failed.length };
  }

  // ---- presence --------------------------------------------------------------------------------------------------
  #onPresence(states: Record<string, number>, full: boolean): void {
    const now = Date.now();
    const changes: Record<string, number> = {};
    // A full report names everyone RTX has: anyone else left RTX.
    if (full) {
      const named = new Set(Object.keys(states).map((a) => a.toLowerCase()));
      for (const key of [...this.#rtxPresence.keys()]) if (!named.has(key)) this.#rtxPresence.delete(key);
    }
    for (const [account, status] of Object.entries(states)) {
      const key = account.toLowerCase();
      if (this.#rtxPresence.get(key)?.status !== status) changes[account] = status;
      this.#rtxPresence.set(key, { account, status, at: now });
    }
    if (Object.keys(changes).length) void this.#ctx.emit('rtxBridge.presence.changed', { states: changes }).catch(() => undefined);
    void this.presence.update();
  }

  rtxPresence(accounts: string[]): Record<string, { status: number; at: string } | null> {
    return Object.fromEntries(
      accounts.map((a) => {
        const p = this.#rtxPresence.get(a.toLowerCase());
        return [a, p ? { status: p.status, at: new Date(p.at).toISOString() } : null];
      }),
    );
  }

  /** Who is online in Qiao, for RTX (the agent answers getstatus.php with it). Quiet until a presence service runs. */
  async #pushQiaoPresence(): Promise<void> {
    const s = this.#session;
    if (!s?.hello || this.#stopping) return;
    let online: number[];
    try {
      online = (await this.call<{ userIds: number[] }>('presence.online', {})).userIds ?? [];
      online = await this.presence.withoutOwnReports(online);
    } catch {
      return;
    }
    const uids: string[] = [];
    for (const id of online) {
      try {
        const r = await this.accounts.rtxOf(id);
        if (r.uid) uids.push(r.uid);
      } catch {
        /* a person removed meanwhile */
      }
    }
    this.#send(s, { t: 'qiaoPresence', online: uids });
  }

  // ---- admin -------------------------------------------------------------------------------------------------------
  async connectionCode(): Promise<{ code: string; expiresAt: string; linkUrl: string }> {
    const { code, expiresAt } = await issueCode(this.store, this.settings.codeTtlMinutes);
    const linkUrl = this.settings.publicUrl ?? `ws://<this server>:${this.port}`;
    return { code, expiresAt, linkUrl };
  }

  async revokeAgents(): Promise<{ revoked: number }> {
    const active = await this.store.query('SELECT id FROM rtx_bridge_agents WHERE revoked_at IS NULL');
    await this.store.execute('UPDATE rtx_bridge_agents SET revoked_at = ? WHERE revoked_at IS NULL', [Date.now()]);
    this.#session?.ws.close(CLOSE_REVOKED, 'an admin revoked this agent');
    return { revoked: active.length };
  }

  async setCredential(userId: number, password: string | null): Promise<{ account: string; stored: boolean }> {
    const { uid } = await this.accounts.rtxOf(userId);
    if (!uid) throw bridgeError('QIAO_VALIDATION', 422, `user ${userId} has no RTX account, so there is no RTX password to store`, 'userId');
    const s = this.#session;
    if (!s?.hello) throw bridgeError('QIAO_UNAVAILABLE', 503, 'the RTX agent is not connected; try again when the RTX 集成 page shows it linked');
    const id = this.#nextCred++;
    const result = await new Promise<{ ok: boolean; error?: string }>((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, error: 'the RTX agent did not answer within 15 s' }), 15_000);
      this.#credWaiters.set(id, { resolve: (r) => (clearTimeout(timer), resolve(r)) });
      this.#send(s, { t: 'cred', id, uid, password });
    });
    this.#credWaiters.delete(id);
    if (!result.ok) throw bridgeError('QIAO_VALIDATION', 422, result.error ?? 'refused', 'password');
    return { account: uid, stored: password !== null };
  }

  async mapAccount(uid: string, qiaoAccount: string): Promise<{ rtxAccount: string; qiaoAccount: string }> {
    const key = uid.toLowerCase();
    // Two RTX accounts feeding one Qiao account would overwrite each other's details at every sync.
    const clash = await this.store.one<{ uid: string }>('SELECT uid FROM rtx_bridge_users WHERE qiao_account_key = ? AND uid_key <> ? AND removed = 0', [qiaoAccount.toLowerCase(), key]);
    if (clash) throw bridgeError('QIAO_CONFLICT', 409, `the Qiao account "${qiaoAccount}" already belongs to the RTX account "${clash.uid}"; map that one to another account first`, 'qiaoAccount');
    // The next sync imports this person under the Qiao account given here.
    await this.store.execute(
      `INSERT INTO rtx_bridge_users (uid_key, uid, qiao_account, qiao_account_key, qiao_user_id, origin, fingerprint, removed, updated_at) VALUES (?, ?, ?, ?, NULL, 'manual', NULL, 0, ?)
       ON CONFLICT (uid_key) DO UPDATE SET qiao_account = excluded.qiao_account, qiao_account_key = excluded.qiao_account_key, qiao_user_id = NULL, origin = 'manual', fingerprint = NULL, updated_at = excluded.updated_at`,
      [key, uid, qiaoAccount, qiaoAccount.toLowerCase(), Date.now()],
    );
    await this.store.setMeta('lastOrgHash', null);
    this.accounts.reset();
    void this.presence.update();
    return { rtxAccount: uid, qiaoAccount };
  }

  async status() {
    const s = this.#session;
    const [outbox] = await this.store.query<{ pending: number | string; failed: number | string }>(
      "SELECT SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending, SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed FROM rtx_bridge_outbox",
    );
    const [inbound] = await this.store.query<{ failed: number | string }>("SELECT COUNT(*) AS failed FROM rtx_bridge_inbound WHERE status = 'failed'");
    const [agent] = await this.store.query<{ id: string; name: string; created_at: number; last_seen_at: number | null; last_address: string | null }>(
      'SELECT id, name, created_at, last_seen_at, last_address FROM rtx_bridge_agents WHERE revoked_at IS NULL ORDER BY created_at DESC LIMIT 1',
    );
    const [lastRun] = await this.syncHistory(1);
    const iso = (v: number | null | undefined) => (v === null || v === undefined ? null : new Date(Number(v)).toISOString());
    return {
      listen: { host: this.settings.listen.host, port: this.port },
      link: {
        connected: Boolean(s?.hello),
        agentId: s?.agent.id ?? null,
        agentName: s?.agent.name ?? null,
        agentVersion: s?.hello?.agent.version ?? null,
        address: s?.address ?? null,
        connectedAt: s ? new Date(s.connectedAt).toISOString() : null,
        rtx: s?.rtx ?? null,
        agentStats: s?.stats ?? null,
      },
      pairedAgent: agent ? { id: agent.id, name: agent.name, pairedAt: iso(agent.created_at), lastSeenAt: iso(agent.last_seen_at), lastAddress: agent.last_address } : null,
      relay: {
        pendingToRtx: Number(outbox?.pending ?? 0),
        failedToRtx: Number(outbox?.failed ?? 0),
        failedToQiao: Number(inbound?.failed ?? 0),
        counters: await this.store.counters(),
      },
      sync: {
        enabled: this.settings.sync.enabled,
        cron: this.settings.sync.cron,
        cronError: this.#cronError,
        running: this.#syncing !== null,
        last: lastRun ?? null,
      },
      presence: { rtxAccountsKnown: this.#rtxPresence.size, shownInQiao: this.presence.shown, error: this.presence.lastError },
      rtxMaxConversationMembers: 80,
    };
  }

  async failures(limit: number) {
    const toQiao = await this.store.query<{ id: string; error: string; item: string; updated_at: number }>(
      "SELECT id, error, item, updated_at FROM rtx_bridge_inbound WHERE status = 'failed' ORDER BY updated_at DESC LIMIT ?",
      [limit],
    );
    const toRtx = await this.store.query<{ seq: number; qiao_message_id: number; status: string; error: string; delivered_at: number | null; created_at: number }>(
      "SELECT seq, qiao_message_id, status, error, delivered_at, created_at FROM rtx_bridge_outbox WHERE status IN ('failed', 'skipped') ORDER BY seq DESC LIMIT ?",
      [limit],
    );
    return {
      toQiao: toQiao.map((r) => ({ id: r.id, error: r.error, item: JSON.parse(r.item), at: new Date(Number(r.updated_at)).toISOString() })),
      toRtx: toRtx.map((r) => ({ seq: Number(r.seq), qiaoMessageId: Number(r.qiao_message_id), status: r.status, error: r.error, at: new Date(Number(r.delivered_at ?? r.created_at)).toISOString() })),
    };
  }
}

export { bridgeError };
