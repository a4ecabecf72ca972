import { QiaoClient, type ClientOptions, type DeviceType } from '@qiao/client';
import { PASSWORD, startAuthApp, type AuthApp } from '../../auth/test-kit.ts';

export const CLIENT_SERVICES = ['system', 'eventlog', 'org', 'licence', 'auth', 'audit', 'im', 'presence', 'gateway'];

export interface ClientApp extends AuthApp {
  /** The gateway's base URL. */
  base: string;
  /**
   * Creates a person (once) and logs them in from a device of `deviceType` (id `<type>-<account>`): a client
   * holding that session's token. One session per device type: logging in again replaces the last one.
   */
  user(account: string, deviceType?: DeviceType, options?: Partial<ClientOptions>): Promise<Person>;
  /** A raw HTTP call; the body is parsed as JSON when it is. */
  http(method: string, path: string, opts?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
}

export interface Person {
  id: number;
  account: string;
  token: string;
  sessionId: number;
  client: QiaoClient;
}

/** The platform with the gateway, on a throw-away data dir, for client-API and SDK tests. */
export async function startClientApp(url: string, services = CLIENT_SERVICES): Promise<ClientApp> {
  const app = await startAuthApp(url, { services });
  const base = (await app.call<{ url: string }>('gateway.address')).url;
  const ids = new Map<string, number>();
  return Object.assign(app, {
    base,
    async user(account: string, deviceType: DeviceType = 'windows', options: Partial<ClientOptions> = {}): Promise<Person> {
      if (!ids.has(account)) ids.set(account, await app.person(account));
      const client = await QiaoClient.login({ baseUrl: base, ...options }, { account, password: PASSWORD, deviceType, deviceId: `${deviceType}-${account}` });
      const me = await client.me();
      return { id: ids.get(account)!, account, token: client.token!, sessionId: me.sessionId, client };
    },
    async http(method: string, path: string, opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      const body = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      const res = await fetch(base + path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // Not JSON: keep the text.
      }
      return { status: res.status, body: parsed as any, headers: res.headers };
    },
  });
}

/** Polls `probe` until it is truthy (or fails after `ms`). */
export async function until<T>(what: string, probe: () => T | Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
