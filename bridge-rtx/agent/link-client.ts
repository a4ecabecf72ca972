import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { CLOSE_REVOKED, LINK_PATH, PAIR_PATH, type AgentFrame, type PluginFrame } from '../plugin/link-protocol.ts';
import { readJsonFile, writeJsonFile } from './state-file.ts';

/**
 * The agent's one link to Qiao: pairs once (connection code → credential, kept in the state folder), then
 * holds an authenticated WebSocket and reconnects by itself, with pauses doubling up to `maxBackoffMs`,
 * whenever Qiao restarts or the network drops.
 */

export interface LinkClientOptions {
  /** ws://host:7035 (or wss://) — where the bridge plugin listens. */
  qiaoUrl: string;
  /** A connection code from the admin console; only needed until the agent has a credential. */
  code?: string;
  name: string;
  stateDir: string;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  onOpen(send: (f: AgentFrame) => boolean): void;
  onFrame(f: PluginFrame): void;
  onClose(reason: string): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

interface StoredCredential {
  qiaoUrl: string;
  agentId: string;
  credential: string;
}

export type LinkState = 'connecting' | 'open' | 'unauthorised' | 'stopped';

export class LinkClient {
  readonly #o: LinkClientOptions;
  readonly #file: string;
  #ws: WebSocket | null = null;
  #state: LinkState = 'connecting';
  #stopped = false;
  #wake: (() => void) | null = null;
  #lastError: string | null = null;
  #connectedAt: string | null = null;
  #loop: Promise<void> | null = null;

  constructor(o: LinkClientOptions) {
    this.#o = o;
    this.#file = path.join(o.stateDir, 'qiao-link.json');
  }

  get state(): LinkState {
    return this.#state;
  }

  get lastError(): string | null {
    return this.#lastError;
  }

  get connectedAt(): string | null {
    return this.#connectedAt;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  send(f: AgentFrame): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(f));
    return true;
  }

  /** Outstanding bytes on the socket: callers pause a flood until it drains. */
  get buffered(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#state = 'stopped';
    this.#ws?.terminate();
    this.#wake?.();
    await this.#loop;
  }

  #httpBase(): string {
    return this.#o.qiaoUrl.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/+$/, '');
  }

  #wsBase(): string {
    return this.#o.qiaoUrl.replace(/^http(s?):\/\//, 'ws$1://').replace(/\/+$/, '');
  }

  async #credential(): Promise<StoredCredential | null> {
    const stored = readJsonFile<StoredCredential>(this.#file);
    if (stored && stored.qiaoUrl === this.#o.qiaoUrl) return stored;
    if (!this.#o.code) {
      this.#state = 'unauthorised';
      this.#lastError = `no credential for ${this.#o.qiaoUrl} in ${this.#file}: start the agent once with --code <connection code from the admin console>`;
      return null;
    }
    const res = await fetch(`${this.#httpBase()}${PAIR_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: this.#o.code, name: this.#o.name }),
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await res.json().catch(() => ({}))) as { agentId?: string; credential?: string; message?: string };
    if (!res.ok || !body.agentId || !body.credential) {
      if (res.status >= 500) throw new Error(`pairing answered ${res.status}: ${body.message ?? ''}`);
      this.#state = 'unauthorised';
      this.#lastError = `the connection code was refused (${res.status}: ${body.message ?? 'no reason given'}); ask the admin console for a new one`;
      return null;
    }
    const cred = { qiaoUrl: this.#o.qiaoUrl, agentId: body.agentId, credential: body.credential };
    writeJsonFile(this.#file, cred);
    this.#o.log('info', `paired with ${this.#o.qiaoUrl} as agent ${cred.agentId}`);
    return cred;
  }

  async #run(): Promise<void> {
    const min = this.#o.minBackoffMs ?? 500;
    const max = this.#o.maxBackoffMs ?? 10_000;
    let pause = min;
    while (!this.#stopped) {
      this.#state = 'connecting';
      let opened = false;
      try {
        const cred = await this.#credential();
        if (cred) opened = await this.#connect(cred);
      } catch (err) {
        this.#lastError = (err as Error).message;
      }
      if (this.#stopped) break;
      pause = opened ? min : Math.min(pause * 2, max);
      // An agent without a valid credential waits longer: only an admin can fix it.
      const unauthorised = (this.#state as LinkState) === 'unauthorised';
      const wait = unauthorised ? Math.max(max, 30_000) : pause;
      if (unauthorised) this.#o.log('error', this.#lastError ?? 'not authorised');
      await Promise.race([sleep(wait, undefined, { ref: false }), new Promise<void>((r) => (this.#wake = r))]);
      this.#wake = null;
    }
  }

  /** One connection, from upgrade to close; true when it got as far as open. */
  #connect(cred: StoredCredential): Promise<boolean> {
    return new Promise((resolve) => {
      let opened = false;
      const ws = new WebSocket(`${this.#wsBase()}${LINK_PATH}`, {
        headers: { authorization: `Bearer ${cred.agentId}.${cred.credential}` },
        maxPayload: 512 * 1024 * 1024,
        handshakeTimeout: 15_000,
      });
      this.#ws = ws;
      let alive = true;
      const heartbeat = setInterval(() => {
        // A link that stopped answering pings is dead even if TCP has not noticed.
        if (!alive) return ws.terminate();
        alive = false;
        ws.ping();
      }, 15_000);
      heartbeat.unref();
      ws.on('pong', () => (alive = true));
      ws.on('unexpected-response', (_req, res) => {
        if (res.statusCode === 401 || res.statusCode === 403) {
          this.#state = 'unauthorised';
          this.#lastError = `Qiao refused the agent's credential (${res.statusCode}): pair again with a new connection code`;
          // A refused credential is useless; forget it so a new --code is used.
          writeJsonFile(this.#file, { revoked: cred.agentId });
        } else {
          this.#lastError = `Qiao answered ${res.statusCode} to the link upgrade`;
        }
        ws.terminate();
      });
      ws.on('open', () => {
        opened = true;
        this.#state = 'open';
        this.#lastError = null;
        this.#connectedAt = new Date().toISOString();
        this.#o.log('info', `linked to Qiao at ${this.#o.qiaoUrl}`);
        this.#o.onOpen((f) => this.send(f));
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        let frame: PluginFrame;
        try {
          frame = JSON.parse(data.toString()) as PluginFrame;
        } catch {
          this.#o.log('warn', 'ignored a frame that is not JSON');
          return;
        }
        try {
          this.#o.onFrame(frame);
        } catch (err) {
          this.#o.log('error', `handling ${frame.t} failed: ${(err as Error).message}`);
        }
      });
      ws.on('error', (err) => {
        this.#lastError = err.message;
      });
      ws.on('close', (code, reason) => {
        clearInterval(heartbeat);
        if (this.#ws === ws) this.#ws = null;
        if (code === CLOSE_REVOKED) {
          this.#state = 'unauthorised';
          this.#lastError = `Qiao revoked this agent (${reason.toString() || 'no reason'}): pair again with a new connection code`;
          writeJsonFile(this.#file, { revoked: cred.agentId });
        }
        if (opened) this.#o.onClose(`closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
        resolve(opened);
      });
    });
  }
}
