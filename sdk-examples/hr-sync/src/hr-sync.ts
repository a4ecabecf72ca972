import fs from 'node:fs';
import { credentialsFromEnv, isMain, YouduClient, YouduError, type AppCredentials, type Dept, type User } from '../../client/src/index.ts';

/**
 * An HR system keeping Qiao's org chart equal to its own, through the org app (sysOrgAssistant).
 * `syncIncremental` compares and sends only the differences (departments top-down, people, then removals
 * bottom-up); `syncReplaceAll` sends the whole chart as one org replace-all job and waits for its result.
 */
export interface HrSnapshot {
  departments: Dept[];
  people: User[];
}

export interface SyncReport {
  departments: { created: number; updated: number; deleted: number };
  people: { created: number; updated: number; deleted: number };
}

async function allDepts(c: YouduClient): Promise<Dept[]> {
  const out: Dept[] = [];
  const walk = async (id: number) => {
    for (const d of await c.get<{ deptList: Dept[] }>('/cgi/dept/listchildren', { id }).then((r) => r!.deptList)) {
      out.push(d);
      await walk(d.id);
    }
  };
  await walk(0);
  return out;
}

export async function syncIncremental(app: AppCredentials, hr: HrSnapshot): Promise<SyncReport> {
  const c = new YouduClient(app);
  const report: SyncReport = { departments: { created: 0, updated: 0, deleted: 0 }, people: { created: 0, updated: 0, deleted: 0 } };
  const current = new Map((await allDepts(c)).map((d) => [d.id, d]));
  const placed = new Set<number>([0]);
  const pending = [...hr.departments];
  while (pending.length) {
    const i = pending.findIndex((d) => placed.has(d.parentId));
    if (i < 0) throw new Error('the HR chart has departments whose parent is missing');
    const d = pending.splice(i, 1)[0];
    const cur = current.get(d.id);
    if (!cur) {
      await c.createDept(d);
      report.departments.created++;
    } else if (cur.name !== d.name || cur.parentId !== d.parentId || (d.sortId !== undefined && cur.sortId !== d.sortId) || (d.alias ?? '') !== (cur.alias ?? '')) {
      await c.updateDept(d);
      report.departments.updated++;
    }
    placed.add(d.id);
  }
  const wantedIds = new Set(hr.departments.map((d) => d.id));
  const people = new Map<string, User>();
  for (const id of current.keys()) for (const u of await c.listUsers(id)) people.set(u.userId, u);
  for (const p of hr.people) {
    const cur = people.get(p.userId) ?? (await c.getUser(p.userId).catch((e: YouduError) => (e.errcode === 300225 ? null : Promise.reject(e))));
    if (!cur) {
      await c.createUser(p);
      report.people.created++;
    } else if (cur.name !== p.name || cur.gender !== p.gender || (cur.mobile ?? '') !== (p.mobile ?? '') || (cur.email ?? '') !== (p.email ?? '') || [...cur.dept].sort().join() !== [...p.dept].sort().join()) {
      await c.updateUser(p);
      report.people.updated++;
    }
  }
  const keep = new Set(hr.people.map((p) => p.userId));
  for (const u of people.keys()) {
    if (!keep.has(u)) {
      await c.deleteUser(u);
      report.people.deleted++;
    }
  }
  const depth = (d: Dept): number => (d.parentId === 0 ? 0 : 1 + depth(current.get(d.parentId) ?? { id: 0, name: '', parentId: 0 }));
  for (const d of [...current.values()].filter((x) => !wantedIds.has(x.id)).sort((a, b) => depth(b) - depth(a))) {
    await c.deleteDept(d.id);
    report.departments.deleted++;
  }
  return report;
}

export async function syncReplaceAll(app: AppCredentials, hr: HrSnapshot, opts: { pollMs?: number; timeoutMs?: number } = {}): Promise<{ jobId: string; result: number; desc: string }> {
  const c = new YouduClient(app);
  const jobId = await c.replaceAll({ deptList: hr.departments, userList: hr.people });
  const until = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    const r = await c.jobResult(jobId);
    if (r.result !== 1) return { jobId, result: r.result, desc: r.desc };
    if (Date.now() > until) throw new Error(`job ${jobId} still running after ${opts.timeoutMs ?? 120_000} ms`);
    await new Promise((x) => setTimeout(x, opts.pollMs ?? 500));
  }
}

if (isMain(import.meta.url)) {
  // node hr-sync/src/hr-sync.ts chart.json [--replace-all]   (YOUDU_* env of sysOrgAssistant)
  const chart = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as HrSnapshot;
  const app = credentialsFromEnv();
  console.log(process.argv.includes('--replace-all') ? await syncReplaceAll(app, chart) : await syncIncremental(app, chart));
}
