import type { Transaction } from 'sequelize';
import type { Database } from '../../db/database.ts';
import { listCustomFields } from '../custom-fields.ts';
import { findDepartment, loadDepartments } from '../departments.ts';
import { orgWrite, readMeta, type OrgCommit } from '../org-write.ts';
import type { WriteOrigin } from '../read-only.ts';
import { displaySettings, importMaxBytes, readSetting, SETTING_KEYS, writeSetting } from '../settings.ts';
import { exec, jsonParam } from '../../db/sql.ts';
import { loadAllUsers } from '../users.ts';
import { listRules } from '../visibility.ts';
import { applyPlan, assertPlanSize, type ImportResult } from './apply-plan.ts';
import { buildBackup, parseBackup, readBackup, type OrgBackup } from './backup.ts';
import type { ImportSource } from './input.ts';
import { parseRtxXml, writeRtxXml, type RtxEncoding } from './rtx-xml.ts';
import { parseDepartmentXlsx, writeDepartmentXlsx } from './xlsx.ts';

/**
 * Import and export in each format. Files are parsed and checked before the write transaction opens (a
 * 100 MB parse must not hold the write lock), then applied in one org transaction: all or nothing.
 */

export interface ImportSummary extends ImportResult {
  format: 'backup' | 'xlsx' | 'rtx';
}

function summaryEvent(format: ImportSummary['format'], r: ImportResult, extra: Record<string, unknown> = {}) {
  // One event for the whole import: 100,000 events would flood every consumer; they read the details
  // with org.changes since the previous version.
  return { topic: 'org.imported', subject: `import:${format}`, payload: { format, departments: r.departments, users: r.users, ...extra } };
}

/** A consistent read: PostgreSQL needs REPEATABLE READ for several statements to see one state. */
async function readTransaction<T>(db: Database, fn: (t: Transaction) => Promise<T>): Promise<T> {
  return db.transaction(async (t) => {
    if (db.dialect === 'postgres') await db.sequelize.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', { transaction: t });
    return fn(t);
  });
}

export async function exportBackup(db: Database): Promise<OrgBackup> {
  return readTransaction(db, async (t) =>
    buildBackup({
      version: (await readMeta(db, t)).version,
      display: await displaySettings(db, t),
      customFields: await listCustomFields(db, t),
      rules: await listRules(db, t),
      departments: await loadDepartments(db, t),
      users: await loadAllUsers(db, t),
    }),
  );
}

export async function importBackup(db: Database, origin: WriteOrigin, src: ImportSource & { backup?: unknown }): Promise<OrgCommit<ImportSummary>> {
  const doc = await readBackup(src, await importMaxBytes(db));
  const parsed = parseBackup(doc, await listCustomFields(db));
  assertPlanSize(parsed.plan);
  return orgWrite(db, async (w) => {
    const j = jsonParam(db);
    const now = new Date();
    for (const f of parsed.customFields) {
      await exec(
        db,
        `INSERT INTO org_custom_fields (key, label, type, options, client_visible, sort_order, created_at, updated_at) VALUES (?, ?, ?, ${j}, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET label = excluded.label, type = excluded.type, options = excluded.options, client_visible = excluded.client_visible, sort_order = excluded.sort_order, updated_at = excluded.updated_at`,
        [f.key, f.label, f.type, f.options ? JSON.stringify(f.options) : null, f.clientVisible, f.sortOrder, now, now],
        w.t,
      );
    }
    const result = await applyPlan(db, w, origin, parsed.plan, 'org backup import');
    // The backup's rules replace the current ones: they refer to the ids just restored.
    if (parsed.rules.length || Array.isArray((doc as { visibilityRules?: unknown }).visibilityRules)) {
      await exec(db, 'DELETE FROM org_visibility_rules', [], w.t);
      for (const r of parsed.rules) {
        await exec(
          db,
          `INSERT INTO org_visibility_rules (id, kind, name, targets, whitelist, extra_visible, created_at, updated_at) VALUES (?, ?, ?, ${j}, ${j}, ${j}, ?, ?)`,
          [r.id, r.kind, r.name, JSON.stringify(r.targets), JSON.stringify(r.whitelist), JSON.stringify(r.extraVisible), now, now],
          w.t,
        );
      }
      if (db.dialect === 'postgres' && parsed.rules.length) {
        await db.sequelize.query("SELECT setval(pg_get_serial_sequence('org_visibility_rules', 'id'), (SELECT MAX(id) FROM org_visibility_rules))", { transaction: w.t });
      }
    }
    if (parsed.display) await writeSetting(db, SETTING_KEYS.display, parsed.display, w.t);
    w.viewChanged = true;
    w.events.push(summaryEvent('backup', result));
    return { format: 'backup' as const, ...result };
  });
}

export async function importXlsx(db: Database, origin: WriteOrigin, src: ImportSource, departmentId: number): Promise<OrgCommit<ImportSummary>> {
  await findDepartment(db, departmentId, undefined, 'departmentId');
  const plan = await parseDepartmentXlsx(src, { departmentId, maxBytes: await importMaxBytes(db), fields: await listCustomFields(db) });
  return orgWrite(db, async (w) => {
    const result = await applyPlan(db, w, origin, plan, 'Excel import');
    w.events.push(summaryEvent('xlsx', result, { departmentId }));
    return { format: 'xlsx' as const, ...result };
  });
}

export async function exportXlsx(db: Database, departmentId: number): Promise<{ filename: string; buffer: Buffer }> {
  const dept = await findDepartment(db, departmentId, undefined, 'departmentId');
  const fields = await listCustomFields(db);
  const users = (await loadAllUsers(db, undefined, true)).filter((u) => u.departments.some((m) => m.departmentId === departmentId));
  const people = users.map((u) => {
    const m = u.departments.find((x) => x.departmentId === departmentId)!;
    return { ...u, position: m.position, weight: m.weight };
  });
  people.sort((a, b) => b.weight - a.weight || a.account.localeCompare(b.account));
  return { filename: `${dept.name}.xlsx`, buffer: await writeDepartmentXlsx(dept.name, fields, people) };
}

export async function xlsxTemplate(db: Database, departmentId?: number): Promise<{ filename: string; buffer: Buffer }> {
  const name = departmentId !== undefined ? (await findDepartment(db, departmentId, undefined, 'departmentId')).name : '成员';
  return { filename: `${name}-template.xlsx`, buffer: await writeDepartmentXlsx(name, await listCustomFields(db)) };
}

export async function importRtx(db: Database, origin: WriteOrigin, src: ImportSource, opts: { source?: string | null; maxBytes?: number } = {}): Promise<OrgCommit<ImportSummary & { encoding: string }>> {
  const parsed = await parseRtxXml(src, { maxBytes: opts.maxBytes ?? (await importMaxBytes(db)), source: opts.source ?? null });
  assertPlanSize(parsed.plan);
  return orgWrite(db, async (w) => {
    const result = await applyPlan(db, w, origin, parsed.plan, 'RTX organisation XML import');
    w.events.push(summaryEvent('rtx', result, { encoding: parsed.encoding }));
    return { format: 'rtx' as const, encoding: parsed.encoding, ...result };
  });
}

export async function exportRtx(db: Database, encoding: RtxEncoding): Promise<Buffer> {
  const company = (await readSetting(db, 'company')) as { name?: string } | undefined;
  const departments = await loadDepartments(db);
  const users = await loadAllUsers(db, undefined, true);
  return writeRtxXml(company?.name ?? 'Qiao', departments, users, encoding);
}
