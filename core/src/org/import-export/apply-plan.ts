import type { Database } from '../../db/database.ts';
import { qiaoError } from '../../errors.ts';
import type { CustomValues } from '../custom-fields.ts';
import { loadDepartments } from '../departments.ts';
import type { AuthType, Gender, UserFields, UserStatus } from '../fields.ts';
import type { OrgTx } from '../org-write.ts';
import { sourceLabel, type WriteOrigin } from '../read-only.ts';
import { readOnlySources } from '../settings.ts';
import { chunked, exec, inList, placeholders, queryRows, select } from '../../db/sql.ts';
import { DepartmentTree } from '../tree.ts';
import { loadMemberships, parseSecrecy, type Membership, type Secrecy } from '../users.ts';
import { importRefused, type ImportProblem } from './problems.ts';

/**
 * The one write path of every importer: a file is parsed and checked into a plan, then the plan is applied
 * in the caller's single org transaction, in batches. Matching makes re-imports idempotent: people by
 * account (or by id for the lossless backup), departments by id, else by parent and name. Rows that would
 * not change are not touched, so re-importing the same file bumps nobody's version.
 */

export interface PlanDepartment {
  /** Unique within the plan; children name their parent by it. */
  key: string;
  /** Stable id (the lossless backup). */
  id?: number;
  parentKey: string | null;
  name: string;
  alias?: string | null;
  description?: string | null;
  sortOrder?: number;
  source?: string | null;
  externalId?: string | null;
  where: string;
}

export interface PlanMembership {
  deptKey?: string;
  departmentId?: number;
  position: string | null;
  weight: number;
}

export interface PlanUserFields extends UserFields {
  status: UserStatus;
  /** Replaces the stored values as a whole (backup); see `customMerge` for spreadsheets. */
  customFields: CustomValues | null;
  secrecy: Secrecy;
  source: string | null;
  externalId: string | null;
  avatar: string | null;
}

export interface PlanUser {
  where: string;
  id?: number;
  account: string;
  fields: Partial<PlanUserFields>;
  /** Spreadsheet columns: merged into the stored custom values key by key. */
  customMerge?: Record<string, string | number | null>;
  memberships?: PlanMembership[];
  /** replace: the plan is the person's whole membership list; merge: add or update these, keep the rest. */
  membershipMode: 'replace' | 'merge';
}

export interface ImportPlan {
  departments: PlanDepartment[];
  users: PlanUser[];
}

export interface ImportCounts {
  created: number;
  updated: number;
  unchanged: number;
}

export interface ImportResult {
  version: number;
  departments: ImportCounts;
  users: ImportCounts;
}

interface ExistingUser extends PlanUserFields {
  id: number;
  account: string;
  authorised: boolean;
  placementVersion: number;
  createdAt: Date;
}

const BATCH = 400;

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

const membershipKey = (l: Membership[]) => l.map((m) => `${m.departmentId}|${m.position ?? ''}|${m.weight}`).sort().join('\n');

export async function applyPlan(db: Database, w: OrgTx, origin: WriteOrigin, plan: ImportPlan, what: string): Promise<ImportResult> {
  const problems: ImportProblem[] = [];
  const readOnly = new Set(await readOnlySources(db, w.t));
  const guarded = (source: string | null) => source !== null && readOnly.has(source) && origin.syncSource !== source;
  const refuseManaged = (where: string, field: string, label: string, source: string) =>
    problems.push({ where, field, message: `${label} is managed by ${sourceLabel(source)} (source "${source}") and cannot be changed by an import` });

  // ---- departments -------------------------------------------------------------------------------------
  const existing = await loadDepartments(db, w.t);
  const byId = new Map(existing.map((d) => [d.id, d]));
  const childByName = new Map<string, number>();
  const nameKey = (parent: number | null, name: string) => `${parent ?? 0}\u0000${name}`;
  for (const d of existing) childByName.set(nameKey(d.parentId, d.name), d.id);
  const aliasOwner = new Map<string, number>();
  for (const d of existing) if (d.alias) aliasOwner.set(d.alias, d.id);

  const resolved = new Map<string, number>();
  const deptCounts: ImportCounts = { created: 0, updated: 0, unchanged: 0 };
  const moved: number[] = [];
  const explicitIds: number[] = [];
  for (const pd of plan.departments) {
    const parentId = pd.parentKey === null ? null : (resolved.get(pd.parentKey) ?? null);
    if (pd.parentKey !== null && parentId === null) {
      problems.push({ where: pd.where, field: 'parentId', message: `department "${pd.name}" names a parent that is not in the file` });
      continue;
    }
    let id = pd.id !== undefined ? (byId.has(pd.id) ? pd.id : undefined) : childByName.get(nameKey(parentId, pd.name));
    const sibling = childByName.get(nameKey(parentId, pd.name));
    if (sibling !== undefined && sibling !== (id ?? pd.id)) {
      problems.push({ where: pd.where, field: 'name', message: `a department named "${pd.name}" already exists there (department ${sibling})` });
      continue;
    }
    const alias = pd.alias === undefined ? undefined : pd.alias || null;
    if (alias) {
      const owner = aliasOwner.get(alias);
      if (owner !== undefined && owner !== (id ?? pd.id)) {
        problems.push({ where: pd.where, field: 'alias', message: `alias "${alias}" is already used by department ${owner}` });
        continue;
      }
    }
    if (id === undefined) {
      if (guarded(pd.source ?? null)) {
        refuseManaged(pd.where, 'source', `department "${pd.name}"`, pd.source!);
        continue;
      }
      const now = new Date();
      const [row] = await queryRows<{ id: number }>(
        db,
        `INSERT INTO departments (${pd.id !== undefined ? 'id, ' : ''}parent_id, name, alias, description, sort_order, source, external_id, version, placement_version, created_at, updated_at)
         VALUES ${placeholders(pd.id !== undefined ? 12 : 11)} RETURNING id`,
        [
          ...(pd.id !== undefined ? [pd.id] : []),
          parentId,
          pd.name,
          alias ?? null,
          pd.description ?? null,
          pd.sortOrder ?? 0,
          pd.source ?? null,
          pd.externalId ?? null,
          w.version,
          w.version,
          now,
          now,
        ],
        w.t,
      );
      id = Number(row.id);
      if (pd.id !== undefined) explicitIds.push(id);
      deptCounts.created++;
    } else {
      const cur = byId.get(id)!;
      const next = {
        parentId,
        name: pd.name,
        alias: alias === undefined ? cur.alias : alias,
        description: pd.description === undefined ? cur.description : pd.description || null,
        sortOrder: pd.sortOrder ?? cur.sortOrder,
        externalId: pd.externalId === undefined ? cur.externalId : pd.externalId,
      };
      const changed =
        next.parentId !== cur.parentId || next.name !== cur.name || next.alias !== cur.alias || next.description !== cur.description || next.sortOrder !== cur.sortOrder || next.externalId !== cur.externalId;
      if (changed) {
        if (guarded(cur.source)) {
          refuseManaged(pd.where, 'name', `department "${cur.name}"`, cur.source!);
          continue;
        }
        await exec(
          db,
          'UPDATE departments SET parent_id = ?, name = ?, alias = ?, description = ?, sort_order = ?, external_id = ?, version = ?, updated_at = ? WHERE id = ?',
          [next.parentId, next.name, next.alias, next.description, next.sortOrder, next.externalId, w.version, new Date(), id],
          w.t,
        );
        if (next.parentId !== cur.parentId) moved.push(id);
        childByName.delete(nameKey(cur.parentId, cur.name));
        deptCounts.updated++;
      } else deptCounts.unchanged++;
    }
    childByName.set(nameKey(parentId, pd.name), id);
    if (alias) aliasOwner.set(alias, id);
    resolved.set(pd.key, id);
  }
  if (problems.length) throw importRefused(what, problems);
  if (moved.length) {
    // A department that moved under the import may now sit where someone may or may not see it.
    const tree = new DepartmentTree(await loadDepartments(db, w.t));
    const ids = [...tree.expand(moved)];
    for (const part of chunked(ids, BATCH)) {
      await exec(db, `UPDATE departments SET version = ?, placement_version = ? WHERE id IN ${inList(part.length)}`, [w.version, w.version, ...part], w.t);
    }
    for (const part of chunked(ids, BATCH)) {
      await exec(db, `UPDATE users SET version = ?, placement_version = ? WHERE id IN (SELECT user_id FROM user_departments WHERE department_id IN ${inList(part.length)})`, [w.version, w.version, ...part], w.t);
    }
  }

  // ---- people ------------------------------------------------------------------------------------------
  const rows = await select<Record<string, unknown>>(
    db,
    'SELECT id, account, name, gender, mobile, phone, short_number, email, auth_type, status, authorised, custom_fields, secrecy, source, external_id, avatar, placement_version, created_at FROM users',
    [],
    w.t,
  );
  const usersByAccount = new Map<string, ExistingUser>();
  const usersById = new Map<number, ExistingUser>();
  for (const r of rows) {
    const u: ExistingUser = {
      id: Number(r.id),
      account: r.account as string,
      name: r.name as string,
      gender: (r.gender as Gender | null) ?? null,
      mobile: (r.mobile as string | null) ?? null,
      phone: (r.phone as string | null) ?? null,
      shortNumber: (r.short_number as string | null) ?? null,
      email: (r.email as string | null) ?? null,
      authType: ((r.auth_type as AuthType | null) ?? 'password') as AuthType,
      status: r.status as UserStatus,
      authorised: r.authorised === true || r.authorised === 1,
      customFields: r.custom_fields === null || r.custom_fields === undefined ? null : typeof r.custom_fields === 'string' ? JSON.parse(r.custom_fields) : (r.custom_fields as CustomValues),
      secrecy: parseSecrecy(r.secrecy),
      source: (r.source as string | null) ?? null,
      externalId: (r.external_id as string | null) ?? null,
      avatar: (r.avatar as string | null) ?? null,
      placementVersion: Number(r.placement_version),
      createdAt: new Date(r.created_at as string),
    };
    usersByAccount.set(u.account, u);
    usersById.set(u.id, u);
  }
  const memberships = await loadMemberships(db, null, w.t);

  const deptIds = new Set((await select<{ id: number }>(db, 'SELECT id FROM departments', [], w.t)).map((r) => Number(r.id)));
  const resolveMembers = (pu: PlanUser): Membership[] | null => {
    const out: Membership[] = [];
    for (const m of pu.memberships ?? []) {
      const id = m.deptKey !== undefined ? resolved.get(m.deptKey) : m.departmentId;
      if (id === undefined || !deptIds.has(id)) {
        problems.push({ where: pu.where, field: 'departments', message: `account "${pu.account}": department ${m.deptKey ?? m.departmentId} does not exist` });
        return null;
      }
      const prior = out.findIndex((x) => x.departmentId === id);
      if (prior >= 0) out.splice(prior, 1);
      out.push({ departmentId: id, position: m.position, weight: m.weight });
    }
    return out;
  };

  type Write = { row: unknown[]; placement: boolean; memberships: Membership[] | null; statusChanged: UserStatus | null };
  const inserts: Array<{ pu: PlanUser; row: unknown[]; memberships: Membership[] }> = [];
  const updates: Write[] = [];
  const userCounts: ImportCounts = { created: 0, updated: 0, unchanged: 0 };
  const now = new Date();
  const seenIds = new Set<number>();
  const planAccounts = new Map<string, string>();
  for (const pu of plan.users) {
    const prior = planAccounts.get(pu.account);
    if (prior !== undefined) {
      problems.push({ where: pu.where, field: 'account', message: `account "${pu.account}" appears twice: ${prior} and ${pu.where}` });
      continue;
    }
    planAccounts.set(pu.account, pu.where);
    if (pu.id !== undefined && seenIds.has(pu.id)) {
      problems.push({ where: pu.where, field: 'id', message: `user id ${pu.id} appears twice in the file` });
      continue;
    }
    const cur = pu.id !== undefined ? usersById.get(pu.id) : usersByAccount.get(pu.account);
    if (pu.id !== undefined) {
      const holder = usersByAccount.get(pu.account);
      if (holder && holder.id !== pu.id) {
        problems.push({ where: pu.where, field: 'account', message: `account "${pu.account}" belongs to user ${holder.id} here, but the file gives it id ${pu.id}` });
        continue;
      }
    }
    const f = pu.fields;
    const desired = resolveMembers(pu);
    if (desired === null) continue;
    if (!cur) {
      if (guarded(f.source ?? null)) {
        refuseManaged(pu.where, 'source', `account "${pu.account}"`, f.source!);
        continue;
      }
      const custom: CustomValues | null = f.customFields ?? (pu.customMerge ? (Object.fromEntries(Object.entries(pu.customMerge).filter(([, v]) => v !== null)) as CustomValues) : null);
      const row = userRow(pu.id ?? null, pu.account, {
        name: f.name ?? pu.account,
        gender: f.gender ?? null,
        mobile: f.mobile ?? null,
        phone: f.phone ?? null,
        shortNumber: f.shortNumber ?? null,
        email: f.email ?? null,
        authType: f.authType ?? 'password',
        status: f.status ?? 'active',
        authorised: false,
        customFields: custom && Object.keys(custom).length ? custom : null,
        secrecy: f.secrecy ?? parseSecrecy(null),
        source: f.source ?? null,
        externalId: f.externalId ?? null,
        avatar: f.avatar ?? null,
        version: w.version,
        placementVersion: w.version,
        createdAt: now,
        updatedAt: now,
      });
      if (pu.id !== undefined) {
        updates.push({ row, placement: true, memberships: desired, statusChanged: null });
        seenIds.add(pu.id);
      } else inserts.push({ pu, row, memberships: desired });
      userCounts.created++;
      continue;
    }
    seenIds.add(cur.id);
    let custom = f.customFields !== undefined ? f.customFields : cur.customFields;
    if (pu.customMerge) {
      const merged: CustomValues = { ...(custom ?? {}) };
      for (const [k, v] of Object.entries(pu.customMerge)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      custom = Object.keys(merged).length ? merged : null;
    }
    const next = {
      name: f.name ?? cur.name,
      gender: f.gender !== undefined ? f.gender : cur.gender,
      mobile: f.mobile !== undefined ? f.mobile : cur.mobile,
      phone: f.phone !== undefined ? f.phone : cur.phone,
      shortNumber: f.shortNumber !== undefined ? f.shortNumber : cur.shortNumber,
      email: f.email !== undefined ? f.email : cur.email,
      authType: f.authType ?? cur.authType,
      status: f.status ?? cur.status,
      customFields: custom,
      secrecy: f.secrecy ?? cur.secrecy,
      externalId: f.externalId !== undefined ? f.externalId : cur.externalId,
      avatar: f.avatar !== undefined ? f.avatar : cur.avatar,
    };
    const had = memberships.get(cur.id) ?? [];
    let nextMembers = had;
    if (pu.memberships !== undefined) {
      if (pu.membershipMode === 'replace') nextMembers = desired;
      else {
        const replacedIds = new Set(desired.map((m) => m.departmentId));
        nextMembers = [...had.filter((m) => !replacedIds.has(m.departmentId)), ...desired];
      }
    }
    const membersChanged = membershipKey(nextMembers) !== membershipKey(had);
    const account = pu.account;
    const fieldsChanged =
      account !== cur.account ||
      (['name', 'gender', 'mobile', 'phone', 'shortNumber', 'email', 'authType', 'status', 'externalId', 'avatar'] as const).some((k) => next[k] !== cur[k]) ||
      !sameJson(next.customFields, cur.customFields) ||
      !sameJson(next.secrecy, cur.secrecy);
    if (!fieldsChanged && !membersChanged) {
      userCounts.unchanged++;
      continue;
    }
    // Profile edits of records an external master owns are refused; so are their memberships.
    if (guarded(cur.source)) {
      refuseManaged(pu.where, 'account', `account "${cur.account}"`, cur.source!);
      continue;
    }
    const placement = membersChanged || next.status !== cur.status;
    updates.push({
      row: userRow(cur.id, account, {
        ...next,
        authorised: cur.authorised,
        source: cur.source,
        version: w.version,
        placementVersion: placement ? w.version : cur.placementVersion,
        createdAt: cur.createdAt,
        updatedAt: now,
      }),
      placement,
      memberships: membersChanged ? nextMembers : null,
      statusChanged: next.status !== cur.status ? next.status : null,
    });
    if (next.status !== cur.status) w.statusChanges.push({ userId: cur.id, status: next.status });
    userCounts.updated++;
  }
  if (problems.length) throw importRefused(what, problems);

  // New people: one INSERT per batch; their ids come back by account.
  const j = db.dialect === 'postgres' ? (i: number) => (i === JSON_COLS[0] || i === JSON_COLS[1] ? '?::json' : '?') : () => '?';
  const membershipWrites: Array<[number, Membership[]]> = [];
  for (const part of chunked(inserts, BATCH)) {
    const back = await queryRows<{ id: number; account: string }>(
      db,
      `INSERT INTO users (${USER_INSERT_COLUMNS.slice(1).join(', ')}) VALUES ${part.map(() => placeholders(USER_INSERT_COLUMNS.length - 1, (i) => j(i + 1))).join(', ')} RETURNING id, account`,
      part.flatMap((p) => p.row.slice(1)),
      w.t,
    );
    const ids = new Map(back.map((r) => [r.account, Number(r.id)]));
    for (const p of part) membershipWrites.push([ids.get(p.pu.account)!, p.memberships]);
  }
  // Existing people that change, and backup rows with ids: an upsert on id writes only the importable
  // columns (authorised and created_at are never overwritten).
  for (const part of chunked(updates, BATCH)) {
    await exec(
      db,
      `INSERT INTO users (${USER_INSERT_COLUMNS.join(', ')}) VALUES ${part.map(() => placeholders(USER_INSERT_COLUMNS.length, j)).join(', ')}
       ON CONFLICT (id) DO UPDATE SET ${UPSERT_SET}`,
      part.flatMap((p) => p.row),
      w.t,
    );
    for (const p of part) if (p.memberships) membershipWrites.push([p.row[0] as number, p.memberships]);
  }
  for (const part of chunked(membershipWrites, BATCH)) {
    // People created just now have no memberships to clear.
    const known = part.filter(([id]) => memberships.has(id)).map(([id]) => id);
    if (known.length) await exec(db, `DELETE FROM user_departments WHERE user_id IN ${inList(known.length)}`, known, w.t);
    const rowsToInsert = part.flatMap(([id, ms]) => ms.map((m) => [id, m.departmentId, m.position, m.weight]));
    for (const ins of chunked(rowsToInsert, BATCH)) {
      await exec(db, `INSERT INTO user_departments (user_id, department_id, position, weight) VALUES ${ins.map(() => placeholders(4)).join(', ')}`, ins.flat(), w.t);
    }
  }
  if (db.dialect === 'postgres') {
    // Rows inserted with explicit ids leave the id sequences behind; the next plain insert would collide.
    if (explicitIds.length) await db.sequelize.query("SELECT setval(pg_get_serial_sequence('departments', 'id'), GREATEST((SELECT MAX(id) FROM departments), 1))", { transaction: w.t });
    if (updates.length) await db.sequelize.query("SELECT setval(pg_get_serial_sequence('users', 'id'), GREATEST((SELECT MAX(id) FROM users), 1))", { transaction: w.t });
  }
  return { version: w.version, departments: deptCounts, users: userCounts };
}

const USER_INSERT_COLUMNS = [
  'id',
  'account',
  'name',
  'gender',
  'mobile',
  'phone',
  'short_number',
  'email',
  'auth_type',
  'status',
  'authorised',
  'custom_fields',
  'secrecy',
  'source',
  'external_id',
  'avatar',
  'version',
  'placement_version',
  'created_at',
  'updated_at',
];
const JSON_COLS = [USER_INSERT_COLUMNS.indexOf('custom_fields'), USER_INSERT_COLUMNS.indexOf('secrecy')];
const UPSERT_SET = USER_INSERT_COLUMNS.filter((c) => !['id', 'authorised', 'created_at', 'source'].includes(c))
  .map((c) => `${c} = excluded.${c}`)
  .join(', ');

function userRow(
  id: number | null,
  account: string,
  v: Omit<PlanUserFields, 'customFields'> & { customFields: CustomValues | null; authorised: boolean; version: number; placementVersion: number; createdAt: Date; updatedAt: Date },
): unknown[] {
  return [
    id,
    account,
    v.name,
    v.gender,
    v.mobile,
    v.phone,
    v.shortNumber,
    v.email,
    v.authType,
    v.status,
    v.authorised,
    v.customFields && Object.keys(v.customFields).length ? JSON.stringify(v.customFields) : null,
    JSON.stringify(v.secrecy),
    v.source,
    v.externalId,
    v.avatar,
    v.version,
    v.placementVersion,
    v.createdAt,
    v.updatedAt,
  ];
}

/** Refuses a plan that names one account twice: the importers call it with their own row labels. */
export function duplicateAccounts(users: Array<{ account: string; where: string }>, field = 'account'): ImportProblem[] {
  const first = new Map<string, string>();
  const out: ImportProblem[] = [];
  for (const u of users) {
    const prior = first.get(u.account);
    if (prior !== undefined) out.push({ where: u.where, field, message: `account "${u.account}" appears twice: ${prior} and ${u.where}` });
    else first.set(u.account, u.where);
  }
  return out;
}

export function assertPlanSize(plan: ImportPlan, maxUsers = 500_000, maxDepartments = 100_000): void {
  if (plan.users.length > maxUsers) throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `the file lists ${plan.users.length} people; at most ${maxUsers} can be imported at once`, { field: 'data' });
  if (plan.departments.length > maxDepartments) {
    throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `the file lists ${plan.departments.length} departments; at most ${maxDepartments} can be imported at once`, { field: 'data' });
  }
}
