import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { LIMITS, checkText } from './fields.ts';
import type { OrgTx } from './org-write.ts';
import { exec, jsonParam, parseJson, queryRows, select } from '../db/sql.ts';
import type { DepartmentTree } from './tree.ts';
import type { Membership } from './users.ts';

/**
 * Youdu's directory visibility rules (seeds 001 §5.3.1), enforced on every client read:
 * - hide: the target departments (with everything below them) and people are not shown, except to the
 *   whitelist. People inside a hidden department still see their own department.
 * - restrict: the target departments' people (and the target people) see only their own departments (with
 *   everything below them) plus the rule's extra departments and people; whitelisted people are exempt.
 * - forbid: the target departments' people (and the target people) see no directory at all but themselves;
 *   whitelisted people are exempt.
 * Everybody always sees themselves. Resigned people are never shown.
 */
export const RULE_KINDS = ['hide', 'restrict', 'forbid'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];
export const MAX_SELECTOR_ITEMS = 10_000;

export interface Selector {
  departments: number[];
  users: number[];
}

export interface VisibilityRule {
  id: number;
  kind: RuleKind;
  name: string | null;
  targets: Selector;
  whitelist: Selector;
  extraVisible: Selector;
}

function toSelector(v: unknown): Selector {
  const s = (v === null || v === undefined ? {} : parseJson<Partial<Selector>>(v)) ?? {};
  return { departments: Array.isArray(s.departments) ? s.departments.map(Number) : [], users: Array.isArray(s.users) ? s.users.map(Number) : [] };
}

export async function listRules(db: Database, transaction?: Transaction): Promise<VisibilityRule[]> {
  const rows = await select<{ id: number; kind: RuleKind; name: string | null; targets: unknown; whitelist: unknown; extra_visible: unknown }>(
    db,
    'SELECT id, kind, name, targets, whitelist, extra_visible FROM org_visibility_rules ORDER BY id',
    [],
    transaction,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    kind: r.kind,
    name: r.name,
    targets: toSelector(r.targets),
    whitelist: toSelector(r.whitelist),
    extraVisible: toSelector(r.extra_visible),
  }));
}

export interface RuleInput {
  kind: RuleKind;
  name?: string | null;
  targets: Partial<Selector>;
  whitelist?: Partial<Selector>;
  extraVisible?: Partial<Selector>;
}

async function checkSelector(db: Database, t: Transaction, s: Partial<Selector> | undefined, field: string): Promise<Selector> {
  const out: Selector = { departments: [...new Set(s?.departments ?? [])], users: [...new Set(s?.users ?? [])] };
  for (const [kind, table] of [['departments', 'departments'], ['users', 'users']] as const) {
    const ids = out[kind];
    if (ids.length > MAX_SELECTOR_ITEMS) throw qiaoError('QIAO_VALIDATION', `${field}.${kind} lists more than ${MAX_SELECTOR_ITEMS} items`, { field: `${field}.${kind}` });
    if (!ids.length) continue;
    const found = new Set((await select<{ id: number }>(db, `SELECT id FROM ${table} WHERE id IN (${ids.map(() => '?').join(', ')})`, ids, t)).map((r) => Number(r.id)));
    const missing = ids.findIndex((id) => !found.has(id));
    if (missing >= 0) {
      throw qiaoError('QIAO_NOT_FOUND', `${field}.${kind}[${missing}]: ${kind === 'users' ? 'user' : 'department'} ${ids[missing]} does not exist`, { field: `${field}.${kind}[${missing}]` });
    }
  }
  return out;
}

async function checkRule(db: Database, t: Transaction, input: RuleInput): Promise<Omit<VisibilityRule, 'id'>> {
  const p = checkText('name', input.name, LIMITS.name);
  if (p) throw qiaoError('QIAO_VALIDATION', p.message, { field: p.field });
  const targets = await checkSelector(db, t, input.targets, 'targets');
  if (!targets.departments.length && !targets.users.length) {
    throw qiaoError('QIAO_VALIDATION', 'targets must name at least one department or user', { field: 'targets' });
  }
  const extra = await checkSelector(db, t, input.extraVisible, 'extraVisible');
  if (input.kind !== 'restrict' && (extra.departments.length || extra.users.length)) {
    throw qiaoError('QIAO_VALIDATION', `extraVisible applies only to restrict rules, not to ${input.kind}`, { field: 'extraVisible' });
  }
  return { kind: input.kind, name: input.name || null, targets, whitelist: await checkSelector(db, t, input.whitelist, 'whitelist'), extraVisible: extra };
}

export async function createRule(db: Database, w: OrgTx, input: RuleInput): Promise<VisibilityRule> {
  const rule = await checkRule(db, w.t, input);
  const now = new Date();
  const j = jsonParam(db);
  const [row] = await queryRows<{ id: number }>(
    db,
    `INSERT INTO org_visibility_rules (kind, name, targets, whitelist, extra_visible, created_at, updated_at) VALUES (?, ?, ${j}, ${j}, ${j}, ?, ?) RETURNING id`,
    [rule.kind, rule.name, JSON.stringify(rule.targets), JSON.stringify(rule.whitelist), JSON.stringify(rule.extraVisible), now, now],
    w.t,
  );
  const created = { id: Number(row.id), ...rule };
  w.viewChanged = true;
  w.events.push({ topic: 'org.visibility.changed', subject: `rule:${created.id}`, payload: { change: 'created', rule: created } });
  return created;
}

export async function updateRule(db: Database, w: OrgTx, id: number, input: RuleInput): Promise<VisibilityRule> {
  if (!(await listRules(db, w.t)).some((r) => r.id === id)) throw qiaoError('QIAO_NOT_FOUND', `visibility rule ${id} does not exist`, { field: 'id' });
  const rule = await checkRule(db, w.t, input);
  const j = jsonParam(db);
  await exec(
    db,
    `UPDATE org_visibility_rules SET kind = ?, name = ?, targets = ${j}, whitelist = ${j}, extra_visible = ${j}, updated_at = ? WHERE id = ?`,
    [rule.kind, rule.name, JSON.stringify(rule.targets), JSON.stringify(rule.whitelist), JSON.stringify(rule.extraVisible), new Date(), id],
    w.t,
  );
  const updated = { id, ...rule };
  w.viewChanged = true;
  w.events.push({ topic: 'org.visibility.changed', subject: `rule:${id}`, payload: { change: 'updated', rule: updated } });
  return updated;
}

export async function deleteRule(db: Database, w: OrgTx, id: number): Promise<{ id: number; deleted: true }> {
  const n = await exec(db, 'DELETE FROM org_visibility_rules WHERE id = ?', [id], w.t);
  if (!n) throw qiaoError('QIAO_NOT_FOUND', `visibility rule ${id} does not exist`, { field: 'id' });
  w.viewChanged = true;
  w.events.push({ topic: 'org.visibility.changed', subject: `rule:${id}`, payload: { change: 'deleted', ruleId: id } });
  return { id, deleted: true };
}

/** What one viewer may see, worked out once per read. */
export interface Policy {
  viewerId: number;
  forbidden: boolean;
  forbiddenBy: number | null;
  hiddenDepartments: Set<number>;
  hiddenUsers: Set<number>;
  /** Set when a restrict rule applies: the departments whose people are visible, and extra people. */
  scope: { departments: Set<number>; users: Set<number>; path: Set<number> } | null;
}

export function policyFor(tree: DepartmentTree, rules: VisibilityRule[], viewer: { id: number; departmentIds: number[] }): Policy {
  const own = new Set(viewer.departmentIds);
  const inSubtreeOf = (ids: number[]) => {
    if (!ids.length || !own.size) return false;
    const expanded = tree.expand(ids);
    for (const d of own) if (expanded.has(d)) return true;
    return false;
  };
  const matches = (s: Selector) => s.users.includes(viewer.id) || inSubtreeOf(s.departments);
  const policy: Policy = { viewerId: viewer.id, forbidden: false, forbiddenBy: null, hiddenDepartments: new Set(), hiddenUsers: new Set(), scope: null };
  const extras: Selector[] = [];
  for (const rule of rules) {
    if (matches(rule.whitelist)) continue;
    if (rule.kind === 'forbid' && matches(rule.targets)) {
      policy.forbidden = true;
      policy.forbiddenBy ??= rule.id;
    } else if (rule.kind === 'restrict' && matches(rule.targets)) {
      extras.push(rule.extraVisible);
    } else if (rule.kind === 'hide') {
      for (const d of rule.targets.departments) {
        if (inSubtreeOf([d])) continue;
        for (const id of tree.subtree(d)) policy.hiddenDepartments.add(id);
      }
      for (const u of rule.targets.users) if (u !== viewer.id) policy.hiddenUsers.add(u);
    }
  }
  if (extras.length) {
    const departments = tree.expand([...own, ...extras.flatMap((e) => e.departments)]);
    const path = new Set<number>();
    for (const d of departments) for (const a of tree.ancestors(d)) if (!departments.has(a)) path.add(a);
    policy.scope = { departments, users: new Set([viewer.id, ...extras.flatMap((e) => e.users)]), path };
  }
  return policy;
}

/** A department appears in the viewer's tree (perhaps only as the path to where they may look). */
export function departmentVisible(p: Policy, id: number): boolean {
  if (p.forbidden || p.hiddenDepartments.has(id)) return false;
  return !p.scope || p.scope.departments.has(id) || p.scope.path.has(id);
}

/** A department's people are visible to the viewer. */
function membersVisible(p: Policy, id: number): boolean {
  if (p.hiddenDepartments.has(id)) return false;
  return !p.scope || p.scope.departments.has(id);
}

/**
 * The memberships under which the viewer sees `user`, or null when the viewer may not see the person.
 * Someone in no department at all sits directly under the company.
 */
export function visibleMemberships(p: Policy, user: { id: number; status: string; departments: Membership[] }): Membership[] | null {
  if (user.status === 'resigned') return null;
  if (user.id === p.viewerId) return user.departments;
  if (p.forbidden || p.hiddenUsers.has(user.id)) return null;
  const shown = user.departments.filter((m) => membersVisible(p, m.departmentId));
  if (shown.length) return shown;
  if (p.scope) return p.scope.users.has(user.id) ? user.departments.filter((m) => departmentVisible(p, m.departmentId)) : null;
  return user.departments.length === 0 ? [] : null;
}

