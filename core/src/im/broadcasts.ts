import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { toBroadcast, type Audience, type Broadcast, type BroadcastRow } from './broadcasts-model.ts';
import { loadTree, subtree } from './department-groups.ts';
import { validateBody, type MessageBody } from './message-types/index.ts';
import { chunked, inList, jsonParam, queryRows } from '../db/sql.ts';
import { fanOut } from './sync.ts';
import { imWrite, type ImCommit, type ImTx } from './write.ts';

export { toBroadcast, type Audience, type Broadcast } from './broadcasts-model.ts';

export const BROADCAST_TYPES = ['system', 'text', 'link', 'card'] as const;
/** Youdu's pop-up stays 6 to 3,600 seconds, or until dismissed (null). */
export const POPUP_RANGE = { min: 6, max: 3600 } as const;

export interface BroadcastInput {
  audience: Audience;
  /** Only people online now (needs the `presence.online` action; without it, everyone in the audience). */
  onlineOnly?: boolean;
  type: (typeof BROADCAST_TYPES)[number];
  title?: string;
  body: MessageBody;
  popupSeconds?: number | null;
}

/** Longest display name a broadcast's sender may have (the column's size). */
export const SENDER_NAME_MAX = 100;

/**
 * Who a platform broadcast (`im.broadcasts.send`) is from. A plugin is the sender of what it sends, even
 * when an admin's call led to it; then the signed-in admin; else the platform itself. A chosen display
 * name is honoured only for plugins and admins: anyone else reaching the action must not pass a broadcast
 * off as someone else's.
 */
export function platformSender(caller: { plugin?: string; pluginName?: string | null; admin?: string }, senderName?: string): Broadcast['sender'] {
  const chosen = senderName?.trim() || undefined;
  if (caller.plugin) return { kind: 'plugin', id: null, name: (chosen ?? (caller.pluginName?.trim() || caller.plugin)).slice(0, SENDER_NAME_MAX) };
  if (caller.admin) return { kind: 'admin', id: null, name: (chosen ?? caller.admin).slice(0, SENDER_NAME_MAX) };
  if (senderName !== undefined) throw qiaoError('QIAO_FORBIDDEN', 'senderName may be set only by an admin or a plugin', { field: 'senderName' });
  return { kind: 'system', id: null, name: 'system' };
}

export function checkBroadcast(input: BroadcastInput): void {
  const a = input.audience;
  if (!a.all && !a.userIds?.length && !a.departmentIds?.length) {
    throw qiaoError('QIAO_VALIDATION', 'audience names nobody: set all, userIds or departmentIds', { field: 'audience' });
  }
  validateBody(input.type, input.body);
}

/** Active people in the audience, in id order; unknown people and departments are refused by name. */
export async function resolveAudience(db: Database, t: Transaction | undefined, a: Audience): Promise<number[]> {
  const out = new Set<number>();
  if (a.all) {
    const rows = await queryRows<{ id: number }>(db, "SELECT id FROM users WHERE status = 'active'", [], t);
    rows.forEach((r) => out.add(Number(r.id)));
  }
  if (a.userIds?.length) {
    const found = new Map<number, string>();
    for (const chunk of chunked([...new Set(a.userIds)])) {
      const rows = await queryRows<{ id: number; status: string }>(db, `SELECT id, status FROM users WHERE id IN ${inList(chunk.length)}`, chunk, t);
      rows.forEach((r) => found.set(Number(r.id), r.status));
    }
    a.userIds.forEach((u, i) => {
      if (!found.has(u)) throw qiaoError('QIAO_NOT_FOUND', `user ${u} does not exist`, { field: `audience.userIds[${i}]` });
      if (found.get(u) === 'active') out.add(u);
    });
  }
  if (a.departmentIds?.length) {
    const tree = await loadTree(db, t);
    const known = new Set<number>([...tree.values()].flat());
    const departments = new Set<number>();
    a.departmentIds.forEach((d, i) => {
      if (!known.has(d)) throw qiaoError('QIAO_NOT_FOUND', `department ${d} does not exist`, { field: `audience.departmentIds[${i}]` });
      for (const x of a.includeSubDepartments ? subtree(tree, d) : [d]) departments.add(x);
    });
    for (const chunk of chunked([...departments])) {
      const rows = await queryRows<{ user_id: number }>(
        db,
        `SELECT DISTINCT ud.user_id FROM user_departments ud JOIN users u ON u.id = ud.user_id WHERE ud.department_id IN ${inList(chunk.length)} AND u.status = 'active'`,
        chunk,
        t,
      );
      rows.forEach((r) => out.add(Number(r.user_id)));
    }
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * Sends a broadcast or system notice (广播 / 系统消息). It lands in every recipient's inbox in the same
 * transaction, so people who are offline get it on their next sync; `onlineOnly` narrows the audience to
 * `online` (the people online when it was sent) when presence is known.
 */
export async function sendBroadcast(db: Database, sender: Broadcast['sender'], input: BroadcastInput, online: Set<number> | null): Promise<ImCommit<Broadcast>> {
  checkBroadcast(input);
  return imWrite(db, async (w) => {
    let recipients = await resolveAudience(db, w.t, input.audience);
    if (input.onlineOnly && online) recipients = recipients.filter((u) => online.has(u));
    const now = new Date();
    const [row] = await queryRows<BroadcastRow>(
      db,
      `INSERT INTO broadcasts (sender_kind, sender_id, sender_name, audience, online_only, type, title, body, popup_seconds, recipient_count, created_at)
       VALUES (?, ?, ?, ${jsonParam(db)}, ?, ?, ?, ${jsonParam(db)}, ?, ?, ?) RETURNING *`,
      [
        sender.kind,
        sender.id,
        sender.name,
        JSON.stringify(input.audience),
        input.onlineOnly === true,
        input.type,
        input.title?.trim() || null,
        JSON.stringify(input.body),
        input.popupSeconds ?? null,
        recipients.length,
        now,
      ],
      w.t,
    );
    const broadcast = toBroadcast(row);
    await fanOut(db, w, recipients, { kind: 'broadcast', refId: broadcast.id });
    w.events.push({ topic: 'broadcast.sent', subject: `broadcast:${broadcast.id}`, payload: broadcast });
    return broadcast;
  });
}

export async function listBroadcasts(db: Database, q: { page?: number; pageSize?: number }) {
  const pageSize = q.pageSize ?? 50;
  const page = q.page ?? 1;
  const [{ n }] = await queryRows<{ n: number | string }>(db, 'SELECT COUNT(*) AS n FROM broadcasts', []);
  const rows = await queryRows<BroadcastRow>(db, 'SELECT * FROM broadcasts ORDER BY id DESC LIMIT ? OFFSET ?', [pageSize, (page - 1) * pageSize]);
  return { total: Number(n), page, pageSize, broadcasts: rows.map(toBroadcast) };
}
