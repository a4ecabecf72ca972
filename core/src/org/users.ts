import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { checkCustomValues, listCustomFields, mergeCustomValues, type CustomValues } from './custom-fields.ts';
import { loadTree } from './departments.ts';
import {
  LIMITS,
  WEIGHT_RANGE,
  blankToNull,
  checkAccount,
  checkInteger,
  checkText,
  checkUserFields,
  type AuthType,
  type FieldProblem,
  type Gender,
  type UserFields,
  type UserStatus,
} from './fields.ts';
import type { OrgTx } from './org-write.ts';
import { assertWritable, type WriteOrigin } from './read-only.ts';
import { bool, chunked, exec, inList, jsonParam, likePattern, parseJson, placeholders, queryRows, select } from '../db/sql.ts';

export interface Membership {
  departmentId: number;
  position: string | null;
  weight: number;
}

export interface Secrecy {
  mobile: boolean;
  phone: boolean;
  email: boolean;
}

export const NO_SECRECY: Secrecy = { mobile: false, phone: false, email: false };
export const MAX_MEMBERSHIPS = 50;

export interface OrgUser {
  id: number;
  account: string;
  name: string;
  gender: Gender | null;
  mobile: string | null;
  phone: string | null;
  shortNumber: string | null;
  email: string | null;
  avatar: string | null;
  authType: AuthType;
  status: UserStatus;
  /** Owned by the auth service (licence seats); shown, never set, here. */
  authorised: boolean;
  customFields: CustomValues;
  secrecy: Secrecy;
  source: string | null;
  externalId: string | null;
  version: number;
  departments: Membership[];
}

export interface UserRow {
  id: number;
  account: string;
  name: string;
  gender: Gender | null;
  mobile: string | null;
  phone: string | null;
  short_number: string | null;
  email: string | null;
  avatar: string | null;
  auth_type: AuthType | null;
  status: UserStatus;
  authorised: unknown;
  custom_fields: unknown;
  secrecy: unknown;
  source: string | null;
  external_id: string | null;
  version: number | string;
  placement_version: number | string;
}

export const USER_COLUMNS =
  'id, account, name, gender, mobile, phone, short_number, email, avatar, auth_type, status, authorised, custom_fields, secrecy, source, external_id, version, placement_version';

export function parseSecrecy(v: unknown): Secrecy {
  if (v === null || v === undefined) return { ...NO_SECRECY };
  const s = parseJson<Partial<Secrecy>>(v) ?? {};
  return { mobile: s.mobile === true, phone: s.phone === true, email: s.email === true };
}

export function toUser(r: UserRow, departments: Membership[] = []): OrgUser & { placementVersion: number } {
  return {
    id: Number(r.id),
    account: r.account,
    name: r.name,
    gender: r.gender,
    mobile: r.mobile,
    phone: r.phone,
    shortNumber: r.short_number,
    email: r.email,
    avatar: r.avatar,
    authType: r.auth_type ?? 'password',
    status: r.status,
    authorised: bool(r.authorised),
    customFields: (r.custom_fields === null || r.custom_fields === undefined ? {} : parseJson<CustomValues>(r.custom_fields)) ?? {},
    secrecy: parseSecrecy(r.secrecy),
    source: r.source,
    externalId: r.external_id,
    version: Number(r.version),
    placementVersion: Number(r.placement_version),
    departments,
  };
}

export function publicUser(u: OrgUser): OrgUser {
  const { placementVersion: _, ...rest } = u as OrgUser & { placementVersion?: number };
  return rest;
}

interface MembershipRow {
  user_id: number;
  department_id: number;
  position: string | null;
  weight: number;
}

/** Memberships of `userIds` (all users when null), ordered by weight (larger first) then department. */
export async function loadMemberships(db: Database, userIds: number[] | null, transaction?: Transaction): Promise<Map<number, Membership[]>> {
  const out = new Map<number, Membership[]>();
  const add = (rows: MembershipRow[]) => {
    for (const r of rows) {
      const id = Number(r.user_id);
      const list = out.get(id) ?? [];
      list.push({ departmentId: Number(r.department_id), position: r.position, weight: Number(r.weight) });
      out.set(id, list);
    }
  };
  const sql = 'SELECT user_id, department_id, position, weight FROM user_departments';
  if (userIds === null) add(await select<MembershipRow>(db, `${sql} ORDER BY user_id, weight DESC, department_id`, [], transaction));
  else {
    for (const part of chunked(userIds, 500)) {
      if (part.length) add(await select<MembershipRow>(db, `${sql} WHERE user_id IN ${inList(part.length)} ORDER BY user_id, weight DESC, department_id`, part, transaction));
    }
  }
  return out;
}

export async function findUser(db: Database, id: number, transaction?: Transaction, field = 'id'): Promise<OrgUser & { placementVersion: number }> {
  const [row] = await select<UserRow>(db, `SELECT ${USER_COLUMNS} FROM users WHERE id = ?`, [id], transaction);
  if (!row) throw qiaoError('QIAO_NOT_FOUND', `user ${id} does not exist`, { field });
  const m = await loadMemberships(db, [id], transaction);
  return toUser(row, m.get(id) ?? []);
}

function throwProblems(problems: FieldProblem[]): void {
  if (problems.length) throw qiaoError('QIAO_VALIDATION', problems.map((p) => p.message).join('; '), { field: problems[0].field, problems });
}

/** Checks a membership list: departments exist, none twice, positions and weights in range. */
export async function checkMemberships(db: Database, t: Transaction, memberships: Array<Partial<Membership>>, field = 'departments'): Promise<Membership[]> {
  if (memberships.length > MAX_MEMBERSHIPS) throw qiaoError('QIAO_VALIDATION', `a person can belong to at most ${MAX_MEMBERSHIPS} departments`, { field });
  const wanted = memberships.map((m) => m.departmentId).filter((id): id is number => typeof id === 'number');
  const existing = new Set(
    wanted.length ? (await select<{ id: number }>(db, `SELECT id FROM departments WHERE id IN ${inList(wanted.length)}`, wanted, t)).map((r) => Number(r.id)) : [],
  );
  const seen = new Set<number>();
  const out: Membership[] = [];
  memberships.forEach((m, i) => {
    const f = `${field}[${i}]`;
    const id = m.departmentId;
    if (typeof id !== 'number' || !existing.has(id)) throw qiaoError('QIAO_NOT_FOUND', `${f}.departmentId: department ${String(id)} does not exist`, { field: `${f}.departmentId` });
    if (seen.has(id)) throw qiaoError('QIAO_VALIDATION', `${f}.departmentId: department ${id} is listed twice`, { field: `${f}.departmentId` });
    seen.add(id);
    throwProblems([checkText(`${f}.position`, m.position, LIMITS.position), checkInteger(`${f}.weight`, m.weight, WEIGHT_RANGE)].filter((p): p is FieldProblem => p !== null));
    out.push({ departmentId: id, position: blankToNull(m.position) ?? null, weight: m.weight ?? 0 });
  });
  return out;
}

export async function writeMemberships(db: Database, t: Transaction, userId: number, memberships: Membership[]): Promise<void> {
  await exec(db, 'DELETE FROM user_departments WHERE user_id = ?', [userId], t);
  if (!memberships.length) return;
  await exec(
    db,
    `INSERT INTO user_departments (user_id, department_id, position, weight) VALUES ${memberships.map(() => placeholders(4)).join(', ')}`,
    memberships.flatMap((m) => [userId, m.departmentId, m.position, m.weight]),
    t,
  );
}

const sameMemberships = (a: Membership[], b: Membership[]) => {
  const key = (l: Membership[]) => l.map((m) => `${m.departmentId}|${m.position ?? ''}|${m.weight}`).sort().join('\n');
  return key(a) === key(b);
};

async function assertAccountFree(db: Database, t: Transaction, account: string, exceptId: number | null): Promise<void> {
  const rows = await select<{ id: number }>(db, `SELECT id FROM users WHERE account = ?${exceptId ? ' AND id <> ?' : ''}`, exceptId ? [account, exceptId] : [account], t);
  if (rows.length) throw qiaoError('QIAO_CONFLICT', `account "${account}" is already used by user ${rows[0].id}`, { field: 'account' });
}

export interface CreateUserInput extends Partial<Omit<UserFields, 'name'>> {
  account: string;
  name: string;
  departments?: Array<Partial<Membership>>;
  customFields?: Record<string, unknown>;
  secrecy?: Partial<Secrecy>;
  source?: string | null;
  externalId?: string | null;
}

export async function createUser(db: Database, w: OrgTx, origin: WriteOrigin, input: CreateUserInput): Promise<OrgUser> {
  const { t } = w;
  const accountProblem = checkAccount(input.account);
  throwProblems([...(accountProblem ? [accountProblem] : []), ...checkUserFields(input)]);
  await assertWritable(db, t, origin, { source: input.source ?? null }, `a new user from source "${input.source}"`);
  await assertAccountFree(db, t, input.account, null);
  const memberships = await checkMemberships(db, t, input.departments ?? []);
  const { values, problems } = checkCustomValues(await listCustomFields(db, t), input.customFields ?? {});
  throwProblems(problems);
  const custom = mergeCustomValues(null, values);
  const secrecy = { ...NO_SECRECY, ...(input.secrecy ?? {}) };
  const now = new Date();
  const [row] = await queryRows<{ id: number }>(
    db,
    `INSERT INTO users (account, name, gender, mobile, phone, short_number, email, auth_type, status, authorised, custom_fields, secrecy,
       source, external_id, version, placement_version, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ${jsonParam(db)}, ${jsonParam(db)}, ?, ?, ?, ?, ?, ?) RETURNING id`,
    [
      input.account,
      input.name,
      blankToNull(input.gender),
      blankToNull(input.mobile),
      blankToNull(input.phone),
      blankToNull(input.shortNumber),
      blankToNull(input.email),
      input.authType ?? 'password',
      false,
      custom ? JSON.stringify(custom) : null,
      JSON.stringify(secrecy),
      input.source ?? null,
      input.externalId ?? null,
      w.version,
      w.version,
      now,
      now,
    ],
    t,
  );
  const id = Number(row.id);
  await writeMemberships(db, t, id, memberships);
  const user = publicUser(await findUser(db, id, t));
  w.events.push({ topic: 'org.user.changed', subject: `user:${id}`, payload: { change: 'created', user: eventUser(user) } });
  return user;
}

/** What the durable log carries about a person: enough for consumers, never more than the directory shows. */
export function eventUser(u: OrgUser) {
  return { id: u.id, account: u.account, name: u.name, status: u.status, departments: u.departments, source: u.source };
}

export interface UpdateUserInput extends Partial<UserFields> {
  id: number;
  account?: string;
  departments?: Array<Partial<Membership>>;
  customFields?: Record<string, unknown>;
  externalId?: string | null;
}

const PROFILE: Array<[keyof UserFields, string]> = [
  ['name', 'name'],
  ['gender', 'gender'],
  ['mobile', 'mobile'],
  ['phone', 'phone'],
  ['shortNumber', 'short_number'],
  ['email', 'email'],
  ['authType', 'auth_type'],
];

export async function updateUser(db: Database, w: OrgTx, origin: WriteOrigin, input: UpdateUserInput): Promise<OrgUser> {
  const { t } = w;
  const current = await findUser(db, input.id, t);
  const touchesOwned = input.account !== undefined || input.departments !== undefined || PROFILE.some(([k]) => input[k] !== undefined) || input.externalId !== undefined;
  if (touchesOwned) await assertWritable(db, t, origin, current, `user "${current.account}"`);
  const fields: Partial<Record<keyof UserFields, unknown>> = {};
  for (const [k] of PROFILE) if (input[k] !== undefined) fields[k] = input[k];
  const accountProblem = input.account !== undefined ? checkAccount(input.account) : null;
  throwProblems([...(accountProblem ? [accountProblem] : []), ...checkUserFields(fields)]);

  const sets: string[] = [];
  const values: unknown[] = [];
  if (input.account !== undefined && input.account !== current.account) {
    await assertAccountFree(db, t, input.account, current.id);
    sets.push('account = ?');
    values.push(input.account);
  }
  for (const [k, col] of PROFILE) {
    if (input[k] === undefined) continue;
    const next = k === 'name' || k === 'authType' ? input[k] : blankToNull(input[k]);
    if (next === current[k]) continue;
    sets.push(`${col} = ?`);
    values.push(next);
  }
  if (input.externalId !== undefined && (input.externalId || null) !== current.externalId) {
    sets.push('external_id = ?');
    values.push(input.externalId || null);
  }
  if (input.customFields !== undefined) {
    const { values: changes, problems } = checkCustomValues(await listCustomFields(db, t), input.customFields);
    throwProblems(problems);
    const merged = mergeCustomValues(current.customFields, changes);
    if (JSON.stringify(merged ?? {}) !== JSON.stringify(current.customFields)) {
      sets.push(`custom_fields = ${jsonParam(db)}`);
      values.push(merged ? JSON.stringify(merged) : null);
    }
  }
  let placement = false;
  if (input.departments !== undefined) {
    const memberships = await checkMemberships(db, t, input.departments);
    if (!sameMemberships(memberships, current.departments)) {
      await writeMemberships(db, t, current.id, memberships);
      placement = true;
    }
  }
  if (!sets.length && !placement) return publicUser(current);
  if (placement) sets.push(`placement_version = ${Number(w.version)}`);
  await exec(db, `UPDATE users SET ${sets.join(', ')}, version = ?, updated_at = ? WHERE id = ?`, [...values, w.version, new Date(), current.id], t);
  const user = publicUser(await findUser(db, current.id, t));
  w.events.push({ topic: 'org.user.changed', subject: `user:${user.id}`, payload: { change: 'updated', user: eventUser(user) } });
  return user;
}

export async function setMemberships(db: Database, w: OrgTx, origin: WriteOrigin, userId: number, memberships: Array<Partial<Membership>>): Promise<OrgUser> {
  return updateUser(db, w, origin, { id: userId, departments: memberships });
}

/**
 * Moves people from one department to another (Youdu's 迁移成员). Without `fromDepartmentId` every current
 * membership is replaced by the target; with it, only that membership moves, keeping position and weight.
 */
export async function moveUsers(
  db: Database,
  w: OrgTx,
  origin: WriteOrigin,
  input: { userIds: number[]; toDepartmentId: number; fromDepartmentId?: number },
): Promise<{ moved: number[] }> {
  const moved: number[] = [];
  for (const [i, id] of input.userIds.entries()) {
    const user = await findUser(db, id, w.t, `userIds[${i}]`);
    let next: Membership[];
    if (input.fromDepartmentId !== undefined) {
      const from = user.departments.find((m) => m.departmentId === input.fromDepartmentId);
      if (!from) {
        throw qiaoError('QIAO_VALIDATION', `user "${user.account}" is not in department ${input.fromDepartmentId}`, { field: 'fromDepartmentId' });
      }
      const rest = user.departments.filter((m) => m.departmentId !== input.fromDepartmentId && m.departmentId !== input.toDepartmentId);
      next = [...rest, { ...from, departmentId: input.toDepartmentId }];
    } else {
      const kept = user.departments.find((m) => m.departmentId === input.toDepartmentId);
      next = [kept ?? { departmentId: input.toDepartmentId, position: user.departments[0]?.position ?? null, weight: user.departments[0]?.weight ?? 0 }];
    }
    try {
      await updateUser(db, w, origin, { id, departments: next });
    } catch (err) {
      const data = (err as { data?: { field?: string } }).data;
      if (data?.field?.startsWith('departments[')) data.field = 'toDepartmentId';
      throw err;
    }
    moved.push(id);
  }
  return { moved };
}

export type StatusAction = 'enable' | 'disable' | 'resign' | 'restore';

const TRANSITIONS: Record<StatusAction, { from: UserStatus[]; to: UserStatus }> = {
  enable: { from: ['disabled'], to: 'active' },
  disable: { from: ['active'], to: 'disabled' },
  resign: { from: ['active', 'disabled'], to: 'resigned' },
  restore: { from: ['resigned'], to: 'active' },
};

/**
 * Status changes. Enabling and disabling are a Qiao login matter and allowed on records an external
 * master owns; resigning and restoring are employment facts that come from the master.
 */
export async function changeStatus(
  db: Database,
  w: OrgTx,
  origin: WriteOrigin,
  input: { id: number; action: StatusAction; departmentId?: number },
): Promise<OrgUser> {
  const current = await findUser(db, input.id, w.t);
  if (input.action === 'resign' || input.action === 'restore') await assertWritable(db, w.t, origin, current, `user "${current.account}"`);
  const rule = TRANSITIONS[input.action];
  if (current.status === rule.to && input.departmentId === undefined) return publicUser(current);
  if (!rule.from.includes(current.status)) {
    const hint = current.status === 'resigned' ? ': restore the person first' : '';
    throw qiaoError('QIAO_CONFLICT', `cannot ${input.action} user "${current.account}": the account is ${current.status}${hint}`, { field: 'id', status: current.status });
  }
  if (input.departmentId !== undefined) {
    const [m] = await checkMemberships(db, w.t, [{ departmentId: input.departmentId }], 'departmentId');
    void m;
    await writeMemberships(db, w.t, current.id, [{ departmentId: input.departmentId, position: current.departments[0]?.position ?? null, weight: 0 }]);
  }
  await exec(db, 'UPDATE users SET status = ?, version = ?, placement_version = ?, updated_at = ? WHERE id = ?', [rule.to, w.version, w.version, new Date(), current.id], w.t);
  const user = publicUser(await findUser(db, current.id, w.t));
  w.statusChanges.push({ userId: user.id, status: user.status });
  w.events.push({ topic: 'org.user.changed', subject: `user:${user.id}`, payload: { change: 'status', from: current.status, user: eventUser(user) } });
  return user;
}

/** Per-person hiding of mobile / phone / email from clients (Youdu's 保密设置); absent flags stay as they are. */
export async function setSecrecy(db: Database, w: OrgTx, userIds: number[], flags: Partial<Secrecy>): Promise<{ users: Array<{ id: number; secrecy: Secrecy }> }> {
  const out: Array<{ id: number; secrecy: Secrecy }> = [];
  for (const [i, id] of userIds.entries()) {
    const current = await findUser(db, id, w.t, `userIds[${i}]`);
    const next: Secrecy = { ...current.secrecy, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => typeof v === 'boolean')) };
    if (JSON.stringify(next) !== JSON.stringify(current.secrecy)) {
      await exec(db, `UPDATE users SET secrecy = ${jsonParam(db)}, version = ?, updated_at = ? WHERE id = ?`, [JSON.stringify(next), w.version, new Date(), id], w.t);
      w.events.push({ topic: 'org.user.changed', subject: `user:${id}`, payload: { change: 'secrecy', userId: id, secrecy: next } });
    }
    out.push({ id, secrecy: next });
  }
  return { users: out };
}

export interface ListUsersQuery {
  departmentId?: number;
  includeSub?: boolean;
  status?: UserStatus | 'all' | 'current';
  search?: string;
  page?: number;
  pageSize?: number;
}

/** The admin's paged person list; `current` (the default) is everyone not resigned. */
export async function listUsers(db: Database, q: ListUsersQuery): Promise<{ total: number; page: number; pageSize: number; users: OrgUser[] }> {
  const page = q.page ?? 1;
  const pageSize = q.pageSize ?? 50;
  const where: string[] = [];
  const args: unknown[] = [];
  const status = q.status ?? 'current';
  if (status === 'current') where.push("u.status <> 'resigned'");
  else if (status !== 'all') {
    where.push('u.status = ?');
    args.push(status);
  }
  let from = 'users u';
  let order = 'u.account, u.id';
  if (q.departmentId !== undefined) {
    const tree = await loadTree(db);
    if (!tree.byId.has(q.departmentId)) throw qiaoError('QIAO_NOT_FOUND', `department ${q.departmentId} does not exist`, { field: 'departmentId' });
    const ids = q.includeSub ? tree.subtree(q.departmentId) : [q.departmentId];
    // One row per person even when they are in several of the departments listed: their largest weight counts.
    from = `users u JOIN (SELECT user_id, MAX(weight) AS weight FROM user_departments WHERE department_id IN ${inList(ids.length)} GROUP BY user_id) m ON m.user_id = u.id`;
    args.unshift(...ids);
    order = 'm.weight DESC, u.account, u.id';
  }
  if (q.search) {
    const pattern = likePattern(q.search.toLowerCase());
    where.push("(LOWER(u.account) LIKE ? ESCAPE '\\' OR LOWER(u.name) LIKE ? ESCAPE '\\')");
    args.push(pattern, pattern);
  }
  const whereSql = where.length ? ` WHERE ${where.join(' AND ')}` : '';
  const [{ n }] = await select<{ n: number | string }>(db, `SELECT COUNT(*) AS n FROM ${from}${whereSql}`, args);
  const rows = await select<UserRow>(
    db,
    `SELECT ${USER_COLUMNS.split(', ').map((c) => `u.${c}`).join(', ')} FROM ${from}${whereSql} ORDER BY ${order} LIMIT ? OFFSET ?`,
    [...args, pageSize, (page - 1) * pageSize],
  );
  const memberships = await loadMemberships(db, rows.map((r) => Number(r.id)));
  return { total: Number(n), page, pageSize, users: rows.map((r) => publicUser(toUser(r, memberships.get(Number(r.id)) ?? []))) };
}

/** Everyone (resigned too unless `current`), for exports. */
export async function loadAllUsers(db: Database, transaction?: Transaction, current = false): Promise<OrgUser[]> {
  const rows = await select<UserRow>(db, `SELECT ${USER_COLUMNS} FROM users${current ? " WHERE status <> 'resigned'" : ''} ORDER BY id`, [], transaction);
  const memberships = await loadMemberships(db, null, transaction);
  return rows.map((r) => publicUser(toUser(r, memberships.get(Number(r.id)) ?? [])));
}

/** People by id, in the order asked, whatever their status; ids nobody has are left out. */
export async function findUsersByIds(db: Database, ids: number[]): Promise<OrgUser[]> {
  const wanted = [...new Set(ids)];
  const rows = new Map<number, UserRow>();
  for (const part of chunked(wanted, 500)) {
    for (const r of await select<UserRow>(db, `SELECT ${USER_COLUMNS} FROM users WHERE id IN ${inList(part.length)}`, part)) rows.set(Number(r.id), r);
  }
  const found = wanted.filter((id) => rows.has(id));
  const memberships = await loadMemberships(db, found);
  return found.map((id) => publicUser(toUser(rows.get(id)!, memberships.get(id) ?? [])));
}

/**
 * Current (not resigned) people whose e-mail is one of `emails`, compared without case. Addresses are not
 * unique in a directory (a shared mailbox), so every holder is returned; the caller decides.
 */
export async function findUsersByEmail(db: Database, emails: string[]): Promise<OrgUser[]> {
  const wanted = [...new Set(emails.map((e) => e.trim().toLowerCase()).filter(Boolean))];
  const rows: UserRow[] = [];
  for (const part of chunked(wanted, 500)) {
    rows.push(...(await select<UserRow>(db, `SELECT ${USER_COLUMNS} FROM users WHERE LOWER(email) IN ${inList(part.length)} AND status <> 'resigned'`, part)));
  }
  rows.sort((a, b) => Number(a.id) - Number(b.id));
  const memberships = await loadMemberships(db, rows.map((r) => Number(r.id)));
  return rows.map((r) => publicUser(toUser(r, memberships.get(Number(r.id)) ?? [])));
}

export async function findUserByAccount(db: Database, account: string): Promise<OrgUser> {
  const [row] = await select<{ id: number }>(db, 'SELECT id FROM users WHERE account = ?', [account]);
  if (!row) throw qiaoError('QIAO_NOT_FOUND', `account "${account}" does not exist`, { field: 'account' });
  return publicUser(await findUser(db, Number(row.id)));
}
