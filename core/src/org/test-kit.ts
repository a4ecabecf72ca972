import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startQiao, type QiaoApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import type { Database } from '../db/database.ts';

export { rejectsWith } from '../im/test-helpers.ts';

/** What the admin API puts in `meta` for a signed-in super-admin. */
export const SUPER = { admin: { id: 1, account: 'admin', role: 'super' } };
export const PLAIN_ADMIN = { admin: { id: 2, account: 'helpdesk', role: 'admin' } };

export interface OrgApp extends QiaoApp {
  db: Database;
  dataDir: string;
  /** Calls an org action as the super-admin (or with the meta given). */
  org<T = any>(action: string, params?: object, meta?: object): Promise<T>;
}

/** Starts system, eventlog and org on a throw-away data dir; `stop()` also removes it. */
export async function startOrgApp(databaseUrl: string, services = ['system', 'eventlog', 'org']): Promise<OrgApp> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-org-'));
  const app = await startQiao(
    loadConfig(process.env, {
      dataDir,
      databaseUrl,
      logLevel: false,
      transporter: null,
      gateway: { port: 0 },
      admin: { port: 0 },
      pluginsFile: path.join(dataDir, 'plugins.json'),
      services,
    }),
  );
  const stopApp = app.stop;
  return Object.assign(app, {
    db: app.db!,
    dataDir,
    org: <T>(action: string, params: object = {}, meta: object = SUPER) => app.broker.call<T, object>(`org.${action}`, params, { meta, timeout: 0 }),
    stop: async () => {
      await stopApp();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

/** Creates a department tree from a nested description; returns name → id. */
export async function buildTree(app: OrgApp, spec: Record<string, object>, parentId: number | null = null, out: Record<string, number> = {}): Promise<Record<string, number>> {
  for (const [name, children] of Object.entries(spec)) {
    const d = await app.org<{ id: number }>('departments.create', { name, parentId });
    out[name] = d.id;
    await buildTree(app, children as Record<string, object>, d.id, out);
  }
  return out;
}

export async function addUser(app: OrgApp, account: string, departmentIds: number[] = [], extra: object = {}): Promise<number> {
  const u = await app.org<{ id: number }>('users.create', { account, name: account.toUpperCase(), departments: departmentIds.map((departmentId) => ({ departmentId })), ...extra });
  return u.id;
}
