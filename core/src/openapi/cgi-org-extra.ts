import type { Context } from 'moleculer';
import { ORG_WRITE, type CgiRequest, type CgiRoute } from './cgi.ts';
import { departments, genderOut, userByAccount, youduDept, youduPerson, youduUser, type OrgDepartment, type OrgUser } from './cgi-org.ts';
import { cgiError, fromQiaoError } from './errcodes.ts';
import { absent, optString, reqInt, reqString } from './params.ts';

/**
 * The org endpoints Youdu's Java SDK calls beyond the published pages (docs/api/c01_00012.md,
 * c01_00013.md): several people by gid, a keyword search, resigned people, a whole department's people,
 * a department as one person sees it, and department order. Shapes follow what the SDK sends and reads.
 */

const BATCH_MAX = 1000;
const SEARCH_MAX = 200;

async function pages(ctx: Pick<Context, 'call'>, query: object): Promise<OrgUser[]> {
  const out: OrgUser[] = [];
  for (let page = 1; ; page++) {
    const r = await ctx.call<{ users: OrgUser[]; total: number }, object>('org.users.list', { ...query, page, pageSize: 500 });
    out.push(...r.users);
    if (r.users.length < 500 || out.length >= r.total) return out;
  }
}

/** `gids`: "1,2,3" (the SDK's GET) or a JSON array. */
function gidList(req: CgiRequest): number[] {
  const raw = req.params.gids ?? req.params.gidList;
  if (absent(raw)) throw cgiError('ERRCODE_MISS_USERLIST', 'gids is missing');
  const parts = Array.isArray(raw) ? raw : typeof raw === 'number' ? [raw] : typeof raw === 'string' ? raw.split(/[,|]/).map((x) => x.trim()).filter(Boolean) : null;
  if (!parts) throw cgiError('ERRCODE_INVALID_FORMAT_USERLIST', 'gids must be comma-separated gids or an array of them');
  if (parts.length > BATCH_MAX) throw cgiError('ERRCODE_OVERLIMIT_USERLIST', `gids lists ${parts.length}; at most ${BATCH_MAX}`);
  return parts.map((p, i) => {
    const n = typeof p === 'string' && /^\d{1,10}$/.test(p) ? Number(p) : p;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 2_147_483_647) throw cgiError('ERRCODE_INVALID_FORMAT_USERLIST', `gids[${i}] must be a gid`);
    return n;
  });
}

function deptIdParam(req: CgiRequest, name: string): number {
  return reqInt(req.params, name, 'ERRCODE_MISS_DEPTID', 'ERRCODE_INVALID_FORMAT_DEPTID', { min: 0, max: 2_147_483_647 });
}

async function existing(req: CgiRequest, id: number, all?: OrgDepartment[]): Promise<OrgDepartment> {
  const d = (all ?? (await departments(req.ctx))).find((x) => x.id === id);
  if (!d) throw cgiError('ERRCODE_DEPT_NOT_EXIST', `department ${id} does not exist`);
  return d;
}

/** A person as the client directory shows them to a viewer (visibility rules and secrecy applied). */
interface SeenUser {
  id: number;
  account: string;
  name: string;
  gender?: string;
  mobile?: string;
  phone?: string;
  email?: string;
  shortNumber?: string;
  departments: Array<{ id: number; position?: string; weight: number }>;
}


/** A resigned person the way Youdu's user/quit/search lists them. */
function quitUser(u: OrgUser & { shortNumber?: string | null }) {
  return { gid: u.id, account: u.account, chsName: u.name, gender: genderOut(u.gender), mobile: u.mobile ?? '', phone: u.phone ?? '', email: u.email ?? '', shortCode: u.shortNumber ?? '' };
}

export const orgExtraRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/user/batchget', '/cgi/user/batch/get'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const gids = gidList(req);
      const { users } = await req.ctx.call<{ users: OrgUser[] }, object>('org.users.byIds', { ids: gids }).catch((err) => {
        throw fromQiaoError(err, { invalid: 'ERRCODE_INVALID_FORMAT_USERLIST' });
      });
      // As user/get: people who left are no longer in the directory.
      return { userList: users.filter((u) => u.status !== 'resigned').map(youduUser) };
    },
  },
  {
    paths: ['/cgi/user/search'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const keyword = reqString(req.params, 'keyword', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 100).trim();
      if (!keyword) throw cgiError('ERRCODE_INVALID_REQUEST', 'keyword is blank');
      const r = await req.ctx.call<{ users: OrgUser[] }, object>('org.users.list', { search: keyword, pageSize: SEARCH_MAX });
      return { userList: r.users.map(youduUser) };
    },
  },
  {
    paths: ['/cgi/user/quit/search', '/cgi/user.quit/search'],
    methods: ['GET', 'POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const account = (optString(req.params, 'account', 'ERRCODE_INVALID_FORMAT_USERID', 64) ?? optString(req.params, 'userId', 'ERRCODE_INVALID_FORMAT_USERID', 64) ?? '').trim();
      const users = await pages(req.ctx, { status: 'resigned', ...(account ? { search: account } : {}) });
      return { userList: users.map(quitUser) };
    },
  },
  {
    paths: ['/cgi/dept/user/listall'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const id = deptIdParam(req, 'deptId');
      if (id !== 0) await existing(req, id);
      const users = await pages(req.ctx, id === 0 ? {} : { departmentId: id, includeSub: true });
      return { userList: users.map(youduUser) };
    },
  },
  {
    paths: ['/cgi/dept/sort'],
    methods: ['POST'],
    apps: ORG_WRITE,
    async handler(req) {
      const id = deptIdParam(req, 'id');
      if (id === 0) throw cgiError('ERRCODE_DEPT_ROOT_FORBIDDEN', 'the root department (0) has no place to sort');
      const behind = reqInt(req.params, 'behindDeptId', 'ERRCODE_MISS_DEPTID', 'ERRCODE_INVALID_FORMAT_DEPTID', { min: 0, max: 2_147_483_647 });
      const all = await departments(req.ctx);
      await existing(req, id, all);
      if (behind !== 0) await existing(req, behind, all);
      const d = await req.ctx.call<OrgDepartment, object>('org.departments.reorder', { id, afterId: behind || null }).catch((err: { type?: string; data?: { field?: string } }) => {
        if (err.data?.field === 'afterId') throw cgiError('ERRCODE_INVALID_DEPTID', `behindDeptId: ${(err as Error).message}`);
        throw fromQiaoError(err, { notFound: 'ERRCODE_DEPT_NOT_EXIST', invalid: 'ERRCODE_INVALID_DEPTID' });
      });
      return { id: d.id, sortId: d.sortOrder };
    },
  },
  {
    paths: ['/cgi/dept/expand/invisible'],
    methods: ['GET', 'POST'],
    apps: 'any',
    async handler(req) {
      const viewer = await userByAccount(req.ctx, reqString(req.params, 'userId', 'ERRCODE_MISS_USERID', 'ERRCODE_INVALID_FORMAT_USERID', 64));
      const id = deptIdParam(req, 'deptId');
      const all = await departments(req.ctx);
      if (id !== 0) await existing(req, id, all);
      const seen = await req.ctx.call<{ forbidden: boolean; departments: Array<{ id: number; parentId: number | null }>; users: SeenUser[] }, object>('org.client.snapshot', { viewer: viewer.id });
      const byId = new Map(all.map((d) => [d.id, d]));
      const parent = id === 0 ? null : id;
      const deptList = seen.departments.filter((d) => d.parentId === parent).map((d) => youduDept(byId.get(d.id)!));
      const userList = id === 0 ? [] : seen.users.filter((u) => u.departments.some((m) => m.id === id)).map((u) => ({
        ...youduPerson({ ...u, departments: u.departments.map((m) => ({ departmentId: m.id, position: m.position, weight: m.weight })) }),
        shortCode: u.shortNumber ?? '',
        attrs: [],
      }));
      return { deptList, userList };
    },
  },
];
