import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeXmlBytes, PRESENCE_BATCH_MAX } from '../emulator/index.ts';
import {
  LINK_PROTOCOL_VERSION,
  type AgentFrame,
  type AgentStats,
  type Delivery,
  type InboundItem,
  type InboundNotify,
  type OutboundIm,
  type PluginFrame,
  type RtxHealth,
} from '../plugin/link-protocol.ts';
import { CredentialStore } from './credentials.ts';
import { EchoFilter } from './echo-filter.ts';
import { bearerMatches, FEED_MAX_BYTES, parseFeedPost, readBody, sendText } from './feed-receiver.ts';
import { toGbkSafe } from './gbk-text.ts';
import { Journal, type JournalEntry } from './journal.ts';
import { LinkClient } from './link-client.ts';
import { RtxSdkClient, RtxUnavailable, type SdkOutcome } from './rtx-sdk-client.ts';
import { handleSdkProxy, type QueuedSdkCall } from './sdk-proxy.ts';

export const AGENT_VERSION = '0.1.0';

export type LogFn = (level: 'info' | 'warn' | 'error', message: string) => void;

export interface AgentOptions {
  /** ws://qiao-host:7035 — the bridge plugin's link port. */
  qiaoUrl: string;
  /** Connection code from the admin console; needed only until the agent holds a credential. */
  code?: string;
  name?: string;
  /** Journals, credential and RTX passwords live here. */
  stateDir: string;
  /** RTX's HTTP SDK, e.g. http://127.0.0.1:8012 */
  rtxSdkUrl: string;
  /** The RTX-host interface, e.g. http://127.0.0.1:18012/rtxhost/v1 */
  rtxHostUrl: string;
  rtxHostToken?: string;
  /** Source address of SDK calls (the address RTX's SDKProperty.xml must allow). */
  sdkLocalAddress?: string;
  /** Where the RTX host's filter forwarder POSTs (port 0 picks a free one). */
  feed?: { port?: number; bind?: string; token?: string };
  /** The SDK pages for OA/ERP systems (notifications, getstatus); off unless a port is given. */
  sdkProxy?: { port: number; bind?: string; allow?: string[] };
  /** An RTX account that relays for people whose own RTX password the agent does not hold. */
  relay?: { account: string; password: string };
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Presence polling; the plugin's welcome may set it. */
  presenceIntervalMs?: number;
  log?: LogFn;
}

export interface AgentStatus {
  link: { state: string; connectedAt: string | null; lastError: string | null };
  rtx: RtxHealth;
  stats: AgentStats;
  feedUrl: string;
  sdkProxyUrl: string | null;
}

type ToRtx = { seq: number; item: OutboundIm };
type ToQiao = InboundItem;

const EMPTY_STATS = (): AgentStats => ({ toRtxPending: 0, toQiaoPending: 0, feedReceived: 0, duplicatesDropped: 0, loopsPrevented: 0, notificationsRelayed: 0 });
/** How many RTX→Qiao entries may be in flight on the link before the plugin acknowledges. */
const IN_WINDOW = 256;

/** RTX's SDKProperty.xml refuses this agent's address: retried like an outage, reported differently. */
class IpLimited extends Error {}

export interface RtxAgent {
  feedUrl: string;
  sdkProxyUrl: string | null;
  status(): AgentStatus;
  /** Resolves when the link is open (tests, start-up scripts). */
  linked(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The agent beside the RTX server. It holds the one link to Qiao and three doors into RTX: the HTTP SDK for
 * sending (SendIM.cgi), the RTX-host interface for the organisation XML and presence, and the filter feed
 * for what RTX users send. Both directions go through a journal on disk first, so RTX or Qiao being down
 * only delays delivery; each journal is delivered in order and acknowledged entry by entry.
 */
export async function startAgent(o: AgentOptions): Promise<RtxAgent> {
  const log: LogFn = o.log ?? ((level, m) => console[level === 'info' ? 'log' : level](`[rtx-agent] ${m}`));
  fs.mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const toRtx = new Journal<ToRtx>(path.join(o.stateDir, 'to-rtx'));
  const toQiao = new Journal<ToQiao>(path.join(o.stateDir, 'to-qiao'));
  const sdkQueue = new Journal<QueuedSdkCall>(path.join(o.stateDir, 'sdk-calls'));
  const echoLog = path.join(o.stateDir, 'echoes.log');
  const creds = new CredentialStore(o.stateDir);
  const sdk = new RtxSdkClient({ url: o.rtxSdkUrl, localAddress: o.sdkLocalAddress });
  const echoes = new EchoFilter();
  const stats = EMPTY_STATS();
  const health: RtxHealth = { sdk: 'unknown', host: 'unknown', detail: null };
  const retryMin = o.retryMinMs ?? 500;
  const retryMax = o.retryMaxMs ?? 30_000;
  let presenceIntervalMs = o.presenceIntervalMs ?? 60_000;
  let stopping = false;
  const timers: NodeJS.Timeout[] = [];
  const wakers = new Set<() => void>();
  const wakeAll = () => wakers.forEach((w) => w());
  const nap = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      wakers.add(done);
    });

  // ---- what survives a restart ----------------------------------------------------------------------------
  // Echo registrations for sends whose echo has not come back yet, and the im_message_ids already handled.
  const seenEchoTokens = new Set<number>();
  const seenIds = new Set<string>();
  if (fs.existsSync(echoLog)) {
    for (const line of fs.readFileSync(echoLog, 'utf8').split('\n')) {
      const m = /^(\d+) (\S+)$/.exec(line);
      if (m) {
        seenEchoTokens.add(Number(m[1]));
        seenIds.add(m[2]!);
      }
    }
  }
  for (const e of toQiao.retained()) if (e.value.kind === 'im') seenIds.add(e.value.imMessageId);
  for (const e of toRtx.retained()) {
    if (e.n > toRtx.acked + 1 || seenEchoTokens.has(e.n)) continue;
    const plan = sendPlan(e.value.item);
    if (plan) echoes.expect(plan.sender, plan.key, plan.text, e.n, Date.parse(e.at));
  }
  /** Highest seq taken (for skipping repeats) and highest on disk (what Qiao is told). */
  let received = toRtx.retained().reduce((max, e) => Math.max(max, e.value.seq), 0);
  let durableReceived = received;
  const echoFd = fs.openSync(echoLog, 'a', 0o600);

  // ---- the link ------------------------------------------------------------------------------------------
  let inSentUpTo = 0;
  let unreported: Delivery[] = [];
  let presenceSent = new Map<string, number>();
  let qiaoOnline = new Set<string>();
  let rtxUids: string[] = [];

  const link = new LinkClient({
    qiaoUrl: o.qiaoUrl,
    code: o.code,
    name: o.name ?? 'rtx-agent',
    stateDir: o.stateDir,
    log,
    onOpen(send) {
      inSentUpTo = toQiao.acked;
      presenceSent = new Map();
      const deliveredUpTo = toRtx.get(toRtx.acked)?.value.seq ?? 0;
      send({ t: 'hello', v: LINK_PROTOCOL_VERSION, agent: { name: o.name ?? 'rtx-agent', version: AGENT_VERSION }, received: durableReceived, deliveredUpTo, relayAccount: o.relay?.account ?? null, rtx: { ...health } });
      flushDeliveries();
      pumpToQiao();
      wakeAll();
    },
    onClose(reason) {
      log('warn', `link to Qiao ${reason}; reconnecting`);
    },
    onFrame: (f) => onFrame(f),
  });

  function send(f: AgentFrame): boolean {
    return link.send(f);
  }

  function onFrame(f: PluginFrame): void {
    switch (f.t) {
      case 'welcome':
        if (f.presenceIntervalMs > 0) presenceIntervalMs = f.presenceIntervalMs;
        break;
      case 'out':
        onOut(f.seq, f.item);
        break;
      case 'acked':
        if (f.upTo > toQiao.acked && f.upTo <= toQiao.last) void toQiao.ack(f.upTo).catch((err: Error) => log('error', `journal: ${err.message}`));
        stats.toQiaoPending = toQiao.pending;
        pumpToQiao();
        break;
      case 'orgRequest':
        void answerOrg(f.runId, f.ifNotHash);
        break;
      case 'qiaoPresence':
        qiaoOnline = new Set(f.online.map((u) => u.toLowerCase()));
        break;
      case 'cred':
        void setCredential(f.id, f.uid, f.password);
        break;
      default:
        break;
    }
  }

  // Out items arrive in bursts; they are journaled together (one fsync) and acknowledged as received.
  let outBatch: ToRtx[] = [];
  function onOut(seq: number, item: OutboundIm): void {
    if (seq <= received || outBatch.some((b) => b.seq === seq)) return;
    outBatch.push({ seq, item });
    if (outBatch.length === 1) setImmediate(() => void flushOut().catch((err: Error) => log('error', `journal: ${err.message}`)));
  }
  async function flushOut(): Promise<void> {
    const batch = outBatch.sort((a, b) => a.seq - b.seq).filter((b) => b.seq > received);
    outBatch = [];
    if (!batch.length) return;
    received = batch[batch.length - 1]!.seq;
    await toRtx.append(batch);
    durableReceived = Math.max(durableReceived, batch[batch.length - 1]!.seq);
    stats.toRtxPending = toRtx.pending;
    // Only now is it safe for Qiao to stop resending these.
    send({ t: 'received', upTo: durableReceived });
    wakeAll();
  }

  function report(d: Delivery): void {
    unreported.push(d);
    if (unreported.length === 1) setTimeout(flushDeliveries, 20).unref();
  }
  function flushDeliveries(): void {
    if (!unreported.length) return;
    if (send({ t: 'delivered', items: unreported })) unreported = [];
  }

  function pumpToQiao(): void {
    while (inSentUpTo < toQiao.last && inSentUpTo - toQiao.acked < IN_WINDOW) {
      const e = toQiao.get(inSentUpTo + 1);
      if (!e) {
        inSentUpTo++;
        continue;
      }
      if (!send({ t: 'in', n: e.n, item: e.value })) return;
      inSentUpTo = e.n;
    }
  }

  async function journalForQiao(items: ToQiao[]): Promise<void> {
    await toQiao.append(items);
    stats.toQiaoPending = toQiao.pending;
    pumpToQiao();
  }

  // ---- Qiao → RTX ----------------------------------------------------------------------------------------
  /** Who sends, into which window, with what text: as the person when we hold their password, else relayed. */
  function sendPlan(item: OutboundIm): { sender: string; pwd: string; key: string; text: string; receivers: string[]; viaRelay: boolean; lossy: boolean } | null {
    const asPerson = item.sender !== null && creds.has(item.sender);
    if (!asPerson && !o.relay) return null;
    const safe = toGbkSafe(asPerson ? item.text : `【${item.senderName}】${item.text}`);
    return asPerson
      ? { sender: item.sender!, pwd: creds.get(item.sender!)!, key: item.key, text: safe.text, receivers: item.receivers, viaRelay: false, lossy: safe.lossy }
      : { sender: o.relay!.account, pwd: o.relay!.password, key: item.relayKey, text: safe.text, receivers: item.receivers, viaRelay: true, lossy: safe.lossy };
  }

  async function deliver(e: JournalEntry<ToRtx>): Promise<Delivery> {
    const { seq, item } = e.value;
    const plan = sendPlan(item);
    if (!plan) {
      return { seq, ok: false, error: `no RTX password for "${item.sender ?? item.senderName}" and no relay account configured (--relay-account)` };
    }
    echoes.expect(plan.sender, plan.key, plan.text, e.n);
    let outcome: SdkOutcome;
    try {
      outcome = await sdk.sendIm({ sender: plan.sender, pwd: plan.pwd, receivers: plan.receivers, msg: plan.text, sessionid: plan.key });
    } catch (err) {
      echoes.withdraw(plan.sender, plan.key, plan.text);
      throw err;
    }
    if (outcome.kind === 'ip-limited') {
      echoes.withdraw(plan.sender, plan.key, plan.text);
      throw new IpLimited(outcome.text);
    }
    if (outcome.kind === 'ok') return { seq, ok: true, lossy: plan.lossy, viaRelay: plan.viaRelay };
    echoes.withdraw(plan.sender, plan.key, plan.text);
    if (!plan.viaRelay && o.relay) {
      // The person's stored password no longer works (changed in RTX): relay instead, and say so in the log.
      log('warn', `SendIM as ${plan.sender} refused (${outcome.text}); relaying instead`);
      const relayed = toGbkSafe(`【${item.senderName}】${item.text}`);
      echoes.expect(o.relay.account, item.relayKey, relayed.text, e.n);
      const again = await sdk.sendIm({ sender: o.relay.account, pwd: o.relay.password, receivers: item.receivers, msg: relayed.text, sessionid: item.relayKey });
      if (again.kind === 'ok') return { seq, ok: true, lossy: relayed.lossy, viaRelay: true };
      echoes.withdraw(o.relay.account, item.relayKey, relayed.text);
      if (again.kind === 'ip-limited') throw new IpLimited(again.text);
      return { seq, ok: false, error: `RTX refused: ${again.text}` };
    }
    return { seq, ok: false, error: `RTX refused: ${outcome.text}` };
  }

  function rtxDown(err: unknown): void {
    const ip = err instanceof IpLimited;
    const next: RtxHealth['sdk'] = ip ? 'ip-limited' : 'down';
    const detail = ip ? `RTX refuses this agent's address: ${(err as Error).message} (allow it in SDKProperty.xml)` : (err as Error).message;
    if (health.sdk !== next || health.detail !== detail) {
      health.sdk = next;
      health.detail = detail;
      log('warn', `RTX SDK ${next}: ${detail}`);
      sendHealth();
    }
  }
  function rtxUp(): void {
    if (health.sdk !== 'up') {
      health.sdk = 'up';
      health.detail = null;
      log('info', 'RTX SDK up');
      sendHealth();
    }
  }

  async function toRtxLoop(): Promise<void> {
    let pause = retryMin;
    while (!stopping) {
      const e = toRtx.get(toRtx.acked + 1);
      if (!e) {
        await nap(1000);
        continue;
      }
      try {
        const d = await deliver(e);
        if (d.ok) rtxUp();
        await toRtx.ack(e.n);
        stats.toRtxPending = toRtx.pending;
        report(d);
        pause = retryMin;
      } catch (err) {
        if (!(err instanceof RtxUnavailable || err instanceof IpLimited)) log('error', `delivering ${e.value.seq} failed: ${(err as Error).message}`);
        rtxDown(err);
        await nap(pause);
        pause = Math.min(pause * 2, retryMax);
      }
    }
  }

  async function sdkQueueLoop(): Promise<void> {
    let pause = retryMin;
    while (!stopping) {
      const e = sdkQueue.get(sdkQueue.acked + 1);
      if (!e) {
        await nap(1000);
        continue;
      }
      try {
        const c = e.value;
        await sdk.request(c.method, c.target, c.body ? Buffer.from(c.body, 'base64') : undefined, c.contentType ?? undefined);
        await sdkQueue.ack(e.n);
        pause = retryMin;
      } catch (err) {
        rtxDown(err);
        await nap(pause);
        pause = Math.min(pause * 2, retryMax);
      }
    }
  }

  // ---- RTX → Qiao: the feed ------------------------------------------------------------------------------
  const feedServer = http.createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET' && req.url === '/health') return sendText(res, 200, JSON.stringify(status()));
      if (req.method !== 'POST') return sendText(res, 405, 'POST the RTXCData here');
      if (!bearerMatches(req, o.feed?.token)) return sendText(res, 401, 'Authorization: Bearer <feed token> is required');
      const body = await readBody(req, FEED_MAX_BYTES);
      if (!body) return sendText(res, 413, 'message too large');
      let item;
      try {
        item = parseFeedPost(req, body);
      } catch (err) {
        // A document we cannot read will not get better by retrying; take it and say so in the log.
        log('error', `feed: dropped an unreadable message (${(err as Error).message})`);
        return sendText(res, 200, 'unreadable; dropped');
      }
      stats.feedReceived++;
      if (seenIds.has(item.imMessageId)) {
        stats.duplicatesDropped++;
        return sendText(res, 200, 'duplicate');
      }
      const relayEcho = o.relay && item.sender.toLowerCase() === o.relay.account.toLowerCase();
      const token = relayEcho ? 0 : echoes.consume(item.sender, item.key, item.text);
      if (relayEcho || token !== null) {
        // Not fsynced: losing the last lines in a crash only means an echo seen again is matched again.
        fs.writeSync(echoFd, `${token ?? 0} ${item.imMessageId}\n`);
        seenIds.add(item.imMessageId);
        stats.loopsPrevented++;
        return sendText(res, 200, 'own relay; not sent back');
      }
      seenIds.add(item.imMessageId);
      try {
        await journalForQiao([item]);
      } catch (err) {
        seenIds.delete(item.imMessageId);
        throw err;
      }
      sendText(res, 200, 'stored');
    })().catch((err: Error) => {
      log('error', `feed: ${err.message}`);
      if (!res.headersSent) sendText(res, 500, err.message);
    });
  });
  const feedPort = await listen(feedServer, o.feed?.port ?? 7610, o.feed?.bind ?? '0.0.0.0');
  const feedUrl = `http://${hostOf(o.feed?.bind ?? '0.0.0.0')}:${feedPort}/rtx/feed`;

  // ---- the SDK pages for OA/ERP systems ------------------------------------------------------------------
  let proxyServer: http.Server | null = null;
  let sdkProxyUrl: string | null = null;
  if (o.sdkProxy) {
    const deps = {
      sdk,
      allow: o.sdkProxy.allow ?? [],
      qiaoOnline: (uid: string) => qiaoOnline.has(uid.toLowerCase()),
      relay: async (n: InboundNotify) => {
        await journalForQiao([n]);
        stats.notificationsRelayed++;
      },
      queueForRtx: async (c: QueuedSdkCall) => {
        await sdkQueue.append([c]);
        wakeAll();
      },
      log,
    };
    proxyServer = http.createServer((req, res) => {
      handleSdkProxy(deps, req, res).catch((err: Error) => {
        log('error', `sdk pages: ${err.message}`);
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    const port = await listen(proxyServer, o.sdkProxy.port, o.sdkProxy.bind ?? '0.0.0.0');
    sdkProxyUrl = `http://${hostOf(o.sdkProxy.bind ?? '0.0.0.0')}:${port}`;
  }

  // ---- the RTX-host interface: org XML, presence, health --------------------------------------------------
  async function host(pathname: string): Promise<Response> {
    return fetch(`${o.rtxHostUrl.replace(/\/+$/, '')}${pathname}`, {
      headers: o.rtxHostToken ? { authorization: `Bearer ${o.rtxHostToken}` } : {},
      signal: AbortSignal.timeout(120_000),
    });
  }

  async function answerOrg(runId: number, ifNotHash: string | null): Promise<void> {
    try {
      const res = await host('/org.xml');
      if (!res.ok) throw new Error(`the RTX-host interface answered ${res.status} for org.xml: ${(await res.text()).slice(0, 200)}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      const hash = createHash('sha256').update(bytes).digest('hex');
      rtxUids = uidsOf(bytes);
      if (ifNotHash === hash) send({ t: 'org', runId, status: 'unchanged', hash });
      else send({ t: 'org', runId, status: 'xml', hash, data: bytes.toString('base64') });
      void pollPresence();
    } catch (err) {
      send({ t: 'org', runId, status: 'error', error: (err as Error).message });
    }
  }

  async function loadUids(): Promise<void> {
    const res = await host('/org.xml');
    if (!res.ok) throw new Error(`org.xml answered ${res.status}`);
    rtxUids = uidsOf(Buffer.from(await res.arrayBuffer()));
  }

  let polling = false;
  async function pollPresence(): Promise<void> {
    if (polling || link.state !== 'open') return;
    polling = true;
    try {
      // Whom to ask about comes from the organisation; before the first sync, read it for that alone.
      if (!rtxUids.length) await loadUids();
      const changed: Record<string, number> = {};
      const full = presenceSent.size === 0;
      const next = new Map(presenceSent);
      for (let i = 0; i < rtxUids.length; i += PRESENCE_BATCH_MAX) {
        const batch = rtxUids.slice(i, i + PRESENCE_BATCH_MAX);
        const res = await host(`/presence?users=${batch.map(encodeURIComponent).join(',')}`);
        if (!res.ok) throw new Error(`presence answered ${res.status}`);
        const { states } = (await res.json()) as { states: Record<string, number> };
        for (const [uid, s] of Object.entries(states)) {
          if (full || presenceSent.get(uid) !== s) changed[uid] = s;
          next.set(uid, s);
        }
      }
      if (Object.keys(changed).length && send({ t: 'presence', states: changed, full })) presenceSent = next;
      health.host = 'up';
    } catch (err) {
      health.host = 'down';
      health.detail = (err as Error).message;
    } finally {
      polling = false;
    }
  }

  async function checkHost(): Promise<void> {
    try {
      const res = await host('/health');
      const body = (await res.json()) as { rtx?: string };
      const next: RtxHealth['host'] = res.ok && body.rtx === 'up' ? 'up' : 'down';
      if (next !== health.host) {
        health.host = next;
        sendHealth();
      }
    } catch (err) {
      if (health.host !== 'down') {
        health.host = 'down';
        health.detail = (err as Error).message;
        sendHealth();
      }
    }
  }

  async function setCredential(id: number, uid: string, password: string | null): Promise<void> {
    try {
      if (password !== null && !(await sdk.login(uid, password))) {
        send({ t: 'credResult', id, ok: false, error: `RTX did not accept that password for "${uid}" (Login.php answered false)` });
        return;
      }
      creds.set(uid, password);
      send({ t: 'credResult', id, ok: true });
    } catch (err) {
      send({ t: 'credResult', id, ok: false, error: `RTX could not check the password: ${(err as Error).message}` });
    }
  }

  function status(): AgentStatus {
    return {
      link: { state: link.state, connectedAt: link.connectedAt, lastError: link.lastError },
      rtx: { ...health },
      stats: { ...stats, toRtxPending: toRtx.pending, toQiaoPending: toQiao.pending },
      feedUrl,
      sdkProxyUrl,
    };
  }

  function sendHealth(): void {
    send({ t: 'health', rtx: { ...health }, stats: status().stats });
  }

  // ---- run ------------------------------------------------------------------------------------------------
  link.start();
  const loops = [toRtxLoop(), sdkQueueLoop()];
  let presenceDue = 0;
  timers.push(
    setInterval(() => {
      void checkHost();
      sendHealth();
      if (Date.now() >= presenceDue) {
        presenceDue = Date.now() + presenceIntervalMs;
        void pollPresence();
      }
    }, 1000),
  );
  timers.forEach((t) => t.unref());
  void checkHost();

  return {
    feedUrl,
    sdkProxyUrl,
    status,
    async linked(timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      while (link.state !== 'open') {
        if (Date.now() > until) throw new Error(`the agent did not link to Qiao within ${timeoutMs} ms (${link.state}: ${link.lastError ?? ''})`);
        await sleep(20);
      }
    },
    async stop() {
      stopping = true;
      timers.forEach((t) => clearInterval(t));
      wakeAll();
      await link.stop();
      await Promise.allSettled(loops);
      await Promise.all([close(feedServer), proxyServer ? close(proxyServer) : undefined]);
      sdk.close();
      fs.closeSync(echoFd);
      await Promise.all([toRtx.close(), toQiao.close(), sdkQueue.close()]);
    },
  };
}

/** The accounts in an organisation export (a light scan: presence needs only the names). */
function uidsOf(bytes: Buffer): string[] {
  return [...new Set([...decodeXmlBytes(bytes).matchAll(/<user\b[^>]*?\suid="([^"]*)"/g)].map((m) => unescapeXml(m[1]!)))];
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#\d+);/g, (_, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

function hostOf(bind: string): string {
  if (bind === '0.0.0.0' || bind === '::') return '127.0.0.1';
  return bind.includes(':') ? `[${bind}]` : bind;
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
