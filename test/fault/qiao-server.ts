import fs from 'node:fs';
import path from 'node:path';
import { cliEnv, RunningQiao } from '../cli/cli-harness.ts';

export const PASSWORD = 'Fault#2024pw';

/**
 * `qiao start` as a child process on its own data dir and ports, with the admin API reached through the
 * local CLI token, so a test can kill it (-9), start it again on the same storage and ports, and set up
 * people the way an admin would.
 */
export class QiaoServer {
  readonly env: NodeJS.ProcessEnv;
  readonly dataDir: string;
  process: RunningQiao | null = null;

  private constructor(env: NodeJS.ProcessEnv, dataDir: string) {
    this.env = env;
    this.dataDir = dataDir;
  }

  static async create(databaseUrl: string, extra: Record<string, string> = {}): Promise<QiaoServer> {
    const { env, dataDir } = await cliEnv(databaseUrl, { QIAO_LOG_LEVEL: 'error', ...extra });
    return new QiaoServer(env, dataDir);
  }

  get base(): string {
    return `http://127.0.0.1:${this.env.QIAO_GATEWAY_PORT}`;
  }

  async start(): Promise<void> {
    const p = new RunningQiao([], this.env);
    this.process = p;
    await p.ready();
  }

  /** kill -9: no shutdown, no flush, sockets torn down by the kernel. */
  async kill(): Promise<void> {
    const p = this.process;
    this.process = null;
    if (!p) return;
    p.child.kill('SIGKILL');
    await p.exited;
  }

  async stop(): Promise<void> {
    const p = this.process;
    this.process = null;
    await p?.stop();
  }

  async remove(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Calls the admin API as the local CLI (the token the running server wrote into its data dir). */
  async admin<T = any>(method: string, route: string, body?: unknown): Promise<T> {
    const token = fs.readFileSync(path.join(this.dataDir, 'cli.token'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${this.env.QIAO_ADMIN_PORT}/api/admin${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  /** A person who can log in with PASSWORD. */
  async person(account: string): Promise<number> {
    const { id } = await this.admin<{ id: number }>('POST', '/org/users', { account, name: account });
    await this.admin('POST', `/auth/users/${id}/password`, { password: PASSWORD, mustChange: false });
    return id;
  }
}
