import type { Context } from 'moleculer';
import { ORG_WRITE, type CgiRequest, type CgiRoute } from './cgi.ts';
import { cgiError, fromQiaoError } from './errcodes.ts';
import { absent, intArray, optInt, optString, reqInt, reqString, stringArray } from './params.ts';

/**
 * Departments and people (docs/api/c01_00012.md, c01_00013.md, c01_00014.md) over the org service's
 * actions. Youdu department ids are Qiao department ids; Youdu's root is 0 (Qiao's top level, parent null).
 * A person's Youdu `userId` is the Qiao account; `gid` is the Qiao user id.
 */

export interface OrgDepartment {
  id: number;
  parentId: number | null;
  name: string;
  alias: string | null;
  description: string | null;
  sortOrder: number;
  source: string | null;
  externalId: string | null;
}

export interface OrgUser {
  id: number;
  account: string;
  name: string;
  gender: 'male' | 'female' | 'unknown' | null;
  mobile: string | null;
  phone: string | null;
  email: string | null;
  authType: 'password' | 'external';
  status: 'active' | 'disabled' | 'resigned';
  authorised: boolean;
  departments: Array<{ departmentId: number; position: string | null; weight: number }>;
}

const DEPT_NAME_MAX = 100;

export async function departments(ctx: Pick<Context, 'call'>): Promise<OrgDepartment[]> {
  return (await ctx.call<{ departments: OrgDepartment[] }>('org.departments.list')).departments;
}

export function youduDept(d: OrgDepartment) {
  return { id: d.id, name: d.name, parentId: d.parentId ?? 0, sortId: d.sortOrder, alias: d.alias ?? '' };
}

const GENDER_IN: Record<number, 'male' | 'female'> = { 0: 'male', 1: 'female' };
export const genderOut = (g: string | null | undefined) => (g === 'female' ? 1 : g === 'male' ? 0 : 2);

/** What every Youdu user record shares, from any view of a person that names their departments. */
export interface PersonView {
  id: number;
  account: string;
  name: string;
  gender?: string | null;
  mobile?: string | null;
  phone?: string | null;
  email?: string | null;
  departments: Array<{ departmentId: number; position?: string | null; weight: number }>;
}

export function youduPerson(u: PersonView) {
  return {
    gid: u.id,
    userId: u.account,
    name: u.name,
    gender: genderOut(u.gender),
    mobile: u.mobile ?? '',
    phone: u.phone ?? '',
    email: u.email ?? '',
    dept: u.departments.map((m) => m.departmentId),
    deptDetail: u.departments.map((m) => ({ deptId: m.departmentId, position: m.position ?? '', weight: m.weight, sortId: 0 })),
  };
}

export function enableState(u: OrgUser): number {
  return u.status === 'disabled' ? -1 : u.authorised ? 1 : 0;
}

export function youduUser(u: OrgUser) {
  return {
    ...youduPerson(u),
    enableState: enableState(u),
    // Youdu's extended attributes; the Java SDK reads the array unconditionally.
    attrs: [],
  };
}

/** A current (not resigned) person by account, or the documented "no such user". */
export async function userByAccount(ctx: Context, account: string, field = 'userId'): Promise<OrgUser> {
  let u: OrgUser;
  try {
    u = await ctx.call<OrgUser, object>('org.users.byAccount', { account });
  } catch (err) {
    if ((err as { type?: string }).type === 'QIAO_NOT_FOUND' || (err as { type?: string }).type === 'VALIDATION_ERROR') {
      throw cgiError('ERRCODE_USER_NOTEXIST', `${field} "${account.slice(0, 64)}" does not exist`);
    }
    throw err;
  }
  if (u.status === 'resigned') throw cgiError('ERRCODE_USER_NOTEXIST', `${field} "${account}" has left the company`);
  return u;
}

async function findAccount(ctx: Context, account: string): Promise<OrgUser | null> {
  try {
    return await ctx.call<OrgUser, object>('org.users.byAccount', { account });
  } catch (err) {
    if ((err as { type?: string }).type === 'QIAO_NOT_FOUND') return null;
    throw err;
  }
}

async function usersIn(ctx: Context, departmentId: number): Promise<OrgUser[]> {
  const out: OrgUser[] = [];
  for (let page = 1; ; page++) {
    const r = await ctx.call<{ users: OrgUser[]; total: number }, object>('org.users.list', { departmentId, page, pageSize: 500 });
    out.push(...r.users);
    if (out.length >= r.total || r.users.length === 0) return out;
  }
}

const orgErr = (hints: Parameters<typeof fromQiaoError>[1]) => (err: unknown) => {
  throw fromQiaoError(err, hints);
};

function deptId(req: CgiRequest, name = 'id'): number {
  return reqInt(req.params, name, 'ERRCODE_MISS_DEPTID', 'ERRCODE_INVALID_FORMAT_DEPTID', { min: 0, max: 2_147_483_647 });
}

async function existingDept(req: CgiRequest, id: number): Promise<OrgDepartment> {
  const d = (await departments(req.ctx)).find((x) => x.id === id);
  if (!d) throw cgiError('ERRCODE_DEPT_NOT_EXIST', `department ${id} does not exist`);
  return d;
}

function deptFields(req: CgiRequest, create: boolean) {
  const p = req.params;
  const name = create
    ? reqString(p, 'name', 'ERRCODE_MISS_DEPTNAME', 'ERRCODE_INVALID_FORMAT_DEPTNAME')
    : optString(p, 'name', 'ERRCODE_INVALID_FORMAT_DEPTNAME');
  if (name !== undefined && [...name].length > DEPT_NAME_MAX) throw cgiError('ERRCODE_OVERLIMIT_DEPTNAME', `name is longer than ${DEPT_NAME_MAX} characters`);
  if (name !== undefined && !name.trim()) throw cgiError('ERRCODE_INVALID_DEPTNAME', 'name is blank');
  const parentId = create
    ? reqInt(p, 'parentId', 'ERRCODE_MISS_DEPTPARENTID', 'ERRCODE_INVALID_FORMAT_DEPTPARENTID', { min: 0, max: 2_147_483_647 })
    : optInt(p, 'parentId', 'ERRCODE_INVALID_FORMAT_DEPTPARENTID', { min: 0, max: 2_147_483_647 });
  const sortId = optInt(p, 'sortId', 'ERRCODE_INVALID_FORMAT_DEPTSORTID', { min: -1_000_000_000, max: 1_000_000_000 });
  const alias = optString(p, 'alias', 'ERRCODE_INVALID_DEPTALIAS', 100);
  return { name, parentId, sortId, alias };
}

// ---- departments -------------------------------------------------------------------------------------
const deptRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/dept/create'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const f = deptFields(req, true) as { name: string; parentId: number; sortId?: number; alias?: string };
      const id = optInt(req.params, 'id', 'ERRCODE_INVALID_FORMAT_DEPTID', { min: 0, max: 2_147_483_647 });
      const all = await departments(req.ctx);
      if (f.parentId !== 0 && !all.some((d) => d.id === f.parentId)) throw cgiError('ERRCODE_INVALID_DEPTPARENTID', `parent department ${f.parentId} does not exist`);
      if (f.alias && all.some((d) => d.alias === f.alias)) throw cgiError('ERRCODE_INVALID_DEPTALIAS', `alias "${f.alias}" is already used`);
      const d = await req.ctx
        .call<OrgDepartment, object>('org.departments.create', { ...(id ? { id } : {}), name: f.name, parentId: f.parentId || null, alias: f.alias ?? null, sortOrder: f.sortId ?? 0 })
        .catch((err: { type?: string; data?: { field?: string } }) => {
          if (err.type === 'QIAO_CONFLICT' && err.data?.field === 'id') throw cgiError('ERRCODE_EXIST_DEPT', `department id ${id} already exists`);
          throw fromQiaoError(err, { conflict: err.data?.field === 'alias' ? 'ERRCODE_INVALID_DEPTALIAS' : 'ERRCODE_INVALID_DEPTNAME', notFound: 'ERRCODE_INVALID_DEPTPARENTID', invalid: 'ERRCODE_INVALID_FORMAT_DEPT' });
        });
      return { id: d.id };
    },
  },
  {
    paths: ['/cgi/dept/update'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const id = deptId(req);
      if (id === 0) throw cgiError('ERRCODE_DEPT_ROOT_FORBIDDEN', 'the root department (0) cannot be changed');
      const f = deptFields(req, false);
      const current = await existingDept(req, id);
      const all = await departments(req.ctx);
      if (f.parentId !== undefined && f.parentId !== 0 && !all.some((d) => d.id === f.parentId)) throw cgiError('ERRCODE_INVALID_DEPTPARENTID', `parent department ${f.parentId} does not exist`);
      const hints = { conflict: 'ERRCODE_INVALID_DEPTNAME', invalid: 'ERRCODE_INVALID_FORMAT_DEPT', notFound: 'ERRCODE_DEPT_NOT_EXIST' } as const;
      // Moves first: a rename that is only free under the new parent then succeeds.
      if (f.parentId !== undefined && (f.parentId || null) !== current.parentId) {
        await req.ctx.call('org.departments.move', { id, parentId: f.parentId || null, ...(f.sortId !== undefined ? { sortOrder: f.sortId } : {}) }).catch(orgErr(hints));
      }
      const patch: Record<string, unknown> = { id };
      if (f.name !== undefined) patch.name = f.name;
      if (f.alias !== undefined) patch.alias = f.alias;
      if (f.sortId !== undefined) patch.sortOrder = f.sortId;
      if (Object.keys(patch).length > 1) await req.ctx.call('org.departments.update', patch).catch(orgErr({ ...hints, conflict: f.alias !== undefined ? 'ERRCODE_INVALID_DEPTALIAS' : 'ERRCODE_INVALID_DEPTNAME' }));
      return null;
    },
  },
  {
    paths: ['/cgi/dept/delete'],
    methods: ['GET', 'POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const id = deptId(req);
      if (id === 0) throw cgiError('ERRCODE_DEPT_ROOT_FORBIDDEN', 'the root department (0) cannot be deleted');
      await existingDept(req, id);
      await req.ctx.call('org.departments.delete', { id }).catch((err: { type?: string; data?: { reason?: string } }) => {
        if (err.data?.reason === 'has-sub-departments') throw cgiError('ERRCODE_DEPT_HAS_SUBDEPT', `department ${id} has sub-departments`);
        if (err.data?.reason === 'has-members') throw cgiError('ERRCODE_DEPT_HAS_USERS', `department ${id} has members`);
        throw fromQiaoError(err, { notFound: 'ERRCODE_DEPT_NOT_EXIST' });
      });
      return null;
    },
  },
  {
    paths: ['/cgi/dept/list', '/cgi/dept/listchildren', '/cgi/dept/alllistchildren'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const id = deptId(req);
      const all = await departments(req.ctx);
      const self = id === 0 ? null : all.find((d) => d.id === id);
      if (id !== 0 && !self) throw cgiError('ERRCODE_DEPT_NOT_EXIST', `department ${id} does not exist`);
      const children = (p: number | null) => all.filter((d) => d.parentId === p).sort((a, b) => a.sortOrder - b.sortOrder || a.id - b.id);
      const path = req.path;
      let list: OrgDepartment[];
      if (path.endsWith('alllistchildren')) {
        list = [];
        const walk = (p: number | null) => children(p).forEach((c) => (list.push(c), walk(c.id)));
        walk(self ? self.id : null);
      } else if (path.endsWith('listchildren')) list = children(self ? self.id : null);
      else list = [...(self ? [self] : []), ...children(self ? self.id : null)];
      return { deptList: list.map(youduDept) };
    },
  },
  {
    paths: ['/cgi/dept/get'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      return youduDept(await existingDept(req, deptId(req)));
    },
  },
  {
    paths: ['/cgi/dept/getid'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      let alias = optString(req.params, 'alias', 'ERRCODE_INVALID_DEPTALIAS', 100);
      // The docs show the alias quoted (`alias="x"`); callers copy that literally.
      if (alias && /^".*"$/.test(alias)) alias = alias.slice(1, -1);
      const all = await departments(req.ctx);
      if (alias === undefined) return { aliasList: all.filter((d) => d.alias).map((d) => ({ id: d.id, alias: d.alias })) };
      const d = all.find((x) => x.alias === alias);
      if (!d) throw cgiError('ERRCODE_INVALID_DEPTALIAS', `no department has alias "${alias}"`);
      return { id: d.id };
    },
  },
];

// ---- people ------------------------------------------------------------------------------------------
function userIdParam(req: CgiRequest, name = 'userId'): string {
  const v = reqString(req.params, name, 'ERRCODE_MISS_USERID', 'ERRCODE_INVALID_FORMAT_USERID');
  if ([...v].length > 64) throw cgiError('ERRCODE_OVERLIMIT_USERID', `${name} is longer than 64 characters`);
  return v;
}

function profile(req: CgiRequest, create: boolean) {
  const p = req.params;
  const out: Record<string, unknown> = {};
  const name = optString(p, 'name', 'ERRCODE_INVALID_FORMAT_USERNAME');
  if (create && p.name === undefined) throw cgiError('ERRCODE_MISS_USERNAME', 'name is missing');
  if (name !== undefined) {
    if ([...name].length > 64) throw cgiError('ERRCODE_OVERLIMIT_USERNAME', 'name is longer than 64 characters');
    out.name = name;
  }
  if (create && absent(p.gender)) throw cgiError('ERRCODE_MISS_GENDER', 'gender is missing');
  const gender = optInt(p, 'gender', 'ERRCODE_INVALID_FORMAT_USERGENDER', { min: 0, max: 1 });
  if (gender !== undefined) out.gender = GENDER_IN[gender];
  for (const [k, code, max] of [
    ['mobile', 'ERRCODE_INVALID_FORMAT_USERMOBILE', 64],
    ['phone', 'ERRCODE_INVALID_FORMAT_USERPHONE', 64],
    ['email', 'ERRCODE_INVALID_FORMAT_USEREMAIL', 64],
  ] as const) {
    if (p[k] === '' ) out[k] = null;
    const v = optString(p, k, code, max);
    if (v !== undefined) out[k] = v;
  }
  if (typeof out.email === 'string' && !/^[^\s@]+@[^\s@]+$/.test(out.email)) throw cgiError('ERRCODE_INVALID_FORMAT_USEREMAIL', 'email is not an e-mail address');
  let dept: number[] | undefined;
  if (create && absent(p.dept)) throw cgiError('ERRCODE_MISS_USERDEPT', 'dept is missing');
  if (!absent(p.dept)) {
    dept = intArray(p.dept, 'dept', 'ERRCODE_INVALID_FORMAT_USERDEPT');
    if (dept.length > 20) throw cgiError('ERRCODE_OVERLIMIT_USERDEPT', 'dept lists more than 20 departments');
  }
  return { fields: out, dept };
}

async function checkDepts(req: CgiRequest, ids: number[]): Promise<void> {
  const all = new Set((await departments(req.ctx)).map((d) => d.id));
  for (const id of ids) if (!all.has(id)) throw cgiError('ERRCODE_NOTEXIST_DEPT', `department ${id} does not exist`);
}

function memberships(current: OrgUser['departments'], ids: number[]) {
  return [...new Set(ids)].filter((id) => id !== 0).map((id) => current.find((m) => m.departmentId === id) ?? { departmentId: id, position: null, weight: 0 });
}

const userHints = { conflict: 'ERRCODE_USER_EXIST', notFound: 'ERRCODE_NOTEXIST_DEPT', invalid: 'ERRCODE_INVALID_FORMAT_USER' } as const;

async function setEnableState(ctx: Context, user: OrgUser, state: number): Promise<void> {
  if (state === -1) {
    if (user.status !== 'disabled') await ctx.call('org.users.disable', { id: user.id });
    return;
  }
  if (user.status === 'disabled') await ctx.call('org.users.enable', { id: user.id });
  if (state === 1 && !user.authorised) await ctx.call('auth.users.authorise', { userIds: [user.id] });
  if (state === 0 && user.authorised) await ctx.call('auth.users.deauthorise', { userIds: [user.id] });
}

async function resign(ctx: Context, user: OrgUser): Promise<void> {
  await ctx.call('org.users.resign', { id: user.id }).catch(orgErr({ notFound: 'ERRCODE_USER_NOTEXIST' }));
}

const userRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/user/create'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const account = userIdParam(req);
      const { fields, dept } = profile(req, true);
      const state = optInt(req.params, 'enableState', 'ERRCODE_INVALID_REQUEST', { min: -1, max: 1 });
      await checkDepts(req, dept!);
      if (!fields.name) fields.name = account;
      const existing = await findAccount(req.ctx, account);
      let user: OrgUser;
      if (existing && existing.status !== 'resigned') throw cgiError('ERRCODE_USER_EXIST', `userId "${account}" already exists`);
      if (existing) {
        // Youdu deletes; Qiao keeps a resigned record (their messages stay attributable). Creating the
        // account again brings that record back.
        await req.ctx.call('org.users.restore', { id: existing.id }).catch(orgErr(userHints));
        user = await req.ctx.call<OrgUser, object>('org.users.update', { id: existing.id, ...fields, departments: memberships([], dept!) }).catch(orgErr(userHints));
      } else {
        user = await req.ctx.call<OrgUser, object>('org.users.create', { account, ...fields, departments: memberships([], dept!) }).catch(orgErr(userHints));
      }
      if (state !== undefined) await setEnableState(req.ctx, user, state);
      return null;
    },
  },
  {
    paths: ['/cgi/user/update'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const user = await userByAccount(req.ctx, userIdParam(req));
      const { fields, dept } = profile(req, false);
      if (dept) await checkDepts(req, dept);
      const patch: Record<string, unknown> = { id: user.id, ...fields };
      if (fields.name === '') patch.name = user.account;
      if (dept) patch.departments = memberships(user.departments, dept);
      if (Object.keys(patch).length > 1) await req.ctx.call('org.users.update', patch).catch(orgErr(userHints));
      return null;
    },
  },
  {
    paths: ['/cgi/user/positionupdate'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const user = await userByAccount(req.ctx, userIdParam(req));
      const deptIdValue = reqInt(req.params, 'deptId', 'ERRCODE_MISS_DEPTID', 'ERRCODE_INVALID_FORMAT_DEPTID', { min: 1 });
      const position = optString(req.params, 'position', 'ERRCODE_INVALID_FORMAT_POSITION', 100);
      const weight = optInt(req.params, 'weight', 'ERRCODE_INVALID_FORMAT_WEIGHT', { min: -1_000_000_000, max: 1_000_000_000 });
      optInt(req.params, 'sortId', 'ERRCODE_INVALID_FORMAT_SORTID');
      if (!user.departments.some((m) => m.departmentId === deptIdValue)) throw cgiError('ERRCODE_USER_NOTIN_DEPT', `"${user.account}" is not in department ${deptIdValue}`);
      const next = user.departments.map((m) =>
        m.departmentId === deptIdValue ? { ...m, ...(position !== undefined ? { position } : {}), ...(weight !== undefined ? { weight } : {}) } : m,
      );
      await req.ctx.call('org.users.setMemberships', { id: user.id, departments: next }).catch(orgErr(userHints));
      return null;
    },
  },
  {
    paths: ['/cgi/user/delete'],
    methods: ['GET', 'POST'],
    apps: ORG_WRITE,
    async handler(req) {
      await resign(req.ctx, await userByAccount(req.ctx, userIdParam(req)));
      return null;
    },
  },
  {
    paths: ['/cgi/user/batchdelete'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const list = stringArray(req.params, 'delList', 'ERRCODE_MISS_USERLIST', 'ERRCODE_INVALID_FORMAT_USERLIST', 200, 'ERRCODE_OVERLIMIT_USERLIST');
      // Everyone is looked up before anyone is removed: one unknown account and nothing changes.
      const users = [];
      for (const a of list) users.push(await userByAccount(req.ctx, a, 'delList'));
      for (const u of users) await resign(req.ctx, u);
      return null;
    },
  },
  {
    paths: ['/cgi/user.quit', '/cgi/user/quit'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const list = stringArray(req.params, 'accList', 'ERRCODE_MISS_USERLIST', 'ERRCODE_INVALID_FORMAT_USERLIST', 1000, 'ERRCODE_OVERLIMIT_USERLIST');
      const users = [];
      for (const a of list) users.push(await userByAccount(req.ctx, a, 'accList'));
      for (const u of users) await resign(req.ctx, u);
      // The Java SDK reads an (empty) encrypted answer here and fails without one.
      return {};
    },
  },
  {
    paths: ['/cgi/user.restore', '/cgi/user/restore'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      // The Java SDK restores by account with gid 0.
      let id = optInt(req.params, 'gid', 'ERRCODE_INVALID_USERID', { min: 0 }) || undefined;
      if (id === undefined) {
        const account = optString(req.params, 'userId', 'ERRCODE_INVALID_FORMAT_USERID', 64) ?? optString(req.params, 'account', 'ERRCODE_INVALID_FORMAT_USERID', 64);
        if (account === undefined) throw cgiError('ERRCODE_MISS_USERID', 'gid is missing');
        const u = await findAccount(req.ctx, account);
        if (!u) throw cgiError('ERRCODE_USER_NOTEXIST', `userId "${account}" does not exist`);
        id = u.id;
      }
      await req.ctx.call('org.users.restore', { id }).catch(orgErr({ notFound: 'ERRCODE_USER_NOTEXIST', conflict: 'ERRCODE_INVALID_USERID' }));
      return {};
    },
  },
  {
    paths: ['/cgi/user/get'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      return youduUser(await userByAccount(req.ctx, userIdParam(req)));
    },
  },
  {
    paths: ['/cgi/user/list', '/cgi/user/simplelist'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const id = reqInt(req.params, 'deptId', 'ERRCODE_MISS_DEPTID', 'ERRCODE_INVALID_FORMAT_DEPTID', { min: 0 });
      if (id === 0) return { userList: [] };
      await existingDept(req, id);
      const users = await usersIn(req.ctx, id);
      const simple = (req.path).endsWith('simplelist');
      return { userList: users.map((u) => (simple ? { userId: u.account, name: u.name, gender: genderOut(u.gender), dept: u.departments.map((m) => m.departmentId) } : youduUser(u))) };
    },
  },
  {
    paths: ['/cgi/user/enable/state'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      return { enableState: enableState(await userByAccount(req.ctx, userIdParam(req))) };
    },
  },
  {
    paths: ['/cgi/user/enable/stateupdate'],
    methods: ['GET', 'POST'],
    apps: ORG_WRITE,
    async handler(req) {
      let list = req.params.userIdList;
      if (typeof list === 'string') list = list.split(/[|,]/).filter(Boolean);
      const accounts = stringArray({ userIdList: list }, 'userIdList', 'ERRCODE_MISS_USERLIST', 'ERRCODE_INVALID_FORMAT_USERLIST', 1000, 'ERRCODE_OVERLIMIT_USERLIST');
      const state = reqInt(req.params, 'enableState', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', { min: -1, max: 1 });
      const users = [];
      for (const a of accounts) users.push(await userByAccount(req.ctx, a, 'userIdList'));
      for (const u of users) await setEnableState(req.ctx, u, state);
      return null;
    },
  },
  {
    paths: ['/cgi/user/setauth'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const user = await userByAccount(req.ctx, userIdParam(req));
      const authType = optInt(req.params, 'authType', 'ERRCODE_INVALID_FORMAT_AUTHTYPE');
      if (authType !== undefined && authType !== 0 && authType !== 2) throw cgiError('ERRCODE_INVALID_FORMAT_AUTHTYPE', 'authType must be 0 (local) or 2 (third party)');
      const passwd = optString(req.params, 'passwd', 'ERRCODE_INVALID_FORMAT_PASSWORD', 64);
      if (passwd !== undefined && !/^[0-9a-f]{32}$/.test(passwd)) throw cgiError('ERRCODE_INVALID_FORMAT_PASSWORD', 'passwd must be the lower-case hex MD5 of the password');
      if (passwd !== undefined) {
        // Qiao stores memory-hard hashes of passwords, never an MD5: it cannot take one over.
        throw cgiError('ERRCODE_INVALID_FORMAT_PASSWORD', 'setting a password from its MD5 is not supported: use third-party auth (authType 2) or set the password in the admin console');
      }
      if (authType !== undefined) await req.ctx.call('org.users.update', { id: user.id, authType: authType === 2 ? 'external' : 'password' }).catch(orgErr(userHints));
      return null;
    },
  },
  {
    // user/pwd/changeswitchupdate is the older documented form of the same switch, without a key.
    paths: ['/cgi/user/extend/update', '/cgi/user/pwd/changeswitchupdate'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const user = await userByAccount(req.ctx, userIdParam(req));
      const key = req.path.endsWith('changeswitchupdate') ? 'needchangepwd' : reqString(req.params, 'key', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 64);
      const value = reqString(req.params, 'value', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 8);
      if (key !== 'needchangepwd' || !['0', '1'].includes(value)) throw cgiError('ERRCODE_INVALID_REQUEST', 'only key "needchangepwd" with value "0" or "1" is supported');
      await req.ctx.call('auth.users.requirePasswordChange', { userIds: [user.id], required: value === '1' });
      return null;
    },
  },
  {
    paths: ['/cgi/avatar/set'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const user = await userByAccount(req.ctx, userIdParam(req));
      const file = req.files.file;
      if (file === undefined) throw cgiError('ERRCODE_INVALID_MULTIPART', 'the avatar goes in the multipart field "file"');
      const bytes = req.open(file, 'file');
      await req.ctx.call('org.users.avatar.set', { id: user.id, data: bytes.toString('base64') }).catch(orgErr({ invalid: 'ERRCODE_INVALID_FILETYPE' }));
      return null;
    },
  },
  {
    paths: ['/cgi/avatar/get'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const user = await userByAccount(req.ctx, userIdParam(req));
      const avatar = await req.ctx.call<{ contentType: string; data: string }, object>('org.users.avatar.get', { id: user.id }).catch(orgErr({ notFound: 'ERRCODE_FILE_NOTEXIST' }));
      const bytes = Buffer.from(avatar.data, 'base64');
      return { raw: { headers: { 'content-type': avatar.contentType, 'content-disposition': 'attachment;', encrypt: req.seal(JSON.stringify({ size: bytes.length })) }, body: req.seal(bytes) } };
    },
  },
];

export const orgRoutes: CgiRoute[] = [...deptRoutes, ...userRoutes];
