import type { Transaction } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { inRanges, parseCidr, rangeList } from './ip.ts';
import { exec, inList, iso, queryRows, select } from '../db/sql.ts';

export interface IpRules {
  ranges: Array<{ id: number; cidr: string; note: string | null; createdAt: string }>;
  exemptions: Array<{ id: number; userId: number; account: string; note: string | null; createdAt: string }>;
}

export async function listIpRules(db: Database, t?: Transaction): Promise<IpRules> {
  const rows = await select<Record<string, unknown>>(
    db,
    `SELECT r.id, r.kind, r.cidr, r.user_id, r.note, r.created_at, u.account FROM login_ip_rules r LEFT JOIN users u ON u.id = r.user_id ORDER BY r.id`,
    [],
    t,
  );
  return {
    ranges: rows.filter((r) => r.kind === 'range').map((r) => ({ id: Number(r.id), cidr: String(r.cidr), note: (r.note as string | null) ?? null, createdAt: iso(r.created_at)! })),
    exemptions: rows
      .filter((r) => r.kind === 'exempt')
      .map((r) => ({ id: Number(r.id), userId: Number(r.user_id), account: String(r.account ?? ''), note: (r.note as string | null) ?? null, createdAt: iso(r.created_at)! })),
  };
}

/** Whether a login from `ip` is allowed by the rules (the caller checks the restriction is on at all). */
export async function ipAllowed(db: Database, userId: number | null, ip: string): Promise<boolean> {
  const ranges = await select<{ cidr: string }>(db, "SELECT cidr FROM login_ip_rules WHERE kind = 'range'");
  if (inRanges(rangeList(ranges.map((r) => r.cidr)), ip)) return true;
  if (userId === null) return false;
  const [exempt] = await select<{ id: number }>(db, "SELECT id FROM login_ip_rules WHERE kind = 'exempt' AND user_id = ?", [userId]);
  return exempt !== undefined;
}

export async function addRange(db: Database, t: Transaction, cidrText: string, note: string | null, now: Date): Promise<{ id: number; cidr: string }> {
  const parsed = parseCidr(cidrText);
  if ('problem' in parsed) throw qiaoError('QIAO_VALIDATION', `cidr: ${parsed.problem}`, { field: 'cidr' });
  const [existing] = await select<{ id: number }>(db, "SELECT id FROM login_ip_rules WHERE kind = 'range' AND cidr = ?", [parsed.cidr], t);
  if (existing) return { id: Number(existing.id), cidr: parsed.cidr };
  const [row] = await queryRows<{ id: number }>(db, "INSERT INTO login_ip_rules (kind, cidr, user_id, note, created_at) VALUES ('range', ?, NULL, ?, ?) RETURNING id", [parsed.cidr, note, now], t);
  return { id: Number(row.id), cidr: parsed.cidr };
}

export async function addExemptions(db: Database, t: Transaction, userIds: number[], note: string | null, now: Date): Promise<number[]> {
  const found = await select<{ id: number }>(db, `SELECT id FROM users WHERE id IN ${inList(userIds.length)}`, userIds, t);
  const known = new Set(found.map((r) => Number(r.id)));
  userIds.forEach((id, i) => {
    if (!known.has(id)) throw qiaoError('QIAO_NOT_FOUND', `userIds[${i}]: user ${id} does not exist`, { field: `userIds[${i}]` });
  });
  const already = new Set(
    (await select<{ user_id: number }>(db, `SELECT user_id FROM login_ip_rules WHERE kind = 'exempt' AND user_id IN ${inList(userIds.length)}`, userIds, t)).map((r) =>
      Number(r.user_id),
    ),
  );
  const added: number[] = [];
  for (const id of new Set(userIds)) {
    if (already.has(id)) continue;
    await exec(db, "INSERT INTO login_ip_rules (kind, cidr, user_id, note, created_at) VALUES ('exempt', NULL, ?, ?, ?)", [id, note, now], t);
    added.push(id);
  }
  return added;
}

export async function removeRule(db: Database, t: Transaction, id: number, restrictionOn: boolean): Promise<{ kind: string; cidr: string | null; userId: number | null }> {
  const [rule] = await select<{ kind: string; cidr: string | null; user_id: number | null }>(db, 'SELECT kind, cidr, user_id FROM login_ip_rules WHERE id = ?', [id], t);
  if (!rule) throw qiaoError('QIAO_NOT_FOUND', `login IP rule ${id} does not exist`, { field: 'id' });
  if (rule.kind === 'range' && restrictionOn) {
    const [{ n }] = await select<{ n: number | string }>(db, "SELECT COUNT(*) AS n FROM login_ip_rules WHERE kind = 'range'", [], t);
    if (Number(n) <= 1) {
      throw qiaoError('QIAO_CONFLICT', `range ${rule.cidr} is the last internal range while login IP restriction is on; switch the restriction off first, or nobody but exempt people could log in`, { field: 'id' });
    }
  }
  await exec(db, 'DELETE FROM login_ip_rules WHERE id = ?', [id], t);
  return { kind: rule.kind, cidr: rule.cidr, userId: rule.user_id === null ? null : Number(rule.user_id) };
}

export async function rangeCount(db: Database, t?: Transaction): Promise<number> {
  const [{ n }] = await select<{ n: number | string }>(db, "SELECT COUNT(*) AS n FROM login_ip_rules WHERE kind = 'range'", [], t);
  return Number(n);
}
