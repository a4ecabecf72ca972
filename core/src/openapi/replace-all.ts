import { randomBytes } from 'node:crypto';
import type { Context } from 'moleculer';
import type { Database } from '../db/database.ts';
import { ORG_WRITE, type CgiRequest, type CgiRoute } from './cgi.ts';
import { departments, type OrgDepartment, type OrgUser } from './cgi-org.ts';
import { jsonCast, rows, run } from './app-store.ts';
import { cgiError, ERRCODE, fromQiaoError } from './errcodes.ts';
import { absent, obj, optInt, optString } from './params.ts';

/**
 * Org full replace (全量覆盖, docs/api/c01_00016.md): the request is checked whole before a job is
 * created, so a bad request writes nothing; the job then makes the directory equal the request and
 * reports through `/cgi/getjobresult` and, when asked, a signed callback.
 *
 * The job runs as steps over the org service's actions (departments in one lossless import, then people,
 * then removals). A step that fails leaves the earlier steps applied and the job failed (result 4), its
 * reason in `desc`; running the same request again finishes it.
 */
export const JOB_RUNNING = 1;
export const JOB_EXISTS = 2;
export const JOB_DONE = 3;
export const JOB_FAILED = 4;

/** Anything with the broker's `call`: an action's context, or the broker itself for background jobs. */
export type Caller = Pick<Context, 'call'>;

interface PlanDept {
  id: number;
  parentId: number;
  name: string;
  sortId: number;
  alias: string | null;
}

interface PlanUser {
  userId: string;
  name: string;
  gender: 'male' | 'female';
  mobile: string | null;
  phone: string | null;
  email: string | null;
  authType: 'password' | 'external' | undefined;
  departments: Array<{ departmentId: number; position: string | null; weight: number }>;
}

export interface ReplacePlan {
  depts: PlanDept[] | null;
  users: PlanUser[];
  callback: { url: string; token: string | null } | null;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkPlan(p: Record<string, unknown>, existingDeptIds: Set<number>): ReplacePlan {
  let depts: PlanDept[] | null = null;
  if (!absent(p.deptList)) {
    if (!Array.isArray(p.deptList)) throw cgiError('ERRCODE_INVALID_FORMAT_DEPTLIST', 'deptList must be an array');
    depts = p.deptList.map((d, i) => {
      if (!isObj(d)) throw cgiError('ERRCODE_INVALID_FORMAT_DEPT', `deptList[${i}] must be an object`);
      const at = (m: string) => `deptList[${i}]: ${m}`;
      if (absent(d.id)) throw cgiError('ERRCODE_MISS_DEPTID', at('id is missing'));
      const id = optInt(d, 'id', 'ERRCODE_INVALID_FORMAT_DEPTID', { min: 1, max: 2_147_483_647 })!;
      const name = optString(d, 'name', 'ERRCODE_INVALID_FORMAT_DEPTNAME');
      if (!name?.trim()) throw cgiError('ERRCODE_MISS_DEPTNAME', at('name is missing'));
      if ([...name].length > 100) throw cgiError('ERRCODE_OVERLIMIT_DEPTNAME', at('name is longer than 100 characters'));
      if (absent(d.parentId)) throw cgiError('ERRCODE_MISS_DEPTPARENTID', at('parentId is missing'));
      const parentId = optInt(d, 'parentId', 'ERRCODE_INVALID_FORMAT_DEPTPARENTID', { min: 0, max: 2_147_483_647 })!;
      const sortId = optInt(d, 'sortId', 'ERRCODE_INVALID_FORMAT_DEPTSORTID', { min: -1_000_000_000, max: 1_000_000_000 }) ?? 0;
      const alias = optString(d, 'alias', 'ERRCODE_INVALID_DEPTALIAS', 100) ?? null;
      return { id, parentId, name, sortId, alias };
    });
    const ids = new Set<number>();
    const aliases = new Set<string>();
    for (const d of depts) {
      if (ids.has(d.id)) throw cgiError('ERRCODE_EXIST_DEPT', `deptList: department id ${d.id} appears twice`);
      ids.add(d.id);
      if (d.alias && aliases.has(d.alias)) throw cgiError('ERRCODE_INVALID_DEPTALIAS', `deptList: alias "${d.alias}" appears twice`);
      if (d.alias) aliases.add(d.alias);
    }
    const parent = new Map(depts.map((d) => [d.id, d.parentId]));
    for (const d of depts) {
      if (d.parentId !== 0 && !ids.has(d.parentId)) throw cgiError('ERRCODE_NOTEXIST_PARENTDEPT', `deptList: the parent ${d.parentId} of department ${d.id} is not in deptList`);
      const seen = new Set<number>();
      for (let x = d.id; x !== 0; x = parent.get(x)!) {
        if (seen.has(x)) throw cgiError('ERRCODE_INVALID_DEPTPARENTID', `deptList: department ${d.id} is part of a cycle of parents`);
        seen.add(x);
      }
    }
  }
  const deptIds = depts ? new Set(depts.map((d) => d.id)) : existingDeptIds;
  if (absent(p.userList)) throw cgiError('ERRCODE_MISS_USERLIST', 'userList is missing');
  if (!Array.isArray(p.userList)) throw cgiError('ERRCODE_INVALID_FORMAT_USERLIST', 'userList must be an array');
  const accounts = new Set<string>();
  const users = p.userList.map((u, i): PlanUser => {
    if (!isObj(u)) throw cgiError('ERRCODE_INVALID_FORMAT_USER', `userList[${i}] must be an object`);
    const at = (m: string) => `userList[${i}]: ${m}`;
    const userId = optString(u, 'userId', 'ERRCODE_INVALID_FORMAT_USERID', 64);
    if (!userId) throw cgiError('ERRCODE_MISS_USERID', at('userId is missing'));
    if (!/^[\p{L}\p{N}._@-]+$/u.test(userId)) throw cgiError('ERRCODE_INVALID_FORMAT_USERID', at(`userId "${userId}" may hold only letters, digits and . _ @ -`));
    if (accounts.has(userId)) throw cgiError('ERRCODE_REPEAT_USERID', at(`userId "${userId}" appears twice`));
    accounts.add(userId);
    if (u.name === undefined) throw cgiError('ERRCODE_MISS_USERNAME', at('name is missing'));
    const name = optString(u, 'name', 'ERRCODE_INVALID_FORMAT_USERNAME', 64) || userId;
    if (absent(u.gender)) throw cgiError('ERRCODE_MISS_GENDER', at('gender is missing'));
    const g = optInt(u, 'gender', 'ERRCODE_INVALID_FORMAT_USERGENDER', { min: 0, max: 1 })!;
    const text = (k: string, code: Parameters<typeof optString>[2]) => optString(u, k, code, 64) ?? null;
    const email = text('email', 'ERRCODE_INVALID_FORMAT_USEREMAIL');
    if (email && !/^[^\s@]+@[^\s@]+$/.test(email)) throw cgiError('ERRCODE_INVALID_FORMAT_USEREMAIL', at('email is not an e-mail address'));
    if (!Array.isArray(u.dept)) throw cgiError(absent(u.dept) ? 'ERRCODE_MISS_USERDEPT' : 'ERRCODE_INVALID_FORMAT_USERDEPT', at('dept must list the person\'s departments'));
    if (u.dept.length > 20) throw cgiError('ERRCODE_OVERLIMIT_USERDEPT', at('dept lists more than 20 departments'));
    const detail = Array.isArray(u.deptDetail) ? (u.deptDetail as unknown[]) : [];
    const memberships = [...new Set(u.dept as unknown[])].map((raw, j) => {
      const id = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) throw cgiError('ERRCODE_INVALID_FORMAT_USERDEPT', at(`dept[${j}] must be a department id`));
      if (!deptIds.has(id)) throw cgiError('ERRCODE_NOTEXIST_DEPT', at(`department ${id} does not exist`));
      const d = detail.find((x) => isObj(x) && Number(x.deptId) === id) as Record<string, unknown> | undefined;
      return {
        departmentId: id,
        position: d ? (optString(d, 'position', 'ERRCODE_INVALID_FORMAT_POSITION', 100) ?? null) : null,
        weight: d ? (optInt(d, 'weight', 'ERRCODE_INVALID_FORMAT_WEIGHT', { min: -1_000_000_000, max: 1_000_000_000 }) ?? 0) : 0,
      };
    });
    const authType = optInt(u, 'authType', 'ERRCODE_INVALID_FORMAT_AUTHTYPE');
    if (authType !== undefined && authType !== 0 && authType !== 2) throw cgiError('ERRCODE_INVALID_FORMAT_AUTHTYPE', at('authType must be 0 or 2'));
    return {
      userId,
      name,
      gender: g === 1 ? 'female' : 'male',
      mobile: text('mobile', 'ERRCODE_INVALID_FORMAT_USERMOBILE'),
      phone: text('phone', 'ERRCODE_INVALID_FORMAT_USERPHONE'),
      email,
      authType: authType === undefined ? undefined : authType === 2 ? 'external' : 'password',
      departments: memberships,
    };
  });
  const cb = obj(p, 'callback', 'ERRCODE_INVALID_REQUEST');
  let callback: ReplacePlan['callback'] = null;
  const cbUrl = cb ? optString(cb, 'url', 'ERRCODE_INVALID_REQUEST', 2000) : undefined;
  if (cbUrl) {
    try {
      if (!['http:', 'https:'].includes(new URL(cbUrl).protocol)) throw new Error();
    } catch {
      throw cgiError('ERRCODE_INVALID_REQUEST', 'callback.url must be an http(s) URL');
    }
    callback = { url: cbUrl, token: optString(cb!, 'token', 'ERRCODE_INVALID_REQUEST', 64) ?? null };
  }
  return { depts, users, callback };
}

async function allUsers(ctx: Caller): Promise<OrgUser[]> {
  const out: OrgUser[] = [];
  for (let page = 1; ; page++) {
    const r = await ctx.call<{ users: OrgUser[]; total: number }, object>('org.users.list', { status: 'all', page, pageSize: 500 });
    out.push(...r.users);
    if (r.users.length < 500) return out;
  }
}

/** Makes the directory equal the plan; throws with the step and item that failed. */
export async function applyPlan(ctx: Caller, plan: ReplacePlan): Promise<void> {
  const existing = await departments(ctx);
  if (plan.depts) {
    const byId = new Map(existing.map((d) => [d.id, d]));
    // Topological order: parents before children, as the import wants them.
    const ordered: PlanDept[] = [];
    const placed = new Set<number>([0]);
    let rest = plan.depts;
    while (rest.length) {
      const ready = rest.filter((d) => placed.has(d.parentId));
      ready.forEach((d) => (ordered.push(d), placed.add(d.id)));
      rest = rest.filter((d) => !placed.has(d.id));
    }
    const doc = {
      format: 'qiao-org-backup',
      formatVersion: 1,
      departments: ordered.map((d) => ({
        id: d.id,
        parentId: d.parentId || null,
        name: d.name,
        alias: d.alias,
        sortOrder: d.sortId,
        description: byId.get(d.id)?.description ?? null,
        externalId: byId.get(d.id)?.externalId ?? null,
        source: byId.get(d.id)?.source ?? null,
      })),
      users: [],
    };
    await ctx.call('org.import.backup', { backup: doc }).catch((err) => {
      throw new Error(`departments: ${(err as Error).message}`);
    });
  }
  const people = await allUsers(ctx);
  const byAccount = new Map(people.map((u) => [u.account, u]));
  for (const u of plan.users) {
    const fields = { name: u.name, gender: u.gender, mobile: u.mobile, phone: u.phone, email: u.email, ...(u.authType ? { authType: u.authType } : {}), departments: u.departments };
    const cur = byAccount.get(u.userId);
    try {
      if (!cur) await ctx.call('org.users.create', { account: u.userId, ...fields });
      else {
        if (cur.status === 'resigned') await ctx.call('org.users.restore', { id: cur.id });
        await ctx.call('org.users.update', { id: cur.id, ...fields });
      }
    } catch (err) {
      throw new Error(`userList "${u.userId}": ${(err as Error).message}`);
    }
  }
  const wanted = new Set(plan.users.map((u) => u.userId));
  for (const u of people) {
    if (u.status !== 'resigned' && !wanted.has(u.account)) {
      await ctx.call('org.users.resign', { id: u.id }).catch((err) => {
        throw new Error(`removing "${u.account}": ${(err as Error).message}`);
      });
    }
  }
  if (plan.depts) {
    const keep = new Set(plan.depts.map((d) => d.id));
    const gone = (await departments(ctx)).filter((d) => !keep.has(d.id));
    const depth = (d: OrgDepartment): number => {
      let n = 0;
      const all = new Map(existing.map((x) => [x.id, x]));
      for (let p = d.parentId; p !== null; p = all.get(p)?.parentId ?? null) n++;
      return n;
    };
    for (const d of gone.sort((a, b) => depth(b) - depth(a))) {
      await ctx.call('org.departments.delete', { id: d.id }).catch((err) => {
        throw new Error(`removing department ${d.id} "${d.name}": ${(err as Error).message}`);
      });
    }
  }
}

export async function runJob(ctx: Caller, db: Database, jobId: string, notify: (appId: string, msg: Record<string, unknown>, target: { url: string; token: string | null }) => Promise<unknown>): Promise<void> {
  const [job] = await rows<{ app_id: string; payload: unknown; callback_url: string | null; callback_token: string | null; result: number }>(db, 'SELECT * FROM openapi_jobs WHERE job_id = ?', [jobId]);
  if (!job || Number(job.result) !== JOB_RUNNING) return;
  const plan = (typeof job.payload === 'string' ? JSON.parse(job.payload) : job.payload) as ReplacePlan;
  let result = JOB_DONE;
  let desc = 'ok';
  try {
    await applyPlan(ctx, plan);
  } catch (err) {
    result = JOB_FAILED;
    desc = (err as Error).message.slice(0, 2000);
  }
  await run(db, 'UPDATE openapi_jobs SET result = ?, description = ?, payload = NULL, finished_at = ? WHERE job_id = ?', [result, desc, new Date(), jobId]);
  if (job.callback_url) {
    const now = new Date();
    await notify(job.app_id, {
      fromUser: 'sysOrgAssistant',
      createTime: Math.floor(now.getTime() / 1000),
      msgType: 'event',
      event: { type: 'org_replace_all', jobId, errcode: result === JOB_DONE ? ERRCODE.ERRCODE_OK : ERRCODE.ERRCODE_INTERNALERR, errmsg: desc },
    }, { url: job.callback_url, token: job.callback_token });
  }
}

export const jobRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/org/replaceall'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req: CgiRequest) {
      const plan = checkPlan(req.params, new Set((await departments(req.ctx)).map((d) => d.id)));
      const running = await rows(req.db, "SELECT job_id FROM openapi_jobs WHERE type = 'org_replace_all' AND result = ?", [JOB_RUNNING]);
      if (running.length) throw cgiError('ERRCODE_EXIST_ENT_REPLACEALL', 'an org replace-all job is already running');
      const jobId = randomBytes(12).toString('hex');
      await run(
        req.db,
        `INSERT INTO openapi_jobs (job_id, app_id, type, result, description, payload, callback_url, callback_token, created_at) VALUES (?, ?, 'org_replace_all', ?, ?, ${jsonCast(req.db)}, ?, ?, ?)`,
        [jobId, req.app.appId, JOB_RUNNING, 'running', JSON.stringify(plan), plan.callback?.url ?? null, plan.callback?.token ?? null, req.now],
      ).catch((err) => {
        throw fromQiaoError(err);
      });
      req.deps.startJob(jobId);
      return { jobId };
    },
  },
  {
    paths: ['/cgi/getjobresult'],
    methods: ['GET', 'POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const jobId = optString(req.params, 'jobId', 'ERRCODE_NOTEXIST_JOBID', 64);
      if (!jobId) throw cgiError('ERRCODE_NOTEXIST_JOBID', 'jobId is missing');
      const [job] = await rows<{ type: string; result: number; description: string | null }>(req.db, 'SELECT type, result, description FROM openapi_jobs WHERE job_id = ?', [jobId]);
      if (!job) throw cgiError('ERRCODE_NOTEXIST_JOBID', `job "${jobId}" does not exist`);
      return { type: job.type, result: Number(job.result), desc: job.description ?? '' };
    },
  },
];
