import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import moleculer from 'moleculer';
import type { LoadedManifest } from './manifest.ts';
import { serializeError, type HostToPlugin, type PluginRequest, type PluginToHost, type ReadyMessage, type SerializedError } from './ipc-protocol.ts';

const RUNNER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'runner.ts');

export interface PluginProcessOptions {
  pluginId: string;
  loaded: LoadedManifest;
  settings: Record<string, unknown>;
  dataDir: string;
  logLevel: string | false;
  databaseUrl: string | null;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  startTimeoutMs: number;
  /** Answers the plugin's requests (calls, cursor reads); the host checks permissions there. */
  onRequest(msg: PluginRequest): Promise<unknown>;
  onEmit(name: string, payload: unknown): void;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the host asked for it (stop/disable); false is a crash. */
  expected: boolean;
  reason: string;
}

function toError(e: SerializedError): Error {
  const err = new moleculer.Errors.MoleculerError(e.message, e.code ?? 500, e.type ?? 'PLUGIN_ERROR', e.data);
  err.name = e.name;
  return err;
}

/**
 * One running plugin: a child process on the same Node, watched by heartbeats. Emits `exit` once with
 * an ExitInfo; a new PluginProcess is made for every (re)start.
 */
export class PluginProcess extends EventEmitter {
  readonly options: PluginProcessOptions;
  ready: ReadyMessage | null = null;
  #child: ChildProcess | null = null;
  #nextId = 1;
  #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout | null }>();
  #heartbeat: NodeJS.Timeout | null = null;
  #lastPong = Date.now();
  #expectedExit = false;
  #killReason: string | null = null;
  #fatal: SerializedError | null = null;
  #exited: Promise<ExitInfo> | null = null;

  constructor(options: PluginProcessOptions) {
    super();
    this.options = options;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get alive(): boolean {
    return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Forks the process and resolves once the plugin says it is ready; rejects if it dies or stalls first. */
  start(): Promise<ReadyMessage> {
    const o = this.options;
    const execArgv = o.loaded.manifest.resources?.maxMemoryMb ? [`--max-old-space-size=${o.loaded.manifest.resources.maxMemoryMb}`] : [];
    const child = fork(RUNNER, [], {
      execPath: process.execPath,
      execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      cwd: o.loaded.dir,
      env: { ...process.env, QIAO_PLUGIN_ID: o.pluginId },
    });
    this.#child = child;
    this.#exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#stopHeartbeat();
        const reason = this.#killReason
          ?? (this.#fatal ? `crashed: ${this.#fatal.message}` : signal ? `killed by ${signal}` : `exited with code ${code}`);
        const info: ExitInfo = { code, signal, expected: this.#expectedExit, reason };
        for (const [, p] of this.#pending) {
          if (p.timer) clearTimeout(p.timer);
          p.reject(new moleculer.Errors.MoleculerError(`plugin ${o.pluginId} stopped (${reason})`, 503, 'QIAO_PLUGIN_UNAVAILABLE', { pluginId: o.pluginId }));
        }
        this.#pending.clear();
        resolve(info);
        this.emit('exit', info);
      });
    });
    child.on('error', () => undefined); // 'exit' follows and carries the story
    child.on('message', (msg: PluginToHost) => this.#onMessage(msg));

    const readyPromise = new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#killReason = `did not start within ${o.startTimeoutMs} ms`;
        child.kill('SIGKILL');
      }, o.startTimeoutMs);
      this.once('ready', (ready: ReadyMessage) => {
        clearTimeout(timer);
        resolve(ready);
      });
      void this.#exited!.then((info) => {
        clearTimeout(timer);
        reject(new Error(info.reason));
      });
    });

    this.#send({
      t: 'init',
      pluginId: o.pluginId,
      manifest: o.loaded.manifest,
      mainPath: o.loaded.mainPath,
      settings: o.settings,
      dataDir: o.dataDir,
      logLevel: o.logLevel,
      databaseUrl: o.databaseUrl,
    });
    return readyPromise;
  }

  #startHeartbeat(): void {
    this.#lastPong = Date.now();
    this.#heartbeat = setInterval(() => {
      if (Date.now() - this.#lastPong > this.options.heartbeatTimeoutMs) {
        this.#killReason = `did not answer heartbeats for ${this.options.heartbeatTimeoutMs} ms (hung)`;
        this.#child?.kill('SIGKILL');
        return;
      }
      this.#send({ t: 'ping', id: this.#nextId++ });
    }, this.options.heartbeatMs);
    this.#heartbeat.unref();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }

  #send(msg: HostToPlugin): void {
    const child = this.#child;
    if (!child || !child.connected) return;
    try {
      child.send(msg, (err) => {
        if (err) this.#failPending(err);
      });
    } catch (err) {
      this.#failPending(err as Error);
    }
  }

  #failPending(_err: Error): void {
    // The channel closed under us; the exit handler rejects whatever is pending.
  }

  #onMessage(msg: PluginToHost): void {
    switch (msg.t) {
      case 'ready':
        this.ready = msg;
        this.#startHeartbeat();
        this.emit('ready', msg);
        break;
      case 'pong':
        this.#lastPong = Date.now();
        break;
      case 'fatal':
        this.#fatal = msg.error;
        break;
      case 'emit':
        this.options.onEmit(msg.name, msg.payload);
        break;
      case 'result': {
        const p = this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id);
        if (p.timer) clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.value);
        else p.reject(toError(msg.error));
        break;
      }
      case 'call':
      case 'cursor':
      case 'read': {
        const id = msg.id;
        this.options
          .onRequest(msg)
          .then((value) => this.#send({ t: 'result', id, ok: true, value }))
          .catch((err) => this.#send({ t: 'result', id, ok: false, error: serializeError(err) }));
        break;
      }
      default:
        break;
    }
  }

  #request(msg: Record<string, unknown> & { t: 'call' | 'hook' }, timeoutMs: number | null): Promise<unknown> {
    if (!this.alive || !this.ready) {
      return Promise.reject(new moleculer.Errors.MoleculerError(`plugin ${this.options.pluginId} is not running`, 503, 'QIAO_PLUGIN_UNAVAILABLE', { pluginId: this.options.pluginId }));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = timeoutMs
        ? setTimeout(() => {
            this.#pending.delete(id);
            reject(new moleculer.Errors.MoleculerError(`plugin ${this.options.pluginId} did not answer within ${timeoutMs} ms`, 504, 'QIAO_PLUGIN_TIMEOUT', { pluginId: this.options.pluginId }));
          }, timeoutMs)
        : null;
      this.#pending.set(id, { resolve, reject, timer });
      this.#send({ ...msg, id } as unknown as HostToPlugin);
    });
  }

  call(action: string, params: unknown, meta: Record<string, unknown>, timeoutMs: number | null): Promise<unknown> {
    return this.#request({ t: 'call', action, params, meta }, timeoutMs);
  }

  hook(hook: 'beforeMessageStored', payload: unknown, timeoutMs: number): Promise<unknown> {
    return this.#request({ t: 'hook', hook, payload }, timeoutMs);
  }

  event(name: string, payload: unknown): void {
    this.#send({ t: 'event', name, payload });
  }

  wake(): void {
    this.#send({ t: 'wake' });
  }

  /** Asks the plugin to finish what it is doing and exit; kills it after `graceMs`. */
  async stop(graceMs = 5000): Promise<ExitInfo | null> {
    if (!this.#child || !this.#exited) return null;
    this.#expectedExit = true;
    if (!this.alive) return this.#exited;
    this.#send({ t: 'stop' });
    const timer = setTimeout(() => {
      this.#killReason = `did not stop within ${graceMs} ms`;
      this.#child?.kill('SIGKILL');
    }, graceMs);
    const info = await this.#exited;
    clearTimeout(timer);
    return info;
  }
}
