/**
 * Department groups (部门群): a group whose members are the people of a department (and, if asked, of its
 * sub-departments). Whoever joins the department joins the group; whoever leaves it or resigns leaves.
 *
 * Membership is derived from the org tables, never from event payloads: `reconcile` compares the group
 * with what the directory says now and applies the difference, so running it twice, late, or after a
 * crash gives the same result. What triggers it is the durable event log: `followOrg` reads `org.*`
 * entries after its cursor, reconciles the groups they can affect, and moves the cursor in the same
 * transaction as the membership changes, so an entry is applied exactly once even if the process dies
 * half-way. Broker events (`eventlog.appended`) only wake it up; a lost one delays it to the next poll.
 */
import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { announceChange, announceCreated, insertConversation, insertMembers, newGroupId, type Actor, type Conversation, type ConversationRow } from './conversations.ts';
import { removeMembersTx } from './groups.ts';
import type { Role } from './permissions.ts';
import { MAX_GROUP_MEMBERS } from './settings.ts';
import { bool, chunked, inList, parseJson, queryRows } from '../db/sql.ts';
import { fanOut } from './sync.ts';
import { imWrite, type ImCommit, type ImTx } from './write.ts';

export const ORG_CONSUMER = 'core.im';
export const ORG_STREAM = 'org';
const BATCH = 500;

export type Tree = Map<number, number[]>;

export async function loadTree(db: Database, t: Transaction | undefined): Promise<Tree> {
  const rows = await queryRows<{ id: number; parent_id: number | null }>(db, 'SELECT id, parent_id FROM departments', [], t);
  const children: Tree = new Map();
  for (const r of rows) {
    const parent = r.parent_id === null ? 0 : Number(r.parent_id);
    children.set(parent, [...(children.get(parent) ?? []), Number(r.id)]);
  }
  return children;
}

export function subtree(tree: Tree, id: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  const stack = [id];
  while (stack.length) {
    const cur = stack.pop()!;
    if (seen.has(cur)) continue;
    seen.add(cur);
    out.push(cur);
    stack.push(...(tree.get(cur) ?? []));
  }
  return out;
}

function departmentsOf(tree: Tree, c: Pick<ConversationRow, 'department_id' | 'include_sub'>): number[] {
  const id = Number(c.department_id);
  return bool(c.include_sub) ? subtree(tree, id) : [id];
}

/** Everyone the directory puts in the group now: people of its departments who have not resigned. */
async function desiredMembers(db: Database, w: ImTx, departments: number[]): Promise<number[]> {
  const out = new Set<number>();
  for (const chunk of chunked(departments)) {
    const rows = await queryRows<{ user_id: number }>(
      db,
      `SELECT DISTINCT ud.user_id FROM user_departments ud JOIN users u ON u.id = ud.user_id
       WHERE ud.department_id IN ${inList(chunk.length)} AND u.status <> 'resigned'`,
      chunk,
      w.t,
    );
    for (const r of rows) out.add(Number(r.user_id));
  }
  return [...out].sort((a, b) => a - b);
}

export async function createDepartmentGroup(
  db: Database,
  by: Actor,
  input: { departmentId: number; includeSubDepartments?: boolean; name?: string },
): Promise<ImCommit<Conversation>> {
  return imWrite(db, async (w) => {
    const [dept] = await queryRows<{ id: number; name: string }>(db, 'SELECT id, name FROM departments WHERE id = ?', [input.departmentId], w.t);
    if (!dept) throw qiaoError('QIAO_NOT_FOUND', `department ${input.departmentId} does not exist`, { field: 'departmentId' });
    const includeSub = input.includeSubDepartments === true;
    const [existing] = await queryRows<{ id: string }>(
      db,
      "SELECT id FROM conversations WHERE type = 'department' AND department_id = ? AND include_sub = ? AND dissolved_at IS NULL",
      [input.departmentId, includeSub],
      w.t,
    );
    if (existing) throw qiaoError('QIAO_CONFLICT', `department ${input.departmentId} already has its group ${existing.id}`, { field: 'departmentId', id: existing.id });
    const members = await desiredMembers(db, w, departmentsOf(await loadTree(db, w.t), { department_id: input.departmentId, include_sub: includeSub }));
    if (members.length > MAX_GROUP_MEMBERS) {
      throw qiaoError('QIAO_VALIDATION', `department ${input.departmentId} has ${members.length} people; a group holds at most ${MAX_GROUP_MEMBERS}`, { field: 'departmentId' });
    }
    const id = newGroupId('g');
    const name = input.name?.trim() || dept.name;
    await insertConversation(db, w, { id, type: 'department', name, createdBy: null, departmentId: input.departmentId, includeSub });
    await insertMembers(db, w, id, new Map(members.map((u) => [u, 'member' as Role])));
    return announceCreated(db, w, id, by);
  });
}

/** Brings one department group in line with the directory; returns who joined and who left. */
export async function reconcile(db: Database, w: ImTx, c: ConversationRow, tree: Tree): Promise<{ added: number[]; removed: number[] }> {
  const desired = new Set(await desiredMembers(db, w, departmentsOf(tree, c)));
  const rows = await queryRows<{ user_id: number }>(db, 'SELECT user_id FROM conversation_members WHERE conversation_id = ?', [c.id], w.t);
  const current = new Set(rows.map((r) => Number(r.user_id)));
  // Group admins the admin appointed stay, even outside the department: they run the group.
  const appointed = new Set(
    (await queryRows<{ user_id: number }>(db, "SELECT user_id FROM conversation_members WHERE conversation_id = ? AND role <> 'member'", [c.id], w.t)).map((r) => Number(r.user_id)),
  );
  const added = [...desired].filter((u) => !current.has(u)).sort((a, b) => a - b);
  const removed = [...current].filter((u) => !desired.has(u) && !appointed.has(u)).sort((a, b) => a - b);
  const by: Actor = { directory: true };
  if (added.length) {
    await insertMembers(db, w, c.id, new Map(added.map((u) => [u, 'member' as Role])));
    await announceChange(db, w, c.id, { change: 'membersAdded', type: c.type, name: c.name, userIds: added, by });
  }
  if (removed.length) await removeMembersTx(db, w, c, removed, by);
  return { added, removed };
}

interface OrgEventRow {
  seq: number | string;
  topic: string;
  subject: string | null;
  payload: unknown;
}

interface UserPayload {
  change?: string;
  userId?: number;
  user?: { id: number; departments?: Array<{ departmentId: number }> };
  version?: number;
}

async function readCursor(db: Database, w: ImTx): Promise<number | null> {
  const [row] = await queryRows<{ position: number | string }>(db, 'SELECT position FROM plugin_cursors WHERE plugin_id = ? AND stream = ?', [ORG_CONSUMER, ORG_STREAM], w.t);
  return row ? Number(row.position) : null;
}

async function writeCursor(db: Database, w: ImTx, position: number): Promise<void> {
  await db.sequelize.query(
    `INSERT INTO plugin_cursors (plugin_id, stream, position, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (plugin_id, stream) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
    { replacements: [ORG_CONSUMER, ORG_STREAM, position, new Date()], transaction: w.t },
  );
}

export interface FollowResult {
  position: number;
  applied: number;
  changedGroups: string[];
}

/**
 * Applies one batch of org changes after the cursor. On the very first run there is nothing to catch up
 * with (no department group can predate it), so the cursor starts at the log's head.
 */
export async function followOrgBatch(db: Database): Promise<ImCommit<FollowResult>> {
  return imWrite(db, async (w) => {
    const cursor = await readCursor(db, w);
    if (cursor === null) {
      const [row] = await queryRows<{ head: number | string | null }>(db, 'SELECT MAX(seq) AS head FROM event_log', [], w.t);
      const head = Number(row?.head ?? 0);
      await writeCursor(db, w, head);
      return { position: head, applied: 0, changedGroups: [] };
    }
    const events = await queryRows<OrgEventRow>(
      db,
      "SELECT seq, topic, subject, payload FROM event_log WHERE seq > ? AND topic LIKE 'org.%' ORDER BY seq LIMIT ?",
      [cursor, BATCH],
      w.t,
    );
    if (events.length === 0) return { position: cursor, applied: 0, changedGroups: [] };
    const position = Number(events[events.length - 1].seq);
    const structural = events.some((e) => e.topic.startsWith('org.department.'));
    const people = new Set<number>();
    for (const e of events) {
      if (e.topic !== 'org.user.changed') continue;
      const p = parseJson<UserPayload>(e.payload);
      const userId = p.user?.id ?? p.userId;
      if (!userId) continue;
      people.add(userId);
      // Changes to a person's own record reach that person's devices: status, departments, profile.
      await fanOut(db, w, [userId], { kind: 'org', payload: { topic: e.topic, change: p.change ?? null, version: p.version ?? null, user: p.user ?? null } });
    }
    const changedGroups: string[] = [];
    if (structural || people.size) {
      const groups = await queryRows<ConversationRow>(db, "SELECT * FROM conversations WHERE type = 'department' AND dissolved_at IS NULL", [], w.t);
      if (groups.length) {
        const tree = await loadTree(db, w.t);
        const theirDepartments = new Set<number>();
        const memberOf = new Set<string>();
        for (const chunk of chunked([...people])) {
          const ud = await queryRows<{ department_id: number }>(db, `SELECT department_id FROM user_departments WHERE user_id IN ${inList(chunk.length)}`, chunk, w.t);
          ud.forEach((r) => theirDepartments.add(Number(r.department_id)));
          const cm = await queryRows<{ conversation_id: string }>(
            db,
            `SELECT DISTINCT m.conversation_id FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id
             WHERE c.type = 'department' AND m.user_id IN ${inList(chunk.length)}`,
            chunk,
            w.t,
          );
          cm.forEach((r) => memberOf.add(r.conversation_id));
        }
        for (const g of groups) {
          const affected = structural || memberOf.has(g.id) || departmentsOf(tree, g).some((d) => theirDepartments.has(d));
          if (!affected) continue;
          const { added, removed } = await reconcile(db, w, g, tree);
          if (added.length || removed.length) changedGroups.push(g.id);
        }
      }
    }
    await writeCursor(db, w, position);
    return { position, applied: events.length, changedGroups };
  });
}
