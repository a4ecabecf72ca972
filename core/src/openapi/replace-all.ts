import { randomBytes } from 'node:crypto';
import type { Context } from 'moleculer';
import type { Database } from '../db/database.ts';
import { ORG_WRITE, type CgiRequest, type CgiRoute } from './cgi.ts';
import type { ReplaceInput as OrgReplace } from '../org/import-export/replace.ts';
import { departments } from './cgi-org.ts';
import { jsonCast, rows, run } from './app-store.ts';
import { cgiError, ERRCODE, fromQiaoError } from './errcodes.ts';
import { absent, obj, optInt, optString } from './params.ts';

/**
 * Org full replace (全量覆盖, docs/api/c01_00016.md): the request is checked whole before a job is
 * created, so a bad request writes nothing; the job then makes the directory equal the request and
 * reports through `/cgi/getjobresult` and, when asked, a signed callback.
 *
 * The job hands the whole list to the org service's `org.import.replace`, which plans and applies it in one
 * transaction: a job that fails (result 4, the reason in `desc`) has changed nothing.
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

/** What a job holds until it has run. */
export interface JobPayload {
  replace: OrgReplace;
  /** Youdu's enableState 1 / 0 by account: licence seats given or taken once the directory stands. */
  seats?: { authorise: string[]; deauthorise: string[] };
  /** Said in the job's result beside "ok" (what the request asked that Qiao does not do). */
  notes?: string[];
}

async function setSeats(ctx: Caller, seats: NonNullable<JobPayload['seats']>): Promise<void> {
  const wanted = new Set([...seats.authorise, ...seats.deauthorise]);
  if (!wanted.size) return;
  const ids = new Map<string, { id: number; authorised: boolean }>();
  for (let page = 1; ; page++) {
    const r = await ctx.call<{ users: Array<{ id: number; account: string; authorised: boolean }> }, object>('org.users.list', { page, pageSize: 500 });
    for (const u of r.users) if (wanted.has(u.account)) ids.set(u.account, u);
    if (r.users.length < 500) break;
  }
  const pick = (accounts: string[], authorised: boolean) => accounts.map((a) => ids.get(a)).filter((u) => u && u.authorised !== authorised).map((u) => u!.id);
  const give = pick(seats.authorise, true);
  const take = pick(seats.deauthorise, false);
  if (give.length) await ctx.call('auth.users.authorise', { userIds: give });
  if (take.length) await ctx.call('auth.users.deauthorise', { userIds: take });
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

/** The org's own replace list for a checked plan: department keys are the Youdu ids. */
export function toOrgReplace(plan: ReplacePlan): OrgReplace {
  return {
    departments: plan.depts
      ? plan.depts.map((d) => ({ key: String(d.id), id: d.id, parentKey: d.parentId ? String(d.parentId) : null, name: d.name, alias: d.alias, sortOrder: d.sortId }))
      : null,
    users: plan.users.map((u) => ({
      account: u.userId,
      name: u.name,
      gender: u.gender,
      mobile: u.mobile,
      phone: u.phone,
      email: u.email,
      ...(u.authType ? { authType: u.authType } : {}),
      departments: u.departments.map((m) => ({ ...(plan.depts ? { departmentKey: String(m.departmentId) } : { departmentId: m.departmentId }), position: m.position, weight: m.weight })),
    })),
  };
}

/** Makes the directory equal the list in one org transaction (org.import.replace): all of it or none. */
export async function applyPlan(ctx: Caller, replace: OrgReplace): Promise<void> {
  await ctx.call('org.import.replace', replace);
}

export async function runJob(ctx: Caller, db: Database, jobId: string, notify: (appId: string, msg: Record<string, unknown>, target: { url: string; token: string | null }) => Promise<unknown>): Promise<void> {
  const [job] = await rows<{ app_id: string; payload: unknown; callback_url: string | null; callback_token: string | null; result: number }>(db, 'SELECT * FROM openapi_jobs WHERE job_id = ?', [jobId]);
  if (!job || Number(job.result) !== JOB_RUNNING) return;
  const payload = (typeof job.payload === 'string' ? JSON.parse(job.payload) : job.payload) as JobPayload | ReplacePlan;
  // Jobs queued before payloads carried the org's list still hold the checked Youdu plan.
  const work: JobPayload = 'replace' in payload ? payload : { replace: toOrgReplace(payload) };
  let result = JOB_DONE;
  let desc = 'ok';
  try {
    await applyPlan(ctx, work.replace);
  } catch (err) {
    result = JOB_FAILED;
    desc = (err as Error).message.slice(0, 2000);
  }
  if (result === JOB_DONE) {
    const notes = [...(work.notes ?? [])];
    // Seats are the auth service's, outside the org transaction: the directory stands even if this fails.
    if (work.seats) await setSeats(ctx, work.seats).catch((err) => notes.push(`the directory was replaced, but setting licence seats failed: ${(err as Error).message}`));
    if (notes.length) desc = `ok; ${notes.join('; ')}`.slice(0, 2000);
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

/**
 * Queues a replace job; one runs at a time, whichever request (JSON or XML) started it. The checked list
 * is stored with the job, so a restart picks it up again.
 */
export async function queueJob(req: CgiRequest, type: string, payload: JobPayload, callback: ReplacePlan['callback']): Promise<string> {
  const running = await rows(req.db, "SELECT job_id FROM openapi_jobs WHERE type IN ('org_replace_all', 'org_xml_sync') AND result = ?", [JOB_RUNNING]);
  if (running.length) throw cgiError('ERRCODE_EXIST_ENT_REPLACEALL', 'an org replace job is already running');
  const jobId = randomBytes(12).toString('hex');
  await run(
    req.db,
    `INSERT INTO openapi_jobs (job_id, app_id, type, result, description, payload, callback_url, callback_token, created_at) VALUES (?, ?, ?, ?, ?, ${jsonCast(req.db)}, ?, ?, ?)`,
    [jobId, req.app.appId, type, JOB_RUNNING, 'running', JSON.stringify(payload), callback?.url ?? null, callback?.token ?? null, req.now],
  ).catch((err) => {
    throw fromQiaoError(err);
  });
  req.deps.startJob(jobId);
  return jobId;
}

export const jobRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/org/replaceall'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req: CgiRequest) {
      const plan = checkPlan(req.params, new Set((await departments(req.ctx)).map((d) => d.id)));
      return { jobId: await queueJob(req, 'org_replace_all', { replace: toOrgReplace(plan) }, plan.callback) };
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
