import type { Database } from '../db/database.ts';
import { readMeta, setMeta, type OrgTx } from './org-write.ts';
import { exec, select } from '../db/sql.ts';
import { tombstoneDays } from './settings.ts';

export type TombstoneKind = 'department' | 'user';

/**
 * Records a deletion for delta sync, and drops tombstones older than the retention (`org.tombstoneDays`).
 * Dropping them raises the floor: a client whose last sync is older than the floor may have missed a
 * deletion, so it is told to reset instead of trusting an incomplete delta.
 */
export async function addTombstone(db: Database, w: OrgTx, kind: TombstoneKind, objectId: number): Promise<void> {
  await exec(
    db,
    `INSERT INTO org_tombstones (kind, object_id, version, created_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (kind, object_id) DO UPDATE SET version = excluded.version, created_at = excluded.created_at`,
    [kind, objectId, w.version, new Date()],
    w.t,
  );
  const days = await tombstoneDays(db, w.t);
  await pruneTombstones(db, w, new Date(Date.now() - days * 86_400_000));
}

/** Drops tombstones created before `before` (or with a version up to `upToVersion`); returns how many. */
export async function pruneTombstones(db: Database, w: OrgTx, before: Date | null, upToVersion?: number): Promise<{ pruned: number; floor: number }> {
  const where = before ? 'created_at < ?' : 'version <= ?';
  const arg = before ?? upToVersion ?? 0;
  const [{ top }] = await select<{ top: number | string | null }>(db, `SELECT MAX(version) AS top FROM org_tombstones WHERE ${where}`, [arg], w.t);
  const meta = await readMeta(db, w.t);
  if (top === null || top === undefined) return { pruned: 0, floor: meta.floor };
  const pruned = await exec(db, `DELETE FROM org_tombstones WHERE ${where}`, [arg], w.t);
  const floor = Math.max(meta.floor, Number(top));
  await setMeta(db, w.t, 'floor', floor);
  return { pruned, floor };
}
