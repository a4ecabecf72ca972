/**
 * A whole bridge for tests and benchmarks, all real: a Qiao core with the plugin running in its own process
 * (the plugin-api harness), the RTX emulator on free ports, and an agent (in this process, or as its own
 * process when a test has to kill it), paired with a connection code the admin action issued.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServiceBroker } from 'moleculer';
import { startPluginTestCore, type PluginTestCore } from '@qiao/plugin-api/testing';
import { startAgent, type AgentOptions, type RtxAgent } from '../agent/agent.ts';
import { startRtxEmulator, type RtxEmulator, type RtxEmulatorOptions } from '../emulator/index.ts';
import { control } from '../emulator/test-support.ts';

export const PLUGIN_DIR = path.dirname(fileURLToPath(import.meta.url));
const AGENT_MAIN = path.resolve(PLUGIN_DIR, '../agent/main.ts');
export const HOST_TOKEN = 'host-token-for-tests';
export const FEED_TOKEN = 'feed-token-for-tests';
export const RELAY = { account: 'qiao-relay', password: 'relay-pass' };

export interface BridgeRig {
  core: PluginTestCore;
  rtx: RtxEmulator;
  agent: RtxAgent | null;
  stateDir: string;
  port: number;
  call<T = any>(action: string, params?: object): Promise<T>;
  /** Issues a connection code and starts an in-process agent with it. */
  startAgent(extra?: Partial<AgentOptions>): Promise<RtxAgent>;
  /** The agent as its own process (`npx node bridge-rtx/agent/main.ts …`), for kill tests. */
  spawnAgent(extra?: string[]): Promise<AgentProcess>;
  sync(force?: boolean): Promise<any>;
  /** Qiao user id of an account. */
  userId(account: string): Promise<number>;
  stop(): Promise<void>;
}

export interface AgentProcess {
  child: ChildProcess;
  feedUrl: string;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export const quiet = () => undefined;

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startBridgeRig(opts: {
  databaseUrl: string;
  /** Plugin settings; a function when they depend on the emulator's ports. */
  settings?: Record<string, unknown> | ((rtx: RtxEmulator) => Record<string, unknown>);
  rtx?: RtxEmulatorOptions;
  port?: number;
}): Promise<BridgeRig> {
  const rtx = await startRtxEmulator({ port: 0, hostPort: 0, hostToken: HOST_TOKEN, feedRetryInitialMs: 20, feedRetryMaxMs: 200, ...opts.rtx });
  // The relay account exists in RTX like any other account; the agent sends as it for Qiao-only people.
  await control(rtx, 'POST', '/users', { uid: RELAY.account, name: 'Qiao', password: RELAY.password, departments: [] });
  const extra = typeof opts.settings === 'function' ? opts.settings(rtx) : opts.settings;
  const settings = { listen: { host: '127.0.0.1', port: opts.port ?? 0 }, presence: { intervalSeconds: 1 }, ...extra };
  const core = await startPluginTestCore({ pluginDir: PLUGIN_DIR, databaseUrl: opts.databaseUrl, settings });
  const broker = core.app.broker as unknown as ServiceBroker;
  const call = <T>(action: string, params: object = {}) => broker.call(action, params, { timeout: 0 }) as Promise<T>;
  const port = (await call<{ listen: { port: number } }>('rtxBridge.status')).listen.port;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-rtx-agent-'));
  const rig: BridgeRig = {
    core,
    rtx,
    agent: null,
    stateDir,
    port,
    call,
    async startAgent(extra = {}) {
      const { code } = await call<{ code: string }>('rtxBridge.connectionCode.create');
      const agent = await startAgent({
        qiaoUrl: `ws://127.0.0.1:${port}`,
        code,
        name: 'test agent',
        stateDir,
        rtxSdkUrl: rtx.url,
        rtxHostUrl: rtx.hostUrl,
        rtxHostToken: HOST_TOKEN,
        feed: { port: 0, bind: '127.0.0.1', token: FEED_TOKEN },
        sdkProxy: { port: 0, bind: '127.0.0.1' },
        relay: RELAY,
        retryMinMs: 20,
        retryMaxMs: 200,
        presenceIntervalMs: 100,
        log: quiet,
        ...extra,
      });
      rtx.feed.configure(agent.feedUrl, FEED_TOKEN);
      await agent.linked();
      rig.agent = agent;
      return agent;
    },
    async spawnAgent(extra = []) {
      const { code } = await call<{ code: string }>('rtxBridge.connectionCode.create');
      return spawnAgentProcess(rig, code, extra);
    },
    sync: (force = false) => call('rtxBridge.sync.run', { force }),
    async userId(account) {
      const u = await call<{ id: number }>('org.users.byAccount', { account });
      return Number(u.id);
    },
    async stop() {
      await rig.agent?.stop().catch(() => undefined);
      await core.stop().catch(() => undefined);
      await rtx.stop();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return rig;
}

export async function spawnAgentProcess(rig: BridgeRig, code: string | undefined, extra: string[] = []): Promise<AgentProcess> {
  const args = [
    AGENT_MAIN,
    '--qiao',
    `ws://127.0.0.1:${rig.port}`,
    ...(code ? ['--code', code] : []),
    '--state-dir',
    rig.stateDir,
    '--rtx-sdk',
    rig.rtx.url,
    '--rtx-host',
    rig.rtx.hostUrl,
    '--rtx-host-token',
    HOST_TOKEN,
    '--feed-port',
    '0',
    '--feed-bind',
    '127.0.0.1',
    '--feed-token',
    FEED_TOKEN,
    '--relay-account',
    RELAY.account,
    '--relay-password',
    RELAY.password,
    ...extra,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const feedUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the agent process did not start: ${out}`)), 20_000);
    const check = () => {
      const m = /feed at (http:\/\/\S+?)[,;]/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (c) => reject(new Error(`the agent process exited (${c}): ${out}`)));
  });
  rig.rtx.feed.configure(feedUrl, FEED_TOKEN);
  return {
    child,
    feedUrl,
    output: () => out,
    kill: (signal = 'SIGKILL') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}

export interface AdminApi {
  /** e.g. http://127.0.0.1:<port>; routes are under /api/admin. */
  base: string;
  /** A signed-in admin of role `admin` (not super): every RTX 集成 action must work for them. */
  token: string;
  http<T = any>(method: string, path: string, opts?: { token?: string | null; body?: unknown }): Promise<{ status: number; body: T }>;
}

/**
 * The admin HTTP API (koa, /api/admin) on the rig's broker, on a free port, with an ordinary admin signed in:
 * the way the RTX 集成 page and the `qiao` CLI reach the bridge.
 */
export async function startAdminApi(rig: BridgeRig): Promise<AdminApi> {
  const { default: adminApiService } = await import('@qiao/core/admin-api/admin-api.service.ts');
  const broker = rig.core.app.broker as unknown as ServiceBroker;
  const config = rig.core.app.config as Record<string, unknown>;
  broker.createService(adminApiService({ config: { ...config, admin: { host: '127.0.0.1', port: 0 } } as never, db: null }));
  await broker.waitForServices(['admin-api'], 10_000);
  const base = (await rig.call<{ url: string }>('admin-api.address')).url;
  const account = `rtx-admin-${process.pid}`;
  const password = 'rtx-admin-password';
  await rig.call('system.admins.create', { account, password, role: 'admin' });
  const http: AdminApi['http'] = async (method, p, opts = {}) => {
    const headers: Record<string, string> = {};
    const token = opts.token === undefined ? api.token : opts.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(base + p, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const api: AdminApi = { base, token: '', http };
  const login = await http<{ token: string }>('POST', '/api/admin/login', { token: null, body: { account, password } });
  if (login.status !== 200) throw new Error(`admin login failed: ${JSON.stringify(login.body)}`);
  api.token = login.body.token;
  return api;
}

/** RTX people for tests: `uid` with password `<uid>-pw`, in the departments given. */
export async function addRtxUsers(rtx: RtxEmulator, users: Array<{ uid: string; name?: string; departments?: string[]; presence?: number }>): Promise<void> {
  for (const u of users) {
    await control(rtx, 'POST', '/users', { uid: u.uid, name: u.name ?? u.uid, password: `${u.uid}-pw`, departments: u.departments ?? ['公司'], ...(u.presence !== undefined ? { presence: u.presence } : {}) });
  }
}

/** Polls until `check` stops throwing (a safety net for asynchronous relays, not a speed assertion). */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
