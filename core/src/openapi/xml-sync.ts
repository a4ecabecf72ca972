import { SaxesParser, type SaxesTagPlain } from 'saxes';
import type { ReplaceInput as OrgReplace } from '../org/import-export/replace.ts';
import { ORG_WRITE, type CgiRequest, type CgiRoute } from './cgi.ts';
import { departments, type OrgDepartment } from './cgi-org.ts';
import { cgiError, type ErrcodeName } from './errcodes.ts';
import { queueJob, type JobPayload } from './replace-all.ts';

/**
 * Org sync from XML (`/cgi/org/xmlsync`, in Youdu's Java SDK beside org/replaceall): the body is the XML
 * itself, not an envelope, and the accessToken alone authenticates it. Like replaceall it replaces the
 * whole directory in a job (getjobresult reports it); departments are named by path, people by account:
 *
 *   <root>
 *     <strategy><dept_spliter>/</dept_spliter></strategy>
 *     <deptList><dept path="研发部"/><dept path="研发部/平台" id="12"/></deptList>
 *     <userList>
 *       <user id="zhangsan" name="张三" gender="0" mobile="" email="" phone="" authType="0" enableState="1">
 *         <posInfo deptPath="研发部/平台" position="工程师"/>
 *         <posInfo deptPath="12"/>
 *       </user>
 *     </userList>
 *   </root>
 *
 * A path's missing ancestors are implied; a <dept> without sortId or alias leaves an existing department's
 * own. A `deptPath` is a listed path or a listed department's id; without
 * a <deptList> the tree stays and paths name existing departments. `password` (an MD5) is not taken: Qiao
 * keeps only memory-hard hashes; the job's result says so. enableState -1 disables, 1 / 0 give or take a
 * licence seat once the directory is in place.
 */

const MAX_DEPTH = 16;

interface RawDept {
  path: string;
  id?: string;
  alias?: string;
  sortId?: string;
  line: number;
}

interface RawUser {
  attrs: Map<string, string>;
  positions: Array<Map<string, string>>;
  line: number;
}

function attributes(node: SaxesTagPlain): Map<string, string> {
  const out = new Map<string, string>();
  for (const k in node.attributes) out.set(k.toLowerCase(), String(node.attributes[k]));
  return out;
}

function fail(code: ErrcodeName, line: number, message: string): never {
  throw cgiError(code, `line ${line}: ${message}`);
}

function parse(text: string): { spliter: string; depts: RawDept[] | null; users: RawUser[] } {
  const parser = new SaxesParser({ position: true, xmlns: false });
  const stack: string[] = [];
  let spliter = '/';
  let depts: RawDept[] | null = null;
  let users: RawUser[] | null = null;
  let current: RawUser | null = null;
  let textBuf = '';
  parser.on('doctype', () => fail('ERRCODE_INVALID_REQUEST', parser.line, 'DOCTYPE declarations are not allowed'));
  parser.on('error', (err) => {
    throw cgiError('ERRCODE_INVALID_REQUEST', `the body is not well-formed XML: ${err.message}`);
  });
  parser.on('opentag', (node) => {
    const name = node.name.toLowerCase();
    const parent = stack[stack.length - 1];
    if (stack.length === 0 && name !== 'root') fail('ERRCODE_INVALID_REQUEST', parser.line, `the root element must be <root>, not <${node.name}>`);
    if (stack.length >= MAX_DEPTH) fail('ERRCODE_INVALID_REQUEST', parser.line, `elements nest deeper than ${MAX_DEPTH} levels`);
    const a = attributes(node);
    if (name === 'deptlist' && parent === 'root') depts = depts ?? [];
    else if (name === 'userlist' && parent === 'root') users = users ?? [];
    else if (name === 'dept' && parent === 'deptlist') depts!.push({ path: a.get('path') ?? '', id: a.get('id'), alias: a.get('alias'), sortId: a.get('sortid'), line: parser.line });
    else if (name === 'user' && parent === 'userlist') users!.push((current = { attrs: a, positions: [], line: parser.line }));
    else if (name === 'posinfo' && parent === 'user') current!.positions.push(a);
    textBuf = '';
    stack.push(name);
  });
  parser.on('text', (t) => (textBuf += t));
  parser.on('closetag', (node) => {
    if (node.name.toLowerCase() === 'dept_spliter' && stack[stack.length - 2] === 'strategy' && textBuf.trim()) spliter = textBuf.trim();
    stack.pop();
  });
  parser.write(text).close();
  if (users === null) throw cgiError('ERRCODE_MISS_USERLIST', 'the XML has no <userList>');
  return { spliter, depts, users };
}

const clean = (v: string | undefined) => (v === undefined || v.trim() === '' ? null : v.trim());

/** The XML as the org's replace list, with the seats to set afterwards and what was not taken. */
export function planXml(text: string, existing: OrgDepartment[]): JobPayload {
  if (!text.trim()) throw cgiError('ERRCODE_INVALID_REQUEST', 'the body must be the org XML');
  const { spliter, depts, users } = parse(text);
  const split = (p: string) => p.split(spliter).map((s) => s.trim()).filter(Boolean);
  const join = (parts: string[]) => parts.join('/');

  // Listed departments (and the ancestors their paths imply), keyed by the normalised path.
  let list: NonNullable<OrgReplace['departments']> | null = null;
  // A path's entry, and whether a <dept> listed it (or only a deeper path implied it).
  const byPath = new Map<string, { dept: NonNullable<OrgReplace['departments']>[number]; listed: boolean }>();
  const byListedId = new Map<number, string>();
  if (depts) {
    const entries: NonNullable<OrgReplace['departments']> = (list = []);
    const add = (parts: string[], raw: RawDept | null) => {
      const key = join(parts);
      const prior = byPath.get(key);
      if (prior?.listed && raw) fail('ERRCODE_EXIST_DEPT', raw.line, `department "${key}" is listed twice`);
      if (prior && !raw) return;
      if (!prior && parts.length > 1) add(parts.slice(0, -1), null);
      const name = parts[parts.length - 1];
      const line = raw?.line ?? 0;
      if ([...name].length > 100) fail('ERRCODE_OVERLIMIT_DEPTNAME', line, `the name "${name.slice(0, 40)}…" is longer than 100 characters`);
      const id = clean(raw?.id);
      if (id !== null && (!/^\d{1,10}$/.test(id) || Number(id) < 1 || Number(id) > 2_147_483_647)) fail('ERRCODE_INVALID_FORMAT_DEPTID', line, `id "${id}" of "${key}" is not a department id`);
      if (id !== null && byListedId.has(Number(id))) fail('ERRCODE_EXIST_DEPT', line, `department id ${id} is given to "${byListedId.get(Number(id))}" and "${key}"`);
      const sortId = clean(raw?.sortId);
      if (sortId !== null && !/^-?\d{1,9}$/.test(sortId)) fail('ERRCODE_INVALID_FORMAT_DEPTSORTID', line, `sortId "${sortId}" is not a number`);
      const dept = prior?.dept ?? { key, parentKey: parts.length > 1 ? join(parts.slice(0, -1)) : null, name };
      if (id !== null) {
        dept.id = Number(id);
        byListedId.set(Number(id), key);
      }
      if (raw?.alias !== undefined) dept.alias = clean(raw.alias);
      if (sortId !== null) dept.sortOrder = Number(sortId);
      if (!prior) entries.push(dept);
      byPath.set(key, { dept, listed: raw !== null });
    };
    for (const d of depts) {
      const parts = split(d.path);
      if (!parts.length) fail('ERRCODE_INVALID_FORMAT_DEPT', d.line, 'a <dept> needs a path');
      add(parts, d);
    }
  }
  // Without a list, paths name the departments there are.
  const existingPaths = new Map<string, number>();
  if (!depts) {
    const byId = new Map(existing.map((d) => [d.id, d]));
    const pathOf = (d: OrgDepartment): string => (d.parentId === null || !byId.has(d.parentId) ? d.name : `${pathOf(byId.get(d.parentId)!)}/${d.name}`);
    for (const d of existing) existingPaths.set(pathOf(d), d.id);
  }
  const existingIds = new Set(existing.map((d) => d.id));

  const seen = new Set<string>();
  const authorise: string[] = [];
  const deauthorise: string[] = [];
  let passwords = 0;
  const people = users.map((u) => {
    const get = (...names: string[]) => names.map((n) => u.attrs.get(n)).find((v) => v !== undefined);
    const account = (get('id', 'userid', 'account') ?? '').trim();
    if (!account) fail('ERRCODE_MISS_USERID', u.line, '<user> needs an id');
    if ([...account].length > 64) fail('ERRCODE_OVERLIMIT_USERID', u.line, `id "${account.slice(0, 40)}…" is longer than 64 characters`);
    if (!/^[\p{L}\p{N}._@-]+$/u.test(account)) fail('ERRCODE_INVALID_FORMAT_USERID', u.line, `id "${account}" may hold only letters, digits and . _ @ -`);
    if (seen.has(account)) fail('ERRCODE_REPEAT_USERID', u.line, `id "${account}" appears twice`);
    seen.add(account);
    const at = (m: string) => `"${account}": ${m}`;
    const name = (get('name') ?? '').trim() || account;
    if ([...name].length > 64) fail('ERRCODE_OVERLIMIT_USERNAME', u.line, at('name is longer than 64 characters'));
    const g = clean(get('gender'));
    if (g !== null && !['0', '1', '2'].includes(g)) fail('ERRCODE_INVALID_FORMAT_USERGENDER', u.line, at('gender must be 0 (male) or 1 (female)'));
    const auth = clean(get('authtype'));
    if (auth !== null && auth !== '0' && auth !== '2') fail('ERRCODE_INVALID_FORMAT_AUTHTYPE', u.line, at('authType must be 0 (local) or 2 (third party)'));
    const state = clean(get('enablestate'));
    if (state !== null && !['-1', '0', '1'].includes(state)) fail('ERRCODE_INVALID_REQUEST', u.line, at('enableState must be -1, 0 or 1'));
    if (state === '1') authorise.push(account);
    if (state === '0') deauthorise.push(account);
    if (clean(get('password', 'passwd'))) passwords++;
    const email = clean(get('email'));
    if (email !== null && !/^[^\s@]+@[^\s@]+$/.test(email)) fail('ERRCODE_INVALID_FORMAT_USEREMAIL', u.line, at(`email "${email}" is not an e-mail address`));
    const memberships = u.positions.map((p) => {
      const raw = (p.get('deptpath') ?? p.get('deptid') ?? '').trim();
      const position = clean(p.get('position'));
      const weight = clean(p.get('weight'));
      if (weight !== null && !/^-?\d{1,9}$/.test(weight)) fail('ERRCODE_INVALID_FORMAT_WEIGHT', u.line, at(`weight "${weight}" is not a number`));
      const extra = { position, weight: weight === null ? 0 : Number(weight) };
      if (depts) {
        const key = join(split(raw));
        if (byPath.has(key)) return { departmentKey: key, ...extra };
        if (/^\d+$/.test(raw) && byListedId.has(Number(raw))) return { departmentKey: byListedId.get(Number(raw))!, ...extra };
      } else {
        const id = existingPaths.get(join(split(raw))) ?? (/^\d+$/.test(raw) && existingIds.has(Number(raw)) ? Number(raw) : undefined);
        if (id !== undefined) return { departmentId: id, ...extra };
      }
      return fail('ERRCODE_NOTEXIST_DEPT', u.line, at(`department "${raw}" is not ${depts ? 'in <deptList>' : 'there'}`));
    });
    if (memberships.length > 20) fail('ERRCODE_OVERLIMIT_USERDEPT', u.line, at('more than 20 departments'));
    return {
      account,
      name,
      gender: g === '1' ? ('female' as const) : g === '0' ? ('male' as const) : null,
      mobile: clean(get('mobile')),
      phone: clean(get('phone')),
      email,
      ...(auth !== null ? { authType: auth === '2' ? ('external' as const) : ('password' as const) } : {}),
      ...(state !== null ? { status: state === '-1' ? ('disabled' as const) : ('active' as const) } : {}),
      departments: memberships,
    };
  });
  const notes = passwords ? [`${passwords} password(s) given as MD5 were not set: Qiao keeps only its own password hashes`] : [];
  return { replace: { departments: list, users: people }, seats: { authorise, deauthorise }, ...(notes.length ? { notes } : {}) };
}

export const xmlSyncRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/org/xmlsync'],
    methods: ['POST'],
    apps: ORG_WRITE,
    rawBody: true,
    async handler(req: CgiRequest) {
      const payload = planXml(req.text, await departments(req.ctx));
      return { jobId: await queueJob(req, 'org_xml_sync', payload, null) };
    },
  },
];
