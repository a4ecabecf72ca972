import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const QIAO_BIN = path.join(ROOT, 'core', 'bin', 'qiao.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A port nobody listens on right now (the OS picks it, then we let go of it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A throw-away installation: its own data dir and plugins.json, storage at `databaseUrl`, free ports. */
export async function cliEnv(databaseUrl: string, extra: Record<string, string> = {}): Promise<{ env: NodeJS.ProcessEnv; dataDir: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-cli-'));
  const pluginsFile = path.join(dataDir, 'plugins.json');
  fs.writeFileSync(pluginsFile, '{ "plugins": [] }\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    QIAO_DATA_DIR: dataDir,
    QIAO_PLUGINS_FILE: pluginsFile,
    DATABASE_URL: databaseUrl,
    QIAO_ADMIN_PORT: String(await freePort()),
    QIAO_GATEWAY_PORT: String(await freePort()),
    QIAO_ADMIN_HOST: '127.0.0.1',
    QIAO_HOST: '127.0.0.1',
    QIAO_LOG_LEVEL: 'warn',
    ...extra,
  };
  delete env.QIAO_ADMIN_URL;
  delete env.QIAO_ADMIN_TOKEN;
  delete env.QIAO_SERVICES;
  return { env, dataDir };
}

export function spawnQiao(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [QIAO_BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs `qiao …` to completion. */
export function runQiao(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnQiao(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A long-running `qiao start`: resolves once the banner is out, with the output so far kept current. */
export class RunningQiao {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawnQiao(['start', ...args], env);
    this.child.stdout!.on('data', (d) => (this.stdout += d));
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  async ready(): Promise<void> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (!this.stdout.includes('Press Ctrl+C to stop.')) {
      if (exited) throw new Error(`qiao start exited with ${this.child.exitCode} before its banner:\n${this.stdout}\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}
