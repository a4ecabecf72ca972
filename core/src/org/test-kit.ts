import { startTestApp, type TestApp } from '../../../test/support/test-app.ts';

export { rejectsWith } from '../im/test-helpers.ts';

/** What the admin API puts in `meta` for a signed-in super-admin. */
export const SUPER = { admin: { id: 1, account: 'admin', role: 'super' } };
export const PLAIN_ADMIN = { admin: { id: 2, account: 'helpdesk', role: 'admin' } };

export interface OrgApp extends TestApp {
  /** Calls an org action as the super-admin (or with the meta given). */
  org<T = any>(action: string, params?: object, meta?: object): Promise<T>;
}

/** Starts system, eventlog and org on a throw-away data dir; `stop()` also removes it. */
export async function startOrgApp(databaseUrl: string, services = ['system', 'eventlog', 'org']): Promise<OrgApp> {
  const app = await startTestApp(databaseUrl, services, {}, 'qiao-org-');
  return Object.assign(app, {
    org: <T>(action: string, params: object = {}, meta: object = SUPER) => app.broker.call<T, object>(`org.${action}`, params, { meta, timeout: 0 }),
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
