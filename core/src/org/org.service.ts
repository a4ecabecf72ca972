import fs from 'node:fs';
import path from 'node:path';
import type { Context, ServiceSchema } from 'moleculer';
import { qiaoError } from '../errors.ts';
import { adminAction, type ServiceDeps } from '../services.ts';
import { deleteAvatarFile, readAvatar, removeAvatar, setAvatar } from './avatars.ts';
import { CUSTOM_FIELD_TYPES, CUSTOM_KEY_PATTERN, createCustomField, deleteCustomField, listCustomFields, updateCustomField, type CustomFieldInput, type CustomFieldType } from './custom-fields.ts';
import {
  createDepartment,
  deleteDepartment,
  departmentDetail,
  loadDepartments,
  moveDepartment,
  nest,
  publicDepartment,
  reorderDepartment,
  updateDepartment,
  type CreateDepartmentInput,
  type UpdateDepartmentInput,
} from './departments.ts';
import { Directory, rawChanges } from './directory.ts';
import { AUTH_TYPES, GENDERS, LIMITS, USER_STATUSES, accountParam, idParam, textParam, weightParam } from './fields.ts';
import { replaceOrg, type ReplaceInput } from './import-export/replace.ts';
import { exportBackup, exportRtx, exportXlsx, importBackup, importRtx, importXlsx, xlsxTemplate } from './import-export/transfer.ts';
import { orgWrite, readMeta, type OrgCommit, type OrgTx } from './org-write.ts';
import { originOf } from './read-only.ts';
import { NAME_FORMATS, SETTING_KEYS, SORT_RULES, displaySettings, writeSetting, type DisplaySettings } from './settings.ts';
import { pruneTombstones } from './tombstones.ts';
import {
  changeStatus,
  createUser,
  findUser,
  findUserByAccount,
  findUsersByEmail,
  findUsersByIds,
  listUsers,
  moveUsers,
  publicUser,
  setMemberships,
  setSecrecy,
  updateUser,
  type CreateUserInput,
  type ListUsersQuery,
  type Membership,
  type Secrecy,
  type StatusAction,
  type UpdateUserInput,
} from './users.ts';
import { RULE_KINDS, createRule, deleteRule, listRules, updateRule, type RuleInput } from './visibility.ts';

/** Ids are 32-bit in both databases. */
const MAX_ID = 2_147_483_647;
const membership = {
  type: 'object',
  props: { departmentId: idParam, position: textParam(LIMITS.position, { optional: true, nullable: true }), weight: { ...weightParam, optional: true } },
} as const;
const memberships = { type: 'array', items: membership, max: 50 } as const;
const profile = {
  name: textParam(LIMITS.name, { min: 1 }),
  gender: { type: 'enum', values: [...GENDERS], optional: true, nullable: true },
  mobile: textParam(LIMITS.mobile, { optional: true, nullable: true }),
  phone: textParam(LIMITS.phone, { optional: true, nullable: true }),
  shortNumber: textParam(LIMITS.shortNumber, { optional: true, nullable: true }),
  email: textParam(LIMITS.email, { optional: true, nullable: true }),
  authType: { type: 'enum', values: [...AUTH_TYPES], optional: true },
  customFields: { type: 'record', key: { type: 'string', max: 64 }, value: { type: 'any', optional: true, nullable: true }, optional: true },
} as const;
const secrecyProps = {
  mobile: { type: 'boolean', optional: true, convert: true },
  phone: { type: 'boolean', optional: true, convert: true },
  email: { type: 'boolean', optional: true, convert: true },
} as const;
const selector = {
  type: 'object',
  optional: true,
  props: { departments: { type: 'array', items: idParam, optional: true, max: 10_000 }, users: { type: 'array', items: idParam, optional: true, max: 10_000 } },
} as const;
const ruleParams = {
  kind: { type: 'enum', values: [...RULE_KINDS] },
  name: textParam(LIMITS.name, { optional: true, nullable: true }),
  targets: { ...selector, optional: false },
  whitelist: selector,
  extraVisible: selector,
} as const;
/** org.import.replace: the whole directory as a list (see import-export/replace.ts). */
const replaceDepartment = {
  type: 'object',
  props: {
    key: { type: 'string', min: 1, max: 1000 },
    id: { ...idParam, max: MAX_ID, optional: true },
    parentKey: { type: 'string', min: 1, max: 1000, nullable: true },
    name: { type: 'string' },
    alias: { type: 'string', optional: true, nullable: true },
    sortOrder: { ...weightParam, optional: true },
  },
} as const;
const replaceUser = {
  type: 'object',
  props: {
    account: { type: 'string' },
    name: { type: 'string' },
    gender: { type: 'enum', values: [...GENDERS], optional: true, nullable: true },
    mobile: { type: 'string', optional: true, nullable: true },
    phone: { type: 'string', optional: true, nullable: true },
    email: { type: 'string', optional: true, nullable: true },
    authType: { type: 'enum', values: [...AUTH_TYPES], optional: true },
    status: { type: 'enum', values: ['active', 'disabled'], optional: true },
    departments: {
      type: 'array',
      max: 1000,
      items: {
        type: 'object',
        props: {
          departmentKey: { type: 'string', min: 1, max: 1000, optional: true },
          departmentId: { ...idParam, optional: true },
          position: { type: 'string', optional: true, nullable: true },
          weight: { type: 'number', integer: true, optional: true, convert: true },
        },
      },
    },
  },
} as const;
/** An import file: base64 `data`, or a path on this server (`file`, super-admins only). */
const fileInput = {
  data: { type: 'string', optional: true },
  file: { type: 'string', optional: true, min: 1, max: 4096 },
} as const;
const exportTarget = { file: { type: 'string', optional: true, min: 1, max: 4096 } } as const;
const IMPORT_TIMEOUT_MS = 10 * 60_000;
/** Moleculer honours an action-level `timeout` (its timeout middleware reads it) though its types omit it. */
const LONG_RUNNING = { timeout: IMPORT_TIMEOUT_MS } as {};

type Meta = { admin?: { role?: string; account?: string }; orgSyncSource?: string };

/**
 * The org directory: departments, people, memberships, custom fields, secrecy, visibility rules, display
 * settings, incremental client sync, and import/export (lossless backup, Excel per department, RTX XML).
 * Every change takes a new org version and is appended to the durable event log in the same transaction.
 */
export default function orgService({ config, db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('org service needs storage');
  const directory = new Directory(db);

  return {
    name: 'org',

    actions: {
      // ---- departments --------------------------------------------------------------------------------
      'departments.list': adminAction({
        admin: true,
        rest: 'GET /org/departments',
        async handler() {
          return { departments: (await loadDepartments(db)).map(publicDepartment) };
        },
      }),
      'departments.tree': adminAction({
        admin: true,
        rest: 'GET /org/department-tree',
        async handler() {
          return { tree: nest((await loadDepartments(db)).map(publicDepartment)) };
        },
      }),
      'departments.get': adminAction({
        admin: true,
        rest: 'GET /org/departments/:id',
        params: { id: idParam },
        handler(ctx: Context<{ id: number }>) {
          return departmentDetail(db, ctx.params.id);
        },
      }),
      'departments.create': adminAction({
        admin: true,
        rest: 'POST /org/departments',
        params: {
          id: { ...idParam, max: MAX_ID, optional: true },
          name: textParam(LIMITS.departmentName, { min: 1 }),
          parentId: { ...idParam, optional: true, nullable: true },
          alias: textParam(LIMITS.alias, { optional: true, nullable: true }),
          description: textParam(LIMITS.description, { optional: true, nullable: true }),
          sortOrder: { ...weightParam, optional: true },
          source: textParam(LIMITS.source, { optional: true, nullable: true }),
          externalId: textParam(LIMITS.externalId, { optional: true, nullable: true }),
        },
        handler(ctx: Context<CreateDepartmentInput, Meta>) {
          return this.write((w: OrgTx) => createDepartment(db, w, originOf(ctx.meta), ctx.params));
        },
      }),
      'departments.update': adminAction({
        admin: true,
        rest: 'PATCH /org/departments/:id',
        params: {
          id: idParam,
          name: textParam(LIMITS.departmentName, { min: 1, optional: true }),
          alias: textParam(LIMITS.alias, { optional: true, nullable: true }),
          description: textParam(LIMITS.description, { optional: true, nullable: true }),
          sortOrder: { ...weightParam, optional: true },
          externalId: textParam(LIMITS.externalId, { optional: true, nullable: true }),
        },
        handler(ctx: Context<UpdateDepartmentInput, Meta>) {
          return this.write((w: OrgTx) => updateDepartment(db, w, originOf(ctx.meta), ctx.params));
        },
      }),
      'departments.move': adminAction({
        admin: true,
        rest: 'POST /org/departments/:id/move',
        params: { id: idParam, parentId: { ...idParam, nullable: true }, sortOrder: { ...weightParam, optional: true } },
        handler(ctx: Context<{ id: number; parentId: number | null; sortOrder?: number }, Meta>) {
          return this.write((w: OrgTx) => moveDepartment(db, w, originOf(ctx.meta), ctx.params));
        },
      }),
      'departments.reorder': adminAction({
        admin: true,
        rest: 'POST /org/departments/:id/reorder',
        params: { id: idParam, afterId: { ...idParam, nullable: true } },
        handler(ctx: Context<{ id: number; afterId: number | null }, Meta>) {
          return this.write((w: OrgTx) => reorderDepartment(db, w, originOf(ctx.meta), ctx.params));
        },
      }),
      'departments.delete': adminAction({
        admin: true,
        rest: 'DELETE /org/departments/:id',
        params: { id: idParam },
        handler(ctx: Context<{ id: number }, Meta>) {
          return this.write((w: OrgTx) => deleteDepartment(db, w, originOf(ctx.meta), ctx.params.id));
        },
      }),

      // ---- people -------------------------------------------------------------------------------------
      'users.list': adminAction({
        admin: true,
        rest: 'GET /org/users',
        params: {
          departmentId: { ...idParam, optional: true },
          includeSub: { type: 'boolean', optional: true, convert: true },
          status: { type: 'enum', values: [...USER_STATUSES, 'all', 'current'], optional: true },
          search: textParam(LIMITS.name, { optional: true }),
          page: { type: 'number', integer: true, min: 1, max: 1_000_000, optional: true, convert: true },
          pageSize: { type: 'number', integer: true, min: 1, max: 500, optional: true, convert: true },
        },
        handler(ctx: Context<ListUsersQuery>) {
          return listUsers(db, ctx.params);
        },
      }),
      'users.get': adminAction({
        admin: true,
        rest: 'GET /org/users/:id',
        params: { id: idParam },
        async handler(ctx: Context<{ id: number }>) {
          return publicUser(await findUser(db, ctx.params.id));
        },
      }),
      /** For other services (auth, im, gateways): a person by login name. */
      'users.byAccount': {
        params: { account: { type: 'string', min: 1, max: LIMITS.account } },
        handler(ctx: Context<{ account: string }>) {
          return findUserByAccount(db, ctx.params.account);
        },
      },
      /** For other services: several people by id at once (any status; unknown ids are left out). */
      'users.byIds': {
        params: { ids: { type: 'array', items: idParam, min: 1, max: 5000 } },
        async handler(ctx: Context<{ ids: number[] }>) {
          return { users: await findUsersByIds(db, ctx.params.ids) };
        },
      },
      /** For other services (mail notices, the open API's toEmail): current people by e-mail address. */
      'users.byEmail': {
        params: { emails: { type: 'array', items: { type: 'string', min: 1, max: LIMITS.email }, min: 1, max: 5000 } },
        async handler(ctx: Context<{ emails: string[] }>) {
          return { users: await findUsersByEmail(db, ctx.params.emails) };
        },
      },
      'users.create': adminAction({
        admin: true,
        rest: 'POST /org/users',
        params: {
          account: accountParam,
          ...profile,
          departments: { ...memberships, optional: true },
          secrecy: { type: 'object', optional: true, props: secrecyProps },
          source: textParam(LIMITS.source, { optional: true, nullable: true }),
          externalId: textParam(LIMITS.externalId, { optional: true, nullable: true }),
        },
        handler(ctx: Context<CreateUserInput, Meta>) {
          return this.write((w: OrgTx) => createUser(db, w, originOf(ctx.meta), ctx.params));
        },
      }),
      'users.update': adminAction({
        admin: true,
        rest: 'PATCH /org/users/:id',
        params: {
          id: idParam,
          account: { ...accountParam, optional: true },
          ...profile,
          name: textParam(LIMITS.name, { min: 1, optional: true }),
          departments: { ...memberships, optional: true },
          externalId: textParam(LIMITS.externalId, { optional: true, nullable: true }),
        },
        handler(ctx: Context<UpdateUserInput, Meta>) {
          return this.write((w: OrgTx) => updateUser(db, w, originOf(ctx.meta), ctx.params));
        },
      }),
      'users.move': adminAction({
        admin: true,
        rest: 'POST /org/users/move',
        params: {
          userIds: { type: 'array', items: idParam, min: 1, max: 5000 },
          toDepartmentId: idParam,
          fromDepartmentId: { ...idParam, optional: true },
        },
        handler(ctx: Context<{ userIds: number[]; toDepartmentId: number; fromDepartmentId?: number }, Meta>) {
          return this.write((w: OrgTx) => moveUsers(db, w, originOf(ctx.meta), ctx.params));
        },
      }),
      'users.setMemberships': adminAction({
        admin: true,
        rest: 'PUT /org/users/:id/departments',
        params: { id: idParam, departments: memberships },
        handler(ctx: Context<{ id: number; departments: Array<Partial<Membership>> }, Meta>) {
          return this.write((w: OrgTx) => setMemberships(db, w, originOf(ctx.meta), ctx.params.id, ctx.params.departments));
        },
      }),
      'users.enable': adminAction({
        admin: true,
        rest: 'POST /org/users/:id/enable',
        params: { id: idParam },
        handler(ctx: Context<{ id: number }, Meta>) {
          return this.status(ctx, 'enable');
        },
      }),
      'users.disable': adminAction({
        admin: true,
        rest: 'POST /org/users/:id/disable',
        params: { id: idParam },
        handler(ctx: Context<{ id: number }, Meta>) {
          return this.status(ctx, 'disable');
        },
      }),
      'users.resign': adminAction({
        admin: true,
        rest: 'POST /org/users/:id/resign',
        params: { id: idParam },
        handler(ctx: Context<{ id: number }, Meta>) {
          return this.status(ctx, 'resign');
        },
      }),
      'users.restore': adminAction({
        admin: true,
        rest: 'POST /org/users/:id/restore',
        params: { id: idParam, departmentId: { ...idParam, optional: true } },
        handler(ctx: Context<{ id: number; departmentId?: number }, Meta>) {
          return this.status(ctx, 'restore');
        },
      }),
      'users.setSecrecy': adminAction({
        admin: true,
        rest: 'PUT /org/users/secrecy',
        params: { userIds: { type: 'array', items: idParam, min: 1, max: 5000 }, ...secrecyProps },
        handler(ctx: Context<{ userIds: number[] } & Partial<Secrecy>>) {
          const { userIds, ...flags } = ctx.params;
          return this.write((w: OrgTx) => setSecrecy(db, w, userIds, flags));
        },
      }),
      'users.avatar.set': adminAction({
        admin: true,
        rest: 'PUT /org/users/:id/avatar',
        params: { id: idParam, data: { type: 'string', min: 1, max: 2_000_000 } },
        async handler(ctx: Context<{ id: number; data: string }>) {
          const r = await this.write((w: OrgTx) => setAvatar(db, w, config.dataDir, ctx.params.id, ctx.params.data));
          deleteAvatarFile(config.dataDir, r.previous);
          return { id: ctx.params.id, avatar: r.avatar };
        },
      }),
      'users.avatar.get': adminAction({
        admin: true,
        rest: 'GET /org/users/:id/avatar',
        params: { id: idParam },
        async handler(ctx: Context<{ id: number }>) {
          const user = await findUser(db, ctx.params.id);
          return readAvatar(config.dataDir, user.avatar, user.id);
        },
      }),
      'users.avatar.remove': adminAction({
        admin: true,
        rest: 'DELETE /org/users/:id/avatar',
        params: { id: idParam },
        async handler(ctx: Context<{ id: number }>) {
          const r = await this.write((w: OrgTx) => removeAvatar(db, w, ctx.params.id));
          deleteAvatarFile(config.dataDir, r.previous);
          return { id: ctx.params.id, avatar: null };
        },
      }),

      // ---- custom fields ------------------------------------------------------------------------------
      'customFields.list': adminAction({
        admin: true,
        rest: 'GET /org/custom-fields',
        async handler() {
          return { fields: await listCustomFields(db) };
        },
      }),
      'customFields.create': adminAction({
        admin: true,
        rest: 'POST /org/custom-fields',
        params: {
          key: { type: 'string', pattern: CUSTOM_KEY_PATTERN, messages: { stringPattern: "The 'key' field must start with a letter and hold only letters, digits and _ (at most 64)" } },
          label: textParam(LIMITS.name, { min: 1 }),
          type: { type: 'enum', values: [...CUSTOM_FIELD_TYPES] },
          options: { type: 'array', items: 'string', optional: true, nullable: true, max: 200 },
          clientVisible: { type: 'boolean', optional: true, convert: true },
          sortOrder: { ...weightParam, optional: true },
        },
        handler(ctx: Context<CustomFieldInput & { label: string; type: CustomFieldType }>) {
          return this.write((w: OrgTx) => createCustomField(db, w, ctx.params));
        },
      }),
      'customFields.update': adminAction({
        admin: true,
        rest: 'PATCH /org/custom-fields/:key',
        params: {
          key: { type: 'string', min: 1, max: 64 },
          label: textParam(LIMITS.name, { min: 1, optional: true }),
          options: { type: 'array', items: 'string', optional: true, nullable: true, max: 200 },
          clientVisible: { type: 'boolean', optional: true, convert: true },
          sortOrder: { ...weightParam, optional: true },
        },
        handler(ctx: Context<CustomFieldInput>) {
          return this.write((w: OrgTx) => updateCustomField(db, w, ctx.params));
        },
      }),
      'customFields.delete': adminAction({
        admin: true,
        rest: 'DELETE /org/custom-fields/:key',
        params: { key: { type: 'string', min: 1, max: 64 } },
        handler(ctx: Context<{ key: string }>) {
          return this.write((w: OrgTx) => deleteCustomField(db, w, ctx.params.key));
        },
      }),

      // ---- visibility and display ---------------------------------------------------------------------
      'visibility.list': adminAction({
        admin: true,
        rest: 'GET /org/visibility-rules',
        async handler() {
          return { rules: await listRules(db) };
        },
      }),
      'visibility.create': adminAction({
        admin: true,
        rest: 'POST /org/visibility-rules',
        params: ruleParams,
        handler(ctx: Context<RuleInput>) {
          return this.write((w: OrgTx) => createRule(db, w, ctx.params));
        },
      }),
      'visibility.update': adminAction({
        admin: true,
        rest: 'PUT /org/visibility-rules/:id',
        params: { id: idParam, ...ruleParams },
        handler(ctx: Context<RuleInput & { id: number }>) {
          const { id, ...rule } = ctx.params;
          return this.write((w: OrgTx) => updateRule(db, w, id, rule));
        },
      }),
      'visibility.delete': adminAction({
        admin: true,
        rest: 'DELETE /org/visibility-rules/:id',
        params: { id: idParam },
        handler(ctx: Context<{ id: number }>) {
          return this.write((w: OrgTx) => deleteRule(db, w, ctx.params.id));
        },
      }),
      'display.get': adminAction({
        admin: true,
        rest: 'GET /org/display',
        handler() {
          return displaySettings(db);
        },
      }),
      'display.set': adminAction({
        admin: true,
        rest: 'PUT /org/display',
        params: { nameFormat: { type: 'enum', values: [...NAME_FORMATS], optional: true }, sortRule: { type: 'enum', values: [...SORT_RULES], optional: true } },
        handler(ctx: Context<Partial<DisplaySettings>>) {
          return this.write(async (w: OrgTx) => {
            const next = { ...(await displaySettings(db, w.t)), ...ctx.params };
            await writeSetting(db, SETTING_KEYS.display, next, w.t);
            w.viewChanged = true;
            w.events.push({ topic: 'org.settings.changed', subject: 'display', payload: { display: next } });
            return next;
          });
        },
      }),

      // ---- versions -----------------------------------------------------------------------------------
      version: adminAction({
        admin: true,
        rest: 'GET /org/version',
        async handler() {
          const m = await readMeta(db);
          return { version: m.version, floor: m.floor, viewVersion: m.view_version };
        },
      }),
      changes: adminAction({
        admin: true,
        rest: 'GET /org/changes',
        params: { since: { type: 'number', integer: true, min: 0, convert: true } },
        handler(ctx: Context<{ since: number }>) {
          return rawChanges(db, ctx.params.since);
        },
      }),
      'tombstones.prune': adminAction({
        admin: true,
        rest: 'POST /org/tombstones/prune',
        params: {
          olderThanDays: { type: 'number', min: 0, max: 36_500, optional: true, convert: true },
          upToVersion: { type: 'number', integer: true, min: 0, optional: true, convert: true },
        },
        handler(ctx: Context<{ olderThanDays?: number; upToVersion?: number }>) {
          const { olderThanDays, upToVersion } = ctx.params;
          if ((olderThanDays === undefined) === (upToVersion === undefined)) {
            throw qiaoError('QIAO_VALIDATION', 'give exactly one of olderThanDays and upToVersion', { field: 'olderThanDays' });
          }
          const before = olderThanDays !== undefined ? new Date(Date.now() - olderThanDays * 86_400_000) : null;
          return this.write((w: OrgTx) => pruneTombstones(db, w, before, upToVersion));
        },
      }),

      // ---- client reads (visibility and secrecy applied) ----------------------------------------------
      'client.snapshot': {
        params: { viewer: idParam },
        handler(ctx: Context<{ viewer: number }>) {
          return directory.snapshot(ctx.params.viewer);
        },
      },
      'client.changes': {
        params: { viewer: idParam, since: { type: 'number', integer: true, min: 0, convert: true } },
        handler(ctx: Context<{ viewer: number; since: number }>) {
          return directory.changes(ctx.params.viewer, ctx.params.since);
        },
      },
      'client.user': {
        params: { viewer: idParam, userId: idParam },
        handler(ctx: Context<{ viewer: number; userId: number }>) {
          return directory.user(ctx.params.viewer, ctx.params.userId);
        },
      },
      /** Which of these people the viewer may see (for presence and the like; nothing else is read). */
      'client.visible': {
        params: { viewer: idParam, userIds: { type: 'array', items: idParam, max: 5000 } },
        async handler(ctx: Context<{ viewer: number; userIds: number[] }>) {
          return { userIds: await directory.visibleIds(ctx.params.viewer, ctx.params.userIds) };
        },
      },
      'client.avatar': {
        params: { viewer: idParam, userId: idParam },
        async handler(ctx: Context<{ viewer: number; userId: number }>) {
          const seen = await directory.user(ctx.params.viewer, ctx.params.userId);
          return readAvatar(config.dataDir, seen.avatar ?? null, seen.id);
        },
      },

      // ---- import / export ----------------------------------------------------------------------------
      'export.backup': adminAction({
        admin: true,
        rest: 'GET /org/export/backup',
        params: exportTarget,
        ...LONG_RUNNING,
        async handler(ctx: Context<{ file?: string }, Meta>) {
          const backup = await exportBackup(db);
          if (ctx.params.file) return this.writeExport(ctx, Buffer.from(JSON.stringify(backup)));
          return backup;
        },
      }),
      'import.backup': adminAction({
        admin: 'super',
        rest: 'POST /org/import/backup',
        params: { ...fileInput, backup: { type: 'object', optional: true } },
        ...LONG_RUNNING,
        handler(ctx: Context<{ data?: string; file?: string; backup?: object }, Meta>) {
          this.checkFileAccess(ctx);
          return this.commit(importBackup(db, originOf(ctx.meta), ctx.params));
        },
      }),
      'import.replace': adminAction({
        admin: 'super',
        rest: 'POST /org/import/replace',
        params: {
          departments: { type: 'array', optional: true, nullable: true, max: 100_000, items: replaceDepartment },
          users: { type: 'array', max: 500_000, items: replaceUser },
        },
        ...LONG_RUNNING,
        handler(ctx: Context<ReplaceInput, Meta>) {
          return this.commit(replaceOrg(db, originOf(ctx.meta), ctx.params));
        },
      }),
      'export.xlsx': adminAction({
        admin: true,
        rest: 'GET /org/export/xlsx',
        params: { departmentId: idParam, ...exportTarget },
        ...LONG_RUNNING,
        async handler(ctx: Context<{ departmentId: number; file?: string }, Meta>) {
          const { filename, buffer } = await exportXlsx(db, ctx.params.departmentId);
          return ctx.params.file ? this.writeExport(ctx, buffer) : this.download(filename, XLSX_TYPE, buffer);
        },
      }),
      'export.xlsxTemplate': adminAction({
        admin: true,
        rest: 'GET /org/import/xlsx-template',
        params: { departmentId: { ...idParam, optional: true } },
        async handler(ctx: Context<{ departmentId?: number }>) {
          const { filename, buffer } = await xlsxTemplate(db, ctx.params.departmentId);
          return this.download(filename, XLSX_TYPE, buffer);
        },
      }),
      'import.xlsx': adminAction({
        admin: true,
        rest: 'POST /org/import/xlsx',
        params: { departmentId: idParam, ...fileInput },
        ...LONG_RUNNING,
        handler(ctx: Context<{ departmentId: number; data?: string; file?: string }, Meta>) {
          this.checkFileAccess(ctx);
          return this.commit(importXlsx(db, originOf(ctx.meta), ctx.params, ctx.params.departmentId));
        },
      }),
      'export.rtx': adminAction({
        admin: true,
        rest: 'GET /org/export/rtx',
        params: { encoding: { type: 'enum', values: ['gb2312', 'gbk', 'utf-8'], optional: true }, ...exportTarget },
        ...LONG_RUNNING,
        async handler(ctx: Context<{ encoding?: 'gb2312' | 'gbk' | 'utf-8'; file?: string }, Meta>) {
          const buffer = await exportRtx(db, ctx.params.encoding ?? 'gb2312');
          return ctx.params.file ? this.writeExport(ctx, buffer) : this.download('organisation.xml', 'application/xml', buffer);
        },
      }),
      'import.rtx': adminAction({
        admin: true,
        rest: 'POST /org/import/rtx',
        params: { ...fileInput, source: textParam(LIMITS.source, { optional: true, nullable: true }) },
        ...LONG_RUNNING,
        handler(ctx: Context<{ data?: string; file?: string; source?: string | null }, Meta>) {
          this.checkFileAccess(ctx);
          return this.commit(importRtx(db, originOf(ctx.meta), ctx.params, { source: ctx.params.source }));
        },
      }),
    },

    methods: {
      /** Runs one org change and, after commit, sends the wake-ups. */
      async write<T>(fn: (w: OrgTx) => Promise<T>): Promise<T> {
        return this.commit(orgWrite(db, fn));
      },
      async commit<T>(pending: Promise<OrgCommit<T>>): Promise<T> {
        const done = await pending;
        // Broadcast: every gateway node has clients to nudge, every plugin process its own cursor. A lost
        // event costs a delay, never data: clients and plugins read the version and the durable log.
        const send = (name: string, data: unknown) =>
          Promise.resolve(this.broker.broadcast(name, data)).catch((err: Error) => this.logger.warn(`broadcast ${name} failed: ${err.message}`));
        for (const l of done.logged) send('eventlog.appended', l);
        if (done.logged.length) send('org.changed', { version: done.version });
        for (const s of done.statusChanges) send('org.user.statusChanged', s);
        return done.result;
      },
      async status(ctx: Context<{ id: number; departmentId?: number }, Meta>, action: StatusAction) {
        return this.write((w: OrgTx) => changeStatus(db, w, originOf(ctx.meta), { id: ctx.params.id, action, departmentId: ctx.params.departmentId }));
      },
      /** Paths on the server's disk are for super-admins (and in-process callers), never for ordinary admins or plugins. */
      checkFileAccess(ctx: Context<{ file?: string }, Meta & { plugin?: string }>) {
        if (ctx.params.file === undefined) return;
        if (ctx.meta.plugin) {
          throw qiaoError('QIAO_FORBIDDEN', `plugin ${ctx.meta.plugin} may not read or write files on the server ("file"): pass the content as "data"`, { field: 'file' });
        }
        if (!ctx.meta.admin || ctx.meta.admin.role === 'super') return;
        throw qiaoError('QIAO_FORBIDDEN', `reading a file on the server ("file") needs a super-admin; "${ctx.meta.admin.account}" is not one: upload the content as "data"`, {
          field: 'file',
        });
      },
      writeExport(ctx: Context<{ file?: string }, Meta>, buffer: Buffer) {
        this.checkFileAccess(ctx);
        const file = path.resolve(ctx.params.file!);
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, buffer);
        fs.renameSync(tmp, file);
        return { file, bytes: buffer.length };
      },
      download(filename: string, contentType: string, buffer: Buffer) {
        return { filename, contentType, bytes: buffer.length, data: buffer.toString('base64') };
      },
    },
  };
}

const XLSX_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
