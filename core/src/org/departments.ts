import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { LIMITS, checkText, type FieldProblem } from './fields.ts';
import type { OrgTx } from './org-write.ts';
import { assertWritable, type WriteOrigin } from './read-only.ts';
import { exec, inList, chunked, queryRows, select } from '../db/sql.ts';
import { addTombstone } from './tombstones.ts';
import { DepartmentTree } from './tree.ts';

export interface Department {
  id: number;
  parentId: number | null;
  name: string;
  alias: string | null;
  description: string | null;
  sortOrder: number;
  source: string | null;
  externalId: string | null;
  version: number;
}

interface DepartmentRow {
  id: number;
  parent_id: number | null;
  name: string;
  alias: string | null;
  description: string | null;
  sort_order: number;
  source: string | null;
  external_id: string | null;
  version: number | string;
  placement_version: number | string;
}

export const DEPARTMENT_COLUMNS = 'id, parent_id, name, alias, description, sort_order, source, external_id, version, placement_version';

export function toDepartment(r: DepartmentRow): Department & { placementVersion: number } {
  return {
    id: Number(r.id),
    parentId: r.parent_id === null ? null : Number(r.parent_id),
    name: r.name,
    alias: r.alias,
    description: r.description,
    sortOrder: Number(r.sort_order),
    source: r.source,
    externalId: r.external_id,
    version: Number(r.version),
    placementVersion: Number(r.placement_version),
  };
}

/** Public shape: what admins and events see (no internal placement bookkeeping). */
export function publicDepartment(d: Department): Department {
  const { id, parentId, name, alias, description, sortOrder, source, externalId, version } = d;
  return { id, parentId, name, alias, description, sortOrder, source, externalId, version };
}

export async function loadDepartments(db: Database, transaction?: Transaction): Promise<Array<Department & { placementVersion: number }>> {
  const rows = await select<DepartmentRow>(db, `SELECT ${DEPARTMENT_COLUMNS} FROM departments ORDER BY sort_order, id`, [], transaction);
  return rows.map(toDepartment);
}

export async function loadTree(db: Database, transaction?: Transaction): Promise<DepartmentTree<Department & { placementVersion: number }>> {
  return new DepartmentTree(await loadDepartments(db, transaction));
}

export async function findDepartment(db: Database, id: number, transaction?: Transaction, field = 'id'): Promise<Department & { placementVersion: number }> {
  const [row] = await select<DepartmentRow>(db, `SELECT ${DEPARTMENT_COLUMNS} FROM departments WHERE id = ?`, [id], transaction);
  if (!row) throw qiaoError('QIAO_NOT_FOUND', `department ${id} does not exist`, { field });
  return toDepartment(row);
}

function fail(p: FieldProblem | null): void {
  if (p) throw qiaoError('QIAO_VALIDATION', p.message, { field: p.field });
}

async function assertNameFree(db: Database, t: Transaction, parentId: number | null, name: string, exceptId: number | null): Promise<void> {
  const rows = await select<{ id: number }>(
    db,
    `SELECT id FROM departments WHERE ${parentId === null ? 'parent_id IS NULL' : 'parent_id = ?'} AND name = ?${exceptId ? ' AND id <> ?' : ''}`,
    [...(parentId === null ? [] : [parentId]), name, ...(exceptId ? [exceptId] : [])],
    t,
  );
  if (rows.length) {
    const where = parentId === null ? 'at the top level' : `under department ${parentId}`;
    throw qiaoError('QIAO_CONFLICT', `a department named "${name}" already exists ${where} (department ${rows[0].id})`, { field: 'name' });
  }
}

async function assertAliasFree(db: Database, t: Transaction, alias: string | null, exceptId: number | null): Promise<void> {
  if (!alias) return;
  const rows = await select<{ id: number }>(db, `SELECT id FROM departments WHERE alias = ?${exceptId ? ' AND id <> ?' : ''}`, exceptId ? [alias, exceptId] : [alias], t);
  if (rows.length) throw qiaoError('QIAO_CONFLICT', `alias "${alias}" is already used by department ${rows[0].id}`, { field: 'alias' });
}

export interface CreateDepartmentInput {
  /** An id the caller chooses (Youdu's dept/create, other systems' ids); assigned when absent. */
  id?: number;
  name: string;
  parentId?: number | null;
  alias?: string | null;
  description?: string | null;
  sortOrder?: number;
  source?: string | null;
  externalId?: string | null;
}

export async function createDepartment(db: Database, w: OrgTx, origin: WriteOrigin, input: CreateDepartmentInput): Promise<Department> {
  const { t } = w;
  fail(checkText('name', input.name, LIMITS.departmentName, true));
  const parentId = input.parentId ?? null;
  if (parentId !== null) await findDepartment(db, parentId, t, 'parentId');
  await assertWritable(db, t, origin, { source: input.source ?? null }, `a new department from source "${input.source}"`);
  await assertNameFree(db, t, parentId, input.name, null);
  await assertAliasFree(db, t, input.alias ?? null, null);
  const explicit = input.id !== undefined;
  if (explicit) {
    const [taken] = await select<{ id: number; name: string }>(db, 'SELECT id, name FROM departments WHERE id = ?', [input.id], t);
    if (taken) throw qiaoError('QIAO_CONFLICT', `department id ${input.id} is already taken by "${taken.name}"`, { field: 'id', reason: 'id-taken' });
  }
  const now = new Date();
  const [row] = await queryRows<{ id: number }>(
    db,
    `INSERT INTO departments (${explicit ? 'id, ' : ''}parent_id, name, alias, description, sort_order, source, external_id, version, placement_version, created_at, updated_at)
     VALUES (${explicit ? '?, ' : ''}?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    [
      ...(explicit ? [input.id] : []),
      parentId,
      input.name,
      input.alias || null,
      input.description || null,
      input.sortOrder ?? 0,
      input.source ?? null,
      input.externalId ?? null,
      w.version,
      w.version,
      now,
      now,
    ],
    t,
  );
  // An explicit id leaves PostgreSQL's sequence behind; the next assigned id would collide with it.
  if (explicit && db.dialect === 'postgres') {
    await db.sequelize.query("SELECT setval(pg_get_serial_sequence('departments', 'id'), GREATEST((SELECT MAX(id) FROM departments), 1))", { transaction: t });
  }
  const dept = await findDepartment(db, Number(row.id), t);
  w.events.push({ topic: 'org.department.changed', subject: `department:${dept.id}`, payload: { change: 'created', department: publicDepartment(dept) } });
  return publicDepartment(dept);
}

export interface UpdateDepartmentInput {
  id: number;
  name?: string;
  alias?: string | null;
  description?: string | null;
  sortOrder?: number;
  externalId?: string | null;
}

export async function updateDepartment(db: Database, w: OrgTx, origin: WriteOrigin, input: UpdateDepartmentInput): Promise<Department> {
  const { t } = w;
  const current = await findDepartment(db, input.id, t);
  await assertWritable(db, t, origin, current, `department "${current.name}"`);
  const sets: string[] = [];
  const values: unknown[] = [];
  if (input.name !== undefined && input.name !== current.name) {
    fail(checkText('name', input.name, LIMITS.departmentName, true));
    await assertNameFree(db, t, current.parentId, input.name, current.id);
    sets.push('name = ?');
    values.push(input.name);
  }
  if (input.alias !== undefined && (input.alias || null) !== current.alias) {
    await assertAliasFree(db, t, input.alias || null, current.id);
    sets.push('alias = ?');
    values.push(input.alias || null);
  }
  if (input.description !== undefined && (input.description || null) !== current.description) {
    sets.push('description = ?');
    values.push(input.description || null);
  }
  if (input.sortOrder !== undefined && input.sortOrder !== current.sortOrder) {
    sets.push('sort_order = ?');
    values.push(input.sortOrder);
  }
  if (input.externalId !== undefined && (input.externalId || null) !== current.externalId) {
    sets.push('external_id = ?');
    values.push(input.externalId || null);
  }
  if (sets.length === 0) return publicDepartment(current);
  await exec(db, `UPDATE departments SET ${sets.join(', ')}, version = ?, updated_at = ? WHERE id = ?`, [...values, w.version, new Date(), current.id], t);
  const dept = await findDepartment(db, current.id, t);
  w.events.push({ topic: 'org.department.changed', subject: `department:${dept.id}`, payload: { change: 'updated', department: publicDepartment(dept) } });
  return publicDepartment(dept);
}

/**
 * Marks a set of departments and everyone in them as moved: their place in the tree changed, so who may
 * see them can have changed, and each viewer's delta must re-decide them.
 */
export async function touchPlacement(db: Database, w: OrgTx, departmentIds: number[]): Promise<void> {
  for (const part of chunked(departmentIds, 500)) {
    await exec(db, `UPDATE departments SET version = ?, placement_version = ? WHERE id IN ${inList(part.length)}`, [w.version, w.version, ...part], w.t);
    await exec(
      db,
      `UPDATE users SET version = ?, placement_version = ? WHERE id IN (SELECT user_id FROM user_departments WHERE department_id IN ${inList(part.length)})`,
      [w.version, w.version, ...part],
      w.t,
    );
  }
}

export async function moveDepartment(
  db: Database,
  w: OrgTx,
  origin: WriteOrigin,
  input: { id: number; parentId: number | null; sortOrder?: number },
): Promise<Department> {
  const { t } = w;
  const current = await findDepartment(db, input.id, t);
  await assertWritable(db, t, origin, current, `department "${current.name}"`);
  const parentId = input.parentId ?? null;
  const tree = await loadTree(db, t);
  if (parentId !== null) {
    const parent = await findDepartment(db, parentId, t, 'parentId');
    if (parentId === current.id) {
      throw qiaoError('QIAO_VALIDATION', `department "${current.name}" (${current.id}) cannot be moved under itself`, { field: 'parentId' });
    }
    if (tree.subtree(current.id).includes(parentId)) {
      throw qiaoError(
        'QIAO_VALIDATION',
        `department "${current.name}" (${current.id}) cannot be moved under "${parent.name}" (${parent.id}): that is one of its own sub-departments, and the tree would become a cycle`,
        { field: 'parentId' },
      );
    }
  }
  if (parentId === current.parentId && (input.sortOrder === undefined || input.sortOrder === current.sortOrder)) return publicDepartment(current);
  if (parentId !== current.parentId) await assertNameFree(db, t, parentId, current.name, current.id);
  await exec(
    db,
    'UPDATE departments SET parent_id = ?, sort_order = ?, version = ?, updated_at = ? WHERE id = ?',
    [parentId, input.sortOrder ?? current.sortOrder, w.version, new Date(), current.id],
    t,
  );
  if (parentId !== current.parentId) await touchPlacement(db, w, tree.subtree(current.id));
  const dept = await findDepartment(db, current.id, t);
  w.events.push({
    topic: 'org.department.changed',
    subject: `department:${dept.id}`,
    payload: { change: 'moved', department: publicDepartment(dept), fromParentId: current.parentId },
  });
  return publicDepartment(dept);
}

/**
 * Puts a department right after one of its siblings (`afterId`), or first among them (null): Youdu's
 * dept/sort. The siblings are renumbered 1, 2, 3… in their new order; only those whose number changes are
 * written, and each of those is a department change.
 */
export async function reorderDepartment(db: Database, w: OrgTx, origin: WriteOrigin, input: { id: number; afterId: number | null }): Promise<Department> {
  const { t } = w;
  const current = await findDepartment(db, input.id, t);
  await assertWritable(db, t, origin, current, `department "${current.name}"`);
  if (input.afterId !== null) {
    if (input.afterId === current.id) throw qiaoError('QIAO_VALIDATION', `department ${current.id} cannot be placed after itself`, { field: 'afterId' });
    const after = await findDepartment(db, input.afterId, t, 'afterId');
    if (after.parentId !== current.parentId) {
      const where = (p: number | null) => (p === null ? 'the top level' : `department ${p}`);
      throw qiaoError('QIAO_VALIDATION', `department ${after.id} is not a sibling of department ${current.id}: it sits under ${where(after.parentId)}, not ${where(current.parentId)}`, {
        field: 'afterId',
      });
    }
  }
  const siblings = (await loadDepartments(db, t)).filter((d) => d.parentId === current.parentId && d.id !== current.id).sort((a, b) => a.sortOrder - b.sortOrder || a.id - b.id);
  const at = input.afterId === null ? 0 : siblings.findIndex((d) => d.id === input.afterId) + 1;
  siblings.splice(at, 0, current);
  const now = new Date();
  for (const [i, d] of siblings.entries()) {
    if (d.sortOrder === i + 1) continue;
    await exec(db, 'UPDATE departments SET sort_order = ?, version = ?, updated_at = ? WHERE id = ?', [i + 1, w.version, now, d.id], t);
    const changed = await findDepartment(db, d.id, t);
    w.events.push({ topic: 'org.department.changed', subject: `department:${d.id}`, payload: { change: 'updated', department: publicDepartment(changed) } });
  }
  return publicDepartment(await findDepartment(db, current.id, t));
}

export async function deleteDepartment(db: Database, w: OrgTx, origin: WriteOrigin, id: number): Promise<{ id: number; deleted: true }> {
  const { t } = w;
  const current = await findDepartment(db, id, t);
  await assertWritable(db, t, origin, current, `department "${current.name}"`);
  const [{ n: children }] = await select<{ n: number | string }>(db, 'SELECT COUNT(*) AS n FROM departments WHERE parent_id = ?', [id], t);
  if (Number(children) > 0) {
    throw qiaoError(
      'QIAO_CONFLICT',
      `department "${current.name}" (${id}) still has ${Number(children)} sub-department(s): move or delete them first`,
      { field: 'id', reason: 'has-sub-departments', count: Number(children) },
    );
  }
  const [{ n: members }] = await select<{ n: number | string }>(
    db,
    "SELECT COUNT(*) AS n FROM user_departments ud JOIN users u ON u.id = ud.user_id WHERE ud.department_id = ? AND u.status <> 'resigned'",
    [id],
    t,
  );
  if (Number(members) > 0) {
    throw qiaoError(
      'QIAO_CONFLICT',
      `department "${current.name}" (${id}) still has ${Number(members)} member(s): move them to another department first`,
      { field: 'id', reason: 'has-members', count: Number(members) },
    );
  }
  // Resigned people keep their memberships so a restore puts them back; a deleted department drops out.
  await exec(db, 'UPDATE users SET version = ?, placement_version = ? WHERE id IN (SELECT user_id FROM user_departments WHERE department_id = ?)', [w.version, w.version, id], t);
  await exec(db, 'DELETE FROM user_departments WHERE department_id = ?', [id], t);
  await exec(db, 'DELETE FROM departments WHERE id = ?', [id], t);
  await addTombstone(db, w, 'department', id);
  w.events.push({ topic: 'org.department.deleted', subject: `department:${id}`, payload: { change: 'deleted', department: publicDepartment(current) } });
  return { id, deleted: true };
}

export interface DepartmentDetail extends Department {
  path: Array<{ id: number; name: string }>;
  childCount: number;
  memberCount: number;
}

export async function departmentDetail(db: Database, id: number): Promise<DepartmentDetail> {
  const dept = await findDepartment(db, id);
  const tree = await loadTree(db);
  const path = tree.ancestors(id).reverse().map((a) => ({ id: a, name: tree.byId.get(a)!.name }));
  const [{ n: members }] = await select<{ n: number | string }>(
    db,
    "SELECT COUNT(*) AS n FROM user_departments ud JOIN users u ON u.id = ud.user_id WHERE ud.department_id = ? AND u.status <> 'resigned'",
    [id],
  );
  return { ...publicDepartment(dept), path, childCount: (tree.children.get(id) ?? []).length, memberCount: Number(members) };
}

export interface DepartmentNode extends Department {
  children: DepartmentNode[];
}

/** Siblings in sort order, then by id, so the tree reads the same everywhere. */
export function nest(departments: Department[]): DepartmentNode[] {
  const tree = new DepartmentTree(departments.map((d) => ({ ...d, children: [] as DepartmentNode[] })));
  const order = (a: Department, b: Department) => a.sortOrder - b.sortOrder || a.id - b.id;
  for (const n of tree.byId.values()) {
    n.children = (tree.children.get(n.id) ?? []).slice().sort(order);
  }
  return (tree.children.get(null) ?? []).slice().sort(order);
}
