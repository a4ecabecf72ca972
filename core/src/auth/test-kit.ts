import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ServiceSchema } from 'moleculer';
import type { QiaoApp } from '../app.ts';
import { startTestApp, type TestApp } from '../../../test/support/test-app.ts';
import { createLicenceRig, type LicenceRig } from '../licence/licence-rig.ts';

export { rejectsWith } from '../im/test-helpers.ts';

export const SUPER = { admin: { id: 1, account: 'admin', role: 'super' } };
export const PASSWORD = 'Secret#2024';

export interface AuthApp extends TestApp {
  rig: LicenceRig;
  /** Calls `service.action` as the super-admin. */
  admin<T = any>(action: string, params?: object): Promise<T>;
  call<T = any>(action: string, params?: object): Promise<T>;
  /** Creates a person through the org directory and gives them a password (no forced change). */
  person(account: string, extra?: object, password?: string | null): Promise<number>;
  login<T = any>(account: string, password?: string, extra?: object): Promise<T>;
  /** Moves the auth service's clock (null: back to real time). */
  travel(to: Date | null): void;
}

/** The storage services plus auth and audit, on a throw-away data dir with a licence rig trusted. */
export async function startAuthApp(databaseUrl: string, opts: { services?: string[]; fixtures?: ServiceSchema[] } = {}): Promise<AuthApp> {
  const rigDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-auth-rig-'));
  const rig = createLicenceRig(rigDir);
  const app = await startTestApp(databaseUrl, opts.services ?? ['system', 'eventlog', 'org', 'licence', 'auth', 'audit'], { licenceTrustedKeyFiles: [rig.trustedKeyFile] }, 'qiao-auth-');
  for (const f of opts.fixtures ?? []) app.broker.createService(f);
  if (opts.fixtures?.length) await app.broker.waitForServices(opts.fixtures.map((f) => f.name));
  const stopApp = app.stop;
  const call = <T>(action: string, params: object = {}) => app.broker.call<T, object>(action, params, { timeout: 0 });
  const admin = <T>(action: string, params: object = {}) => app.broker.call<T, object>(action, params, { meta: SUPER, timeout: 0 });
  return Object.assign(app, {
    rig,
    admin,
    call,
    async person(account: string, extra: object = {}, password: string | null = PASSWORD) {
      const u = await admin<{ id: number }>('org.users.create', { account, name: account.toUpperCase(), ...extra });
      if (password !== null) await admin('auth.users.setPassword', { userId: u.id, password, mustChange: false });
      return u.id;
    },
    login<T>(account: string, password: string = PASSWORD, extra: object = {}) {
      return call<T>('auth.login', { account, password, deviceType: 'windows', deviceId: `pc-${account}`, ip: '10.0.0.5', ...extra });
    },
    travel(to: Date | null) {
      (app.broker.getLocalService('auth') as unknown as { now: () => Date }).now = to ? () => new Date(to) : () => new Date();
    },
    stop: async () => {
      await stopApp();
      fs.rmSync(rigDir, { recursive: true, force: true });
    },
  });
}

/** A stand-in SMS gateway: records what it was asked to send; `fail` makes it refuse. */
export function fixtureSms(sent: Array<{ mobile: string; text: string }>, state: { fail?: boolean } = {}): ServiceSchema {
  return {
    name: 'sms',
    actions: {
      send: {
        params: { mobile: 'string', text: 'string' },
        handler(ctx) {
          if (state.fail) throw new Error('SMS gateway is down');
          sent.push(ctx.params as { mobile: string; text: string });
          return { ok: true };
        },
      },
    },
  };
}

/** The code in the last SMS sent to `mobile`. */
export function lastCode(sent: Array<{ mobile: string; text: string }>, mobile: string): string {
  const m = [...sent].reverse().find((s) => s.mobile === mobile);
  const code = m && /(\d{6})/.exec(m.text);
  if (!code) throw new Error(`no SMS code was sent to ${mobile}`);
  return code[1];
}

/** Retries `check` until it stops throwing (events are asynchronous); rethrows the last failure. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

let listeners = 0;
/** Collects the broker events named while the app runs. */
export function listen(app: QiaoApp, names: string[]): Array<{ event: string; params: any }> {
  const seen: Array<{ event: string; params: any }> = [];
  app.broker.createService({
    name: `auth-test-listener-${++listeners}`,
    events: Object.fromEntries(names.map((n) => [n, (ctx: { params: unknown }) => void seen.push({ event: n, params: ctx.params })])),
  });
  return seen;
}
