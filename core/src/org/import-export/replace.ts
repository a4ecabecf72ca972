import type { Database } from '../../db/database.ts';
import { chunked, exec, inList, select } from '../../db/sql.ts';
import { deleteDepartment, loadDepartments } from '../departments.ts';
import { LIMITS, SORT_RANGE, WEIGHT_RANGE, checkAccount, checkInteger, checkText, checkUserFields, type AuthType, type Gender } from '../fields.ts';
import { orgWrite, type OrgCommit } from '../org-write.ts';
import type { WriteOrigin } from '../read-only.ts';
import { DepartmentTree } from '../tree.ts';
import { MAX_MEMBERSHIPS, changeStatus } from '../users.ts';
import { applyPlan, type ImportCounts, type PlanDepartment, type PlanUser } from './apply-plan.ts';
import { ProblemList } from './problems.ts';

/**
 * The whole directory replaced by a list (Youdu's 全量覆盖, an HR system's nightly push): the departments
 * given become the tree, the people given become everyone. It is planned and applied in one org
 * transaction, so a replace that fails anywhere, its last person included, leaves nothing of itself behind.
 *
 * Departments are matched by id when the list gives one, else by parent and name; people by account. People
 * not in the list resign (their records and messages stay); listed people who had resigned come back.
 * Without a department list the tree stays as it is and only the people are replaced.
 */

export interface ReplaceDepartment {
  /** How the list's people and sub-departments name this department. */
  key: string;
  id?: number;
  parentKey: string | null;
  name: string;
  /** Absent: an existing department keeps its own (a new one has none, and sorts at 0). */
  alias?: string | null;
  sortOrder?: number;
}

export interface ReplaceMembership {
  /** A department of the list (when it has one). */
  departmentKey?: string;
  /** An existing department (when the list has no departments). */
  departmentId?: number;
  position?: string | null;
  weight?: number;
}

export interface ReplaceUser {
  account: string;
  name: string;
  gender?: Gender | null;
  mobile?: string | null;
  phone?: string | null;
  email?: string | null;
  /** Absent: the person keeps theirs. */
  authType?: AuthType;
  /** Absent: a current person keeps theirs, a resigned one comes back active. */
  status?: 'active' | 'disabled';
  departments: ReplaceMembership[];
}

export interface ReplaceInput {
  departments?: ReplaceDepartment[] | null;
  users: ReplaceUser[];
}

export interface ReplaceSummary {
  version: number;
  departments: ImportCounts & { deleted: number };
  users: ImportCounts & { resigned: number };
}

const WHAT = 'org replace';

interface Checked {
  departments: ReplaceDepartment[] | null;
  users: ReplaceUser[];
}

/** Checks the list as a whole before anything is written; every problem is reported at once. */
export function checkReplace(input: ReplaceInput): Checked {
  const problems = new ProblemList();
  const add = (where: string, field: string, message: string) => problems.add({ where, field, message });
  let departments: ReplaceDepartment[] | null = null;
  if (input.departments) {
    const byKey = new Map<string, number>();
    const ids = new Map<number, string>();
    const aliases = new Map<string, string>();
    const siblings = new Map<string, string>();
    input.departments.forEach((d, i) => {
      const where = `departments[${i}]`;
      if (byKey.has(d.key)) add(where, `${where}.key`, `department "${d.key}" appears twice: departments[${byKey.get(d.key)}] and ${where}`);
      else byKey.set(d.key, i);
      if (d.id !== undefined) {
        if (ids.has(d.id)) add(where, `${where}.id`, `department id ${d.id} appears twice: ${ids.get(d.id)} and ${where}`);
        else ids.set(d.id, where);
      }
      for (const p of [
        checkText(`${where}.name`, d.name, LIMITS.departmentName, true),
        checkText(`${where}.alias`, d.alias, LIMITS.alias),
        checkInteger(`${where}.sortOrder`, d.sortOrder, SORT_RANGE),
      ]) {
        if (p) add(where, p.field, p.message);
      }
      if (d.alias) {
        const prior = aliases.get(d.alias);
        if (prior) add(where, `${where}.alias`, `alias "${d.alias}" appears twice: ${prior} and ${where}`);
        else aliases.set(d.alias, where);
      }
      const sibling = `${d.parentKey ?? ''}\u0000${d.name}`;
      const prior = siblings.get(sibling);
      if (prior) add(where, `${where}.name`, `two departments named "${d.name}" under the same parent: ${prior} and ${where}`);
      else siblings.set(sibling, where);
    });
    input.departments.forEach((d, i) => {
      if (d.parentKey !== null && !byKey.has(d.parentKey)) add(`departments[${i}]`, `departments[${i}].parentKey`, `the parent "${d.parentKey}" of department "${d.key}" is not in the list`);
    });
    // Parents before children, as they are created; what the walk cannot reach is a cycle.
    const index = (key: string | null) => (key === null || !byKey.has(key) ? null : byKey.get(key)! + 1);
    const tree = new DepartmentTree(input.departments.map((d, i) => ({ id: i + 1, parentId: index(d.parentKey) })));
    const order = tree.topDown();
    if (order.length < input.departments.length) {
      const reached = new Set(order.map((n) => n.id));
      const stuck = input.departments.findIndex((_, i) => !reached.has(i + 1));
      add(`departments[${stuck}]`, `departments[${stuck}].parentKey`, `department "${input.departments[stuck].key}" is part of a cycle of parents`);
    }
    departments = order.map((n) => input.departments![n.id - 1]);
  }
  const keys = new Set(departments?.map((d) => d.key) ?? []);
  const accounts = new Map<string, string>();
  input.users.forEach((u, i) => {
    const where = `users[${i}]`;
    const pa = checkAccount(u.account, `${where}.account`);
    if (pa) return add(where, pa.field, pa.message);
    const prior = accounts.get(u.account);
    if (prior) add(where, `${where}.account`, `account "${u.account}" appears twice: ${prior} and ${where}`);
    accounts.set(u.account, where);
    const profile = { name: u.name, gender: u.gender ?? null, mobile: u.mobile ?? null, phone: u.phone ?? null, email: u.email ?? null, ...(u.authType ? { authType: u.authType } : {}) };
    for (const p of checkUserFields(profile, `${where}.`)) add(where, p.field, p.message);
    if (u.departments.length > MAX_MEMBERSHIPS) add(where, `${where}.departments`, `a person can belong to at most ${MAX_MEMBERSHIPS} departments`);
    u.departments.forEach((m, j) => {
      const f = `${where}.departments[${j}]`;
      if (departments) {
        if (m.departmentKey === undefined || !keys.has(m.departmentKey)) add(where, `${f}.departmentKey`, `${f}: department "${m.departmentKey ?? m.departmentId}" is not in the list`);
      } else if (m.departmentId === undefined) add(where, `${f}.departmentId`, `${f}: name an existing department by departmentId (the list has no departments)`);
      for (const p of [checkText(`${f}.position`, m.position, LIMITS.position), checkInteger(`${f}.weight`, m.weight, WEIGHT_RANGE)]) if (p) add(where, p.field, p.message);
    });
  });
  problems.throwIfAny(WHAT);
  return { departments, users: input.users };
}

const nameKey = (parent: number | null, name: string) => `${parent ?? 0}\u0000${name}`;

export async function replaceOrg(db: Database, origin: WriteOrigin, input: ReplaceInput): Promise<OrgCommit<ReplaceSummary>> {
  const checked = checkReplace(input);
  return orgWrite(db, async (w) => {
    const existing = await loadDepartments(db, w.t);
    const tree = new DepartmentTree(existing);

    // Which existing department each listed one is; those no listed department is are going away.
    const plan: PlanDepartment[] = [];
    let doomed: number[] = [];
    if (checked.departments) {
      const byId = new Map(existing.map((d) => [d.id, d]));
      const byName = new Map(existing.map((d) => [nameKey(d.parentId, d.name), d.id]));
      const claimed = new Set(checked.departments.map((d) => d.id).filter((id): id is number => id !== undefined));
      // An existing department's id, or "new" for one the list adds.
      const resolved = new Map<string, number | 'new'>();
      const kept = new Set<number>();
      for (const [i, d] of checked.departments.entries()) {
        const parent = d.parentKey === null ? null : resolved.get(d.parentKey)!;
        let id: number | undefined = d.id;
        if (id === undefined && parent !== 'new') {
          const match = byName.get(nameKey(parent, d.name));
          if (match !== undefined && !claimed.has(match)) id = match;
        }
        const found = id !== undefined && byId.has(id);
        resolved.set(d.key, found ? id! : 'new');
        if (found) kept.add(id!);
        plan.push({ key: d.key, ...(id !== undefined ? { id } : {}), parentKey: d.parentKey, name: d.name, alias: d.alias, sortOrder: d.sortOrder, where: `departments[${i}]` });
      }
      doomed = existing.filter((d) => !kept.has(d.id)).map((d) => d.id);
    }

    // People not listed resign first: nobody current is left in a department that goes.
    const listed = new Set(checked.users.map((u) => u.account));
    const people = await select<{ id: number; account: string; status: string }>(db, 'SELECT id, account, status FROM users ORDER BY id', [], w.t);
    let resigned = 0;
    for (const p of people) {
      if (p.status !== 'resigned' && !listed.has(p.account)) {
        await changeStatus(db, w, origin, { id: Number(p.id), action: 'resign' });
        resigned++;
      }
    }
    const wasResigned = new Set(people.filter((p) => p.status === 'resigned').map((p) => p.account));

    // Departments going away lose their memberships now. Those with nothing kept beneath them go at once,
    // freeing their names for the list; the others once the list has moved their kept sub-departments out.
    const depth = (id: number) => tree.ancestors(id).length;
    const deepestFirst = (ids: number[]) => [...ids].sort((a, b) => depth(b) - depth(a) || b - a);
    const going = new Set(doomed);
    const early = doomed.filter((id) => tree.subtree(id).every((x) => going.has(x)));
    const earlySet = new Set(early);
    const late = doomed.filter((id) => !earlySet.has(id));
    for (const part of chunked(doomed, 500)) {
      await exec(db, `UPDATE users SET version = ?, placement_version = ? WHERE id IN (SELECT user_id FROM user_departments WHERE department_id IN ${inList(part.length)})`, [w.version, w.version, ...part], w.t);
      await exec(db, `DELETE FROM user_departments WHERE department_id IN ${inList(part.length)}`, part, w.t);
    }
    for (const id of deepestFirst(early)) await deleteDepartment(db, w, origin, id);

    const users: PlanUser[] = checked.users.map((u, i) => {
      const status = u.status ?? (wasResigned.has(u.account) ? 'active' : undefined);
      return {
        where: `users[${i}]`,
        account: u.account,
        fields: {
          name: u.name,
          gender: u.gender ?? null,
          mobile: u.mobile || null,
          phone: u.phone || null,
          email: u.email || null,
          ...(u.authType ? { authType: u.authType } : {}),
          ...(status ? { status } : {}),
        },
        memberships: u.departments.map((m) => ({
          ...(checked.departments ? { deptKey: m.departmentKey } : { departmentId: m.departmentId }),
          position: m.position || null,
          weight: m.weight ?? 0,
        })),
        membershipMode: 'replace',
      };
    });
    const applied = await applyPlan(db, w, origin, { departments: plan, users }, WHAT);
    for (const id of deepestFirst(late)) await deleteDepartment(db, w, origin, id);

    const summary: ReplaceSummary = {
      version: w.version,
      departments: { ...applied.departments, deleted: doomed.length },
      users: { ...applied.users, resigned },
    };
    // One event for the whole replace; consumers read the details with org.changes since the previous version.
    w.events.push({ topic: 'org.imported', subject: 'import:replace', payload: { format: 'replace', departments: summary.departments, users: summary.users } });
    return summary;
  });
}
