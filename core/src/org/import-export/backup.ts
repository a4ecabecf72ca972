import { qiaoError } from '../../errors.ts';
import { CUSTOM_FIELD_TYPES, CUSTOM_KEY_PATTERN, type CustomFieldDef, type CustomValues } from '../custom-fields.ts';
import type { Department } from '../departments.ts';
import {
  AUTH_TYPES,
  LIMITS,
  USER_STATUSES,
  WEIGHT_RANGE,
  checkAccount,
  checkInteger,
  checkText,
  checkUserFields,
  type AuthType,
  type Gender,
  type UserFields,
  type UserStatus,
} from '../fields.ts';
import { NAME_FORMATS, SORT_RULES, type DisplaySettings } from '../settings.ts';
import { DepartmentTree } from '../tree.ts';
import type { OrgUser, Secrecy } from '../users.ts';
import { RULE_KINDS, type VisibilityRule } from '../visibility.ts';
import type { ImportPlan, PlanDepartment, PlanUser } from './apply-plan.ts';
import { readAll, type ImportSource } from './input.ts';
import { ProblemList } from './problems.ts';

/**
 * The company's own full backup of the directory (Youdu's "dat" export): lossless JSON that keeps every
 * id, so a restore gives people and departments back the ids that conversations and other systems refer
 * to. Login secrets and seats are the auth service's and are not in it.
 */
export const BACKUP_FORMAT = 'qiao-org-backup';
export const BACKUP_FORMAT_VERSION = 1;

export interface BackupUser extends UserFields {
  id: number;
  account: string;
  status: UserStatus;
  customFields: CustomValues;
  secrecy: Secrecy;
  source: string | null;
  externalId: string | null;
  avatar: string | null;
  departments: Array<{ departmentId: number; position: string | null; weight: number }>;
}

export interface OrgBackup {
  format: typeof BACKUP_FORMAT;
  formatVersion: number;
  exportedAt: string;
  version: number;
  display: DisplaySettings;
  customFields: CustomFieldDef[];
  visibilityRules: VisibilityRule[];
  departments: Array<Omit<Department, 'version'>>;
  users: BackupUser[];
}

export function buildBackup(input: {
  version: number;
  display: DisplaySettings;
  customFields: CustomFieldDef[];
  rules: VisibilityRule[];
  departments: Department[];
  users: OrgUser[];
}): OrgBackup {
  return {
    format: BACKUP_FORMAT,
    formatVersion: BACKUP_FORMAT_VERSION,
    exportedAt: new Date().toISOString(),
    version: input.version,
    display: input.display,
    customFields: input.customFields,
    visibilityRules: input.rules,
    departments: input.departments.map(({ id, parentId, name, alias, description, sortOrder, source, externalId }) => ({ id, parentId, name, alias, description, sortOrder, source, externalId })),
    users: input.users.map((u) => ({
      id: u.id,
      account: u.account,
      name: u.name,
      gender: u.gender,
      mobile: u.mobile,
      phone: u.phone,
      shortNumber: u.shortNumber,
      email: u.email,
      authType: u.authType,
      status: u.status,
      customFields: u.customFields,
      secrecy: u.secrecy,
      source: u.source,
      externalId: u.externalId,
      avatar: u.avatar,
      departments: u.departments.map((m) => ({ departmentId: m.departmentId, position: m.position, weight: m.weight })),
    })),
  };
}

export interface ParsedBackup {
  plan: ImportPlan;
  display: DisplaySettings | null;
  customFields: CustomFieldDef[];
  rules: VisibilityRule[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 2_147_483_647;

export async function readBackup(src: ImportSource & { backup?: unknown }, maxBytes: number): Promise<unknown> {
  if (src.backup !== undefined) return src.backup;
  const bytes = await readAll(src, maxBytes, 'org backup');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw qiaoError('QIAO_VALIDATION', `the org backup is not valid JSON: ${(err as Error).message}`, { field: 'data' });
  }
}

/** Checks a backup document field by field; problems name the JSON path (`users[12].email`). */
export function parseBackup(doc: unknown, customFieldsInDb: CustomFieldDef[]): ParsedBackup {
  if (!isObj(doc) || doc.format !== BACKUP_FORMAT) {
    throw qiaoError('QIAO_VALIDATION', `not an org backup: expected "format": "${BACKUP_FORMAT}"`, { field: 'format' });
  }
  if (doc.formatVersion !== BACKUP_FORMAT_VERSION) {
    throw qiaoError('QIAO_VALIDATION', `org backup format version ${String(doc.formatVersion)} is not supported (this server reads version ${BACKUP_FORMAT_VERSION})`, { field: 'formatVersion' });
  }
  const problems = new ProblemList();
  const add = (where: string, field: string, message: string) => problems.add({ where, field, message });

  // custom field definitions come first: user values are checked against them
  const customFields: CustomFieldDef[] = [];
  for (const [i, f] of (Array.isArray(doc.customFields) ? doc.customFields : []).entries()) {
    const where = `customFields[${i}]`;
    if (!isObj(f) || typeof f.key !== 'string' || !CUSTOM_KEY_PATTERN.test(f.key) || !CUSTOM_FIELD_TYPES.includes(f.type as never)) {
      add(where, where, `${where} is not a custom field definition (key, label, type)`);
      continue;
    }
    const p = checkText(`${where}.label`, f.label, LIMITS.name, true);
    if (p) add(where, p.field, p.message);
    customFields.push({
      key: f.key,
      label: String(f.label),
      type: f.type as CustomFieldDef['type'],
      options: Array.isArray(f.options) ? f.options.map(String) : null,
      clientVisible: f.clientVisible !== false,
      sortOrder: typeof f.sortOrder === 'number' ? f.sortOrder : 0,
    });
  }
  const knownFields = new Map([...customFieldsInDb, ...customFields].map((f) => [f.key, f]));

  const rawDepts = Array.isArray(doc.departments) ? doc.departments : [];
  const deptIds = new Set<number>();
  const depts: Array<{ id: number; parentId: number | null; d: Record<string, unknown>; where: string }> = [];
  for (const [i, d] of rawDepts.entries()) {
    const where = `departments[${i}]`;
    if (!isObj(d) || !isId(d.id)) {
      add(where, `${where}.id`, `${where}.id must be a positive whole number`);
      continue;
    }
    if (deptIds.has(d.id)) add(where, `${where}.id`, `department id ${d.id} appears twice`);
    deptIds.add(d.id);
    const parentId = d.parentId === null || d.parentId === undefined ? null : d.parentId;
    if (parentId !== null && !isId(parentId)) add(where, `${where}.parentId`, `${where}.parentId must be a department id or null`);
    for (const p of [
      checkText(`${where}.name`, d.name, LIMITS.departmentName, true),
      checkText(`${where}.alias`, d.alias, LIMITS.alias),
      checkText(`${where}.description`, d.description, LIMITS.description),
      checkText(`${where}.source`, d.source, LIMITS.source),
      checkText(`${where}.externalId`, d.externalId, LIMITS.externalId),
      checkInteger(`${where}.sortOrder`, d.sortOrder, WEIGHT_RANGE),
    ]) {
      if (p) add(where, p.field, p.message);
    }
    depts.push({ id: d.id, parentId: parentId as number | null, d, where });
  }
  for (const x of depts) {
    if (x.parentId !== null && !deptIds.has(x.parentId)) add(x.where, `${x.where}.parentId`, `parent department ${x.parentId} is not in the backup`);
  }
  const tree = new DepartmentTree(depts.map((x) => ({ id: x.id, parentId: x.parentId })));
  const ordered = tree.topDown();
  if (ordered.length < depts.length) {
    const reached = new Set(ordered.map((n) => n.id));
    const stuck = depts.find((x) => !reached.has(x.id))!;
    add(stuck.where, `${stuck.where}.parentId`, `department ${stuck.id} is part of a cycle of parents`);
  }
  const byId = new Map(depts.map((x) => [x.id, x]));
  const planDepts: PlanDepartment[] = ordered.map((n) => {
    const { d, where, parentId } = byId.get(n.id)!;
    return {
      key: `id:${n.id}`,
      id: n.id,
      parentKey: parentId === null ? null : `id:${parentId}`,
      name: String(d.name ?? ''),
      alias: (d.alias as string | null | undefined) ?? null,
      description: (d.description as string | null | undefined) ?? null,
      sortOrder: typeof d.sortOrder === 'number' ? d.sortOrder : 0,
      source: (d.source as string | null | undefined) ?? null,
      externalId: (d.externalId as string | null | undefined) ?? null,
      where,
    };
  });

  const users: PlanUser[] = [];
  const seenAccounts = new Map<string, string>();
  const seenIds = new Map<number, string>();
  for (const [i, u] of (Array.isArray(doc.users) ? doc.users : []).entries()) {
    const where = `users[${i}]`;
    if (!isObj(u) || !isId(u.id)) {
      add(where, `${where}.id`, `${where}.id must be a positive whole number`);
      continue;
    }
    const pa = checkAccount(u.account, `${where}.account`);
    if (pa) {
      add(where, pa.field, pa.message);
      continue;
    }
    const account = u.account as string;
    const priorA = seenAccounts.get(account);
    if (priorA) add(where, `${where}.account`, `account "${account}" appears twice: ${priorA} and ${where}`);
    seenAccounts.set(account, where);
    const priorI = seenIds.get(u.id);
    if (priorI) add(where, `${where}.id`, `user id ${u.id} appears twice: ${priorI} and ${where}`);
    seenIds.set(u.id, where);
    const profile = {
      name: u.name,
      gender: u.gender ?? null,
      mobile: u.mobile ?? null,
      phone: u.phone ?? null,
      shortNumber: u.shortNumber ?? null,
      email: u.email ?? null,
      authType: u.authType ?? 'password',
    };
    for (const p of checkUserFields(profile, `${where}.`)) add(where, p.field, p.message);
    if (!USER_STATUSES.includes(u.status as UserStatus)) add(where, `${where}.status`, `${where}.status must be one of ${USER_STATUSES.join(', ')}`);
    for (const p of [checkText(`${where}.source`, u.source, LIMITS.source), checkText(`${where}.externalId`, u.externalId, LIMITS.externalId), checkText(`${where}.avatar`, u.avatar, 200)]) {
      if (p) add(where, p.field, p.message);
    }
    const custom: CustomValues = {};
    if (u.customFields !== undefined && u.customFields !== null) {
      if (!isObj(u.customFields)) add(where, `${where}.customFields`, `${where}.customFields must be an object`);
      else {
        for (const [k, v] of Object.entries(u.customFields)) {
          if (!knownFields.has(k)) add(where, `${where}.customFields.${k}`, `custom field "${k}" is not defined`);
          else if (typeof v === 'number' || (typeof v === 'string' && !checkText(k, v, LIMITS.customValue))) custom[k] = v;
          else add(where, `${where}.customFields.${k}`, `${where}.customFields.${k} must be text of at most ${LIMITS.customValue} characters or a number`);
        }
      }
    }
    const s = isObj(u.secrecy) ? u.secrecy : {};
    const memberships = [];
    for (const [j, m] of (Array.isArray(u.departments) ? u.departments : []).entries()) {
      const f = `${where}.departments[${j}]`;
      if (!isObj(m) || !isId(m.departmentId) || !deptIds.has(m.departmentId)) {
        add(where, `${f}.departmentId`, `${f}.departmentId must name a department in the backup`);
        continue;
      }
      for (const p of [checkText(`${f}.position`, m.position, LIMITS.position), checkInteger(`${f}.weight`, m.weight, WEIGHT_RANGE)]) if (p) add(where, p.field, p.message);
      memberships.push({ deptKey: `id:${m.departmentId}`, position: (m.position as string | null | undefined) || null, weight: (m.weight as number | undefined) ?? 0 });
    }
    users.push({
      where,
      id: u.id,
      account,
      fields: {
        name: profile.name as string,
        gender: profile.gender as Gender | null,
        mobile: (profile.mobile as string | null) || null,
        phone: (profile.phone as string | null) || null,
        shortNumber: (profile.shortNumber as string | null) || null,
        email: (profile.email as string | null) || null,
        authType: (AUTH_TYPES.includes(profile.authType as AuthType) ? profile.authType : 'password') as AuthType,
        status: u.status as UserStatus,
        customFields: Object.keys(custom).length ? custom : null,
        secrecy: { mobile: s.mobile === true, phone: s.phone === true, email: s.email === true },
        source: (u.source as string | null | undefined) ?? null,
        externalId: (u.externalId as string | null | undefined) ?? null,
        avatar: (u.avatar as string | null | undefined) ?? null,
      },
      memberships,
      membershipMode: 'replace',
    });
    if (problems.full) break;
  }

  const rules: VisibilityRule[] = [];
  for (const [i, r] of (Array.isArray(doc.visibilityRules) ? doc.visibilityRules : []).entries()) {
    const where = `visibilityRules[${i}]`;
    if (!isObj(r) || !isId(r.id) || !RULE_KINDS.includes(r.kind as never)) {
      add(where, where, `${where} is not a visibility rule (id, kind, targets)`);
      continue;
    }
    const sel = (v: unknown) => ({
      departments: isObj(v) && Array.isArray(v.departments) ? v.departments.filter(isId) : [],
      users: isObj(v) && Array.isArray(v.users) ? v.users.filter(isId) : [],
    });
    rules.push({ id: r.id, kind: r.kind as VisibilityRule['kind'], name: typeof r.name === 'string' ? r.name.slice(0, LIMITS.name) : null, targets: sel(r.targets), whitelist: sel(r.whitelist), extraVisible: sel(r.extraVisible) });
  }

  let display: DisplaySettings | null = null;
  if (isObj(doc.display)) {
    display = {
      nameFormat: NAME_FORMATS.includes(doc.display.nameFormat as never) ? (doc.display.nameFormat as DisplaySettings['nameFormat']) : 'name',
      sortRule: SORT_RULES.includes(doc.display.sortRule as never) ? (doc.display.sortRule as DisplaySettings['sortRule']) : 'weight',
    };
  }
  problems.throwIfAny('org backup import');
  return { plan: { departments: planDepts, users }, display, customFields, rules };
}
