import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { listCustomFields, type CustomFieldDef, type CustomValues } from './custom-fields.ts';
import { loadDepartments, type Department } from './departments.ts';
import { readMeta } from './org-write.ts';
import { displaySettings, type DisplaySettings } from './settings.ts';
import { chunked, inList, select } from '../db/sql.ts';
import { DepartmentTree } from './tree.ts';
import { loadMemberships, parseSecrecy, type Membership } from './users.ts';
import { departmentVisible, listRules, policyFor, visibleMemberships, type Policy, type VisibilityRule } from './visibility.ts';

/**
 * What clients read: the directory as one viewer may see it, in full (`snapshot`) or as the changes since
 * a version (`changes`). Visibility rules and secrecy are applied here, on the server, on every read.
 */

export interface ClientDepartment {
  id: number;
  parentId: number | null;
  name: string;
  sortOrder: number;
}

/** A person as a client sees them; empty fields and fields hidden by secrecy are left out. */
export interface ClientUser {
  id: number;
  account: string;
  name: string;
  status: 'active' | 'disabled';
  gender?: string;
  mobile?: string;
  phone?: string;
  shortNumber?: string;
  email?: string;
  avatar?: string;
  departments: Array<{ id: number; position?: string; weight: number }>;
  custom?: CustomValues;
}

export interface ClientFieldDef {
  key: string;
  label: string;
  type: string;
}

export interface Snapshot {
  version: number;
  forbidden: boolean;
  display: DisplaySettings;
  customFields: ClientFieldDef[];
  departments: ClientDepartment[];
  users: ClientUser[];
}

export interface Changes {
  version: number;
  since: number;
  /** True: the delta cannot be trusted; download a snapshot. `reason` says why. */
  reset: boolean;
  reason?: 'ahead' | 'too-old' | 'view-changed' | 'viewer-moved';
  forbidden?: boolean;
  departments: { upserts: ClientDepartment[]; deletions: number[] };
  users: { upserts: ClientUser[]; deletions: number[] };
}

/** The parts of the org every read needs and that change rarely, cached per org version. */
interface Structure {
  version: number;
  tree: DepartmentTree<Department & { placementVersion: number }>;
  rules: VisibilityRule[];
  fields: CustomFieldDef[];
  display: DisplaySettings;
}

interface ClientRow {
  id: number;
  account: string;
  name: string;
  gender: string | null;
  mobile: string | null;
  phone: string | null;
  short_number: string | null;
  email: string | null;
  avatar: string | null;
  status: 'active' | 'disabled' | 'resigned';
  custom_fields: unknown;
  secrecy: unknown;
  version: number | string;
  placement_version: number | string;
}

const CLIENT_COLUMNS = 'id, account, name, gender, mobile, phone, short_number, email, avatar, status, custom_fields, secrecy, version, placement_version';

export class Directory {
  #db: Database;
  #cache: Structure | null = null;

  constructor(db: Database) {
    this.#db = db;
  }

  async structure(version?: number): Promise<Structure> {
    const v = version ?? (await readMeta(this.#db)).version;
    if (this.#cache && this.#cache.version === v) return this.#cache;
    const [departments, rules, fields, display] = await Promise.all([
      loadDepartments(this.#db),
      listRules(this.#db),
      listCustomFields(this.#db),
      displaySettings(this.#db),
    ]);
    const s: Structure = { version: v, tree: new DepartmentTree(departments), rules, fields: fields.filter((f) => f.clientVisible), display };
    this.#cache = s;
    return s;
  }

  async #viewer(viewerId: number): Promise<{ id: number; departmentIds: number[]; placementVersion: number }> {
    const [row] = await select<{ id: number; status: string; placement_version: number | string }>(
      this.#db,
      'SELECT id, status, placement_version FROM users WHERE id = ?',
      [viewerId],
    );
    if (!row) throw qiaoError('QIAO_NOT_FOUND', `viewer ${viewerId} does not exist`, { field: 'viewer' });
    if (row.status === 'resigned') throw qiaoError('QIAO_FORBIDDEN', `viewer ${viewerId} has resigned and may not read the directory`, { field: 'viewer' });
    const m = await loadMemberships(this.#db, [viewerId]);
    return { id: viewerId, departmentIds: (m.get(viewerId) ?? []).map((x) => x.departmentId), placementVersion: Number(row.placement_version) };
  }

  async policy(viewerId: number, s?: Structure): Promise<{ policy: Policy; structure: Structure; viewer: { placementVersion: number } }> {
    const structure = s ?? (await this.structure());
    const viewer = await this.#viewer(viewerId);
    return { policy: policyFor(structure.tree, structure.rules, viewer), structure, viewer };
  }

  async snapshot(viewerId: number): Promise<Snapshot> {
    const meta = await readMeta(this.#db);
    const structure = await this.structure(meta.version);
    const { policy } = await this.policy(viewerId, structure);
    const base = {
      version: meta.version,
      forbidden: policy.forbidden,
      display: structure.display,
      customFields: structure.fields.map(({ key, label, type }) => ({ key, label, type })),
    };
    if (policy.forbidden) {
      const self = await this.#users(policy, structure, 'WHERE id = ?', [viewerId]);
      return { ...base, customFields: [], departments: [], users: self.visible };
    }
    const departments = structure.tree.topDown().filter((d) => departmentVisible(policy, d.id)).map(clientDepartment);
    const { visible } = await this.#users(policy, structure, "WHERE status <> 'resigned'", []);
    return { ...base, departments, users: visible };
  }

  async changes(viewerId: number, since: number): Promise<Changes> {
    const meta = await readMeta(this.#db);
    const empty = { departments: { upserts: [], deletions: [] }, users: { upserts: [], deletions: [] } };
    const reset = (reason: Changes['reason']): Changes => ({ version: meta.version, since, reset: true, reason, ...empty });
    if (since > meta.version) return reset('ahead');
    if (since < meta.floor) return reset('too-old');
    if (meta.view_version > since) return reset('view-changed');
    const structure = await this.structure(meta.version);
    const { policy, viewer } = await this.policy(viewerId, structure);
    // Where the viewer sits decides what the rules let them see; after they moved, only a full read is exact.
    if (structure.rules.length && viewer.placementVersion > since) return reset('viewer-moved');

    const out: Changes = { version: meta.version, since, reset: false, forbidden: policy.forbidden, ...empty };
    out.departments = { upserts: [], deletions: [] };
    out.users = { upserts: [], deletions: [] };
    for (const d of structure.tree.byId.values()) {
      if (d.version <= since) continue;
      if (departmentVisible(policy, d.id)) out.departments.upserts.push(clientDepartment(d));
      else if (d.placementVersion > since) out.departments.deletions.push(d.id);
    }
    out.departments.upserts.sort((a, b) => a.id - b.id);
    const users = await this.#users(policy, structure, 'WHERE version > ?', [since], since);
    out.users.upserts = users.visible;
    out.users.deletions = users.removed;
    const tombs = await select<{ kind: string; object_id: number }>(this.#db, 'SELECT kind, object_id FROM org_tombstones WHERE version > ? ORDER BY object_id', [since]);
    for (const t of tombs) (t.kind === 'user' ? out.users.deletions : out.departments.deletions).push(Number(t.object_id));
    return out;
  }

  /** One person as the viewer sees them; NOT_FOUND when the viewer may not see them (no existence leak). */
  async user(viewerId: number, userId: number): Promise<ClientUser> {
    const { policy, structure } = await this.policy(viewerId);
    const { visible } = await this.#users(policy, structure, 'WHERE id = ?', [userId]);
    if (!visible.length) throw qiaoError('QIAO_NOT_FOUND', `user ${userId} does not exist or is not visible to viewer ${viewerId}`, { field: 'userId' });
    return visible[0];
  }

  /**
   * Which of `userIds` the viewer may see, by the same rules as every other read (presence, for one, must
   * not reveal more than the directory does). Ids of nobody are simply not in the answer.
   */
  async visibleIds(viewerId: number, userIds: number[]): Promise<number[]> {
    const { policy, structure } = await this.policy(viewerId);
    const out: number[] = [];
    for (const chunk of chunked([...new Set(userIds)])) {
      const { visible } = await this.#users(policy, structure, `WHERE id IN ${inList(chunk.length)}`, chunk);
      for (const u of visible) out.push(u.id);
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * Reads people by `where`, decides each against the policy. `removed` lists those a delta must tell the
   * viewer to drop: not visible now, and moved (or resigned) since `since`.
   */
  async #users(policy: Policy, s: Structure, where: string, args: unknown[], since?: number): Promise<{ visible: ClientUser[]; removed: number[] }> {
    const rows = await select<ClientRow>(this.#db, `SELECT ${CLIENT_COLUMNS} FROM users ${where} ORDER BY id`, args);
    const ids = rows.map((r) => Number(r.id));
    // A full read takes every membership in one query rather than 200 IN-lists.
    const memberships = ids.length > 5000 ? await loadMemberships(this.#db, null) : await loadMemberships(this.#db, ids);
    const visible: ClientUser[] = [];
    const removed: number[] = [];
    for (const r of rows) {
      const id = Number(r.id);
      const shown = visibleMemberships(policy, { id, status: r.status, departments: memberships.get(id) ?? [] });
      if (shown) visible.push(clientUser(r, shown, id === policy.viewerId, s.fields));
      else if (since !== undefined && Number(r.placement_version) > since) removed.push(id);
    }
    return { visible, removed };
  }
}

function clientDepartment(d: Department): ClientDepartment {
  return { id: d.id, parentId: d.parentId, name: d.name, sortOrder: d.sortOrder };
}

function clientUser(r: ClientRow, memberships: Membership[], self: boolean, fields: CustomFieldDef[]): ClientUser {
  const secrecy = self ? { mobile: false, phone: false, email: false } : parseSecrecy(r.secrecy);
  const u: ClientUser = {
    id: Number(r.id),
    account: r.account,
    name: r.name,
    status: r.status === 'disabled' ? 'disabled' : 'active',
    departments: memberships.map((m) => (m.position ? { id: m.departmentId, position: m.position, weight: m.weight } : { id: m.departmentId, weight: m.weight })),
  };
  if (r.gender) u.gender = r.gender;
  if (r.mobile && !secrecy.mobile) u.mobile = r.mobile;
  if (r.phone && !secrecy.phone) u.phone = r.phone;
  if (r.short_number) u.shortNumber = r.short_number;
  if (r.email && !secrecy.email) u.email = r.email;
  if (r.avatar) u.avatar = r.avatar;
  if (r.custom_fields && fields.length) {
    const stored = (typeof r.custom_fields === 'string' ? JSON.parse(r.custom_fields) : r.custom_fields) as CustomValues;
    const custom: CustomValues = {};
    for (const f of fields) if (stored[f.key] !== undefined) custom[f.key] = stored[f.key];
    if (Object.keys(custom).length) u.custom = custom;
  }
  return u;
}


/**
 * The unfiltered delta for trusted consumers (plugins after `org.imported`, the admin console): ids only,
 * so even a 100,000-person import answers in a few hundred kilobytes; details come from the read actions.
 */
export async function rawChanges(
  db: Database,
  since: number,
): Promise<{ version: number; since: number; reset: boolean; departments: { changed: number[]; deleted: number[] }; users: { changed: number[]; deleted: number[] } }> {
  const meta = await readMeta(db);
  const reset = since > meta.version || since < meta.floor;
  const ids = async (sql: string) => (await select<{ id: number }>(db, sql, [since])).map((r) => Number(r.id));
  return {
    version: meta.version,
    since,
    reset,
    departments: {
      changed: reset ? [] : await ids('SELECT id FROM departments WHERE version > ? ORDER BY id'),
      deleted: reset ? [] : await ids("SELECT object_id AS id FROM org_tombstones WHERE kind = 'department' AND version > ? ORDER BY object_id"),
    },
    users: {
      changed: reset ? [] : await ids('SELECT id FROM users WHERE version > ? ORDER BY id'),
      deleted: reset ? [] : await ids("SELECT object_id AS id FROM org_tombstones WHERE kind = 'user' AND version > ? ORDER BY object_id"),
    },
  };
}
