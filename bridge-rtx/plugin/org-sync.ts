import { parseOrgXml, type ParsedOrg } from '../emulator/index.ts';
import { isNotFound, type Accounts, type CoreCall, type CoreError } from './accounts.ts';
import type { Store } from './store.ts';

/**
 * The org chart from RTX, as a delta. The plugin remembers what each sync saw (one fingerprint per RTX
 * account and the department paths); a new export is compared with that, and only what was added, changed,
 * moved, removed or restored is written to Qiao — through the core's own RTX import (idempotent by account,
 * merge mode, records marked `source: rtx`) and its resign/restore/delete actions, all with
 * `meta.orgSyncSource = 'rtx'` so RTX-owned records stay read-only to admins. Nothing is ever wiped: an
 * export with nobody in it, or one that would remove more than `maxRemovePercent` of the people, is refused
 * unless forced. The remembered state is updated batch by batch after each commit, so a sync cut short by a
 * crash is simply finished by the next one, without duplicates.
 */

export interface SyncCounts {
  rtxUsers: number;
  added: number;
  changed: number;
  moved: number;
  removed: number;
  restored: number;
  departmentsAdded: number;
  departmentsRemoved: number;
  skipped: number;
  problems: string[];
}

export class SyncRefused extends Error {}

type RtxUser = ParsedOrg['users'][number];

interface Snapshot {
  uid: string;
  qiao_account: string;
  qiao_user_id: number | null;
  origin: string;
  fingerprint: string | null;
  departments: string | null;
  removed: number;
}

const SYNC_META = { orgSyncSource: 'rtx' };

/** The account status a QIAO_CONFLICT from resign/restore names, or null for any other error. */
function statusConflict(err: unknown): string | null {
  const e = err as CoreError & { data?: { status?: string } };
  return e?.type === 'QIAO_CONFLICT' && typeof e.data?.status === 'string' ? e.data.status : null;
}

const fieldsPrint = (u: RtxUser) => JSON.stringify([u.name ?? u.uid, u.rtxno ?? null, u.gender ?? 0, u.mobile ?? '', u.email ?? '', u.phone ?? '', u.position ?? '']);
const deptPrint = (u: RtxUser) => JSON.stringify([...u.departments].sort());

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\r\n\t]/g, ' ');
}

/** One import file: every department (the hierarchy must be complete) and this batch's people, one per line. */
export function importXml(
  enterprise: string,
  departments: Array<{ path: string; describe?: string }>,
  users: Array<{ account: string; u: RtxUser }>,
): { xml: string; lineOf: Map<number, string> } {
  interface Node {
    name: string;
    describe?: string;
    kids: Map<string, Node>;
    users: string[];
  }
  const root: Node = { name: '', kids: new Map(), users: [] };
  const nodeOf = (path: string) => {
    let n = root;
    for (const part of path.split('\\')) {
      let k = n.kids.get(part);
      if (!k) n.kids.set(part, (k = { name: part, kids: new Map(), users: [] }));
      n = k;
    }
    return n;
  };
  for (const d of departments) nodeOf(d.path).describe = d.describe;
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<enterprise name="${esc(enterprise)}">`, '<departments>'];
  const lineOf = new Map<number, string>();
  const userLine = ({ account, u }: { account: string; u: RtxUser }) =>
    `<user uid="${esc(account)}" name="${esc(u.name || u.uid)}" email="${esc(u.email ?? '')}" mobile="${esc(u.mobile ?? '')}" rtxno="${u.rtxno ?? ''}" phone="${esc(u.phone ?? '')}" position="${esc(u.position ?? '')}" gender="${u.gender ?? 0}"/>`;
  for (const x of users) {
    if (x.u.departments.length === 0) root.users.push(userLine(x));
    for (const d of x.u.departments) nodeOf(d).users.push(userLine(x));
  }
  const accountOfLine = new Map<string, string>(users.map((x) => [userLine(x), x.account]));
  const emit = (line: string) => {
    lines.push(line);
    const account = accountOfLine.get(line);
    if (account !== undefined) lineOf.set(lines.length, account);
  };
  const walk = (n: Node) => {
    emit(`<department name="${esc(n.name)}" describe="${esc(n.describe ?? '')}">`);
    n.users.forEach(emit);
    for (const k of n.kids.values()) walk(k);
    emit('</department>');
  };
  for (const k of root.kids.values()) walk(k);
  root.users.forEach(emit);
  lines.push('</departments>', '</enterprise>', '');
  return { xml: lines.join('\n'), lineOf };
}

export class OrgSync {
  readonly #store: Store;
  readonly #call: CoreCall;
  readonly #accounts: Accounts;
  readonly #log: (level: 'info' | 'warn' | 'error', m: string) => void;

  constructor(store: Store, call: CoreCall, accounts: Accounts, log: (level: 'info' | 'warn' | 'error', m: string) => void) {
    this.#store = store;
    this.#call = call;
    this.#accounts = accounts;
    this.#log = log;
  }

  async apply(xml: Buffer, opts: { batchSize: number; maxRemovePercent: number; force: boolean }): Promise<SyncCounts> {
    const org = parseOrgXml(xml);
    // The relay account belongs to the bridge, not to a person: it gets no Qiao account.
    org.users = org.users.filter((u) => !this.#accounts.isRelay(u.uid));
    const counts: SyncCounts = { rtxUsers: org.users.length, added: 0, changed: 0, moved: 0, removed: 0, restored: 0, departmentsAdded: 0, departmentsRemoved: 0, skipped: 0, problems: [] };
    const snap = new Map<string, Snapshot>();
    for (const r of await this.#store.query<Snapshot & { uid_key: string }>('SELECT uid_key, uid, qiao_account, qiao_user_id, origin, fingerprint, departments, removed FROM rtx_bridge_users')) {
      snap.set(r.uid_key, { ...r, removed: Number(r.removed), qiao_user_id: r.qiao_user_id === null ? null : Number(r.qiao_user_id) });
    }
    const synced = [...snap.values()].filter((s) => s.fingerprint !== null && !s.removed);

    // ---- what changed ---------------------------------------------------------------------------------------
    const toImport: Array<{ account: string; u: RtxUser; restored: boolean }> = [];
    const present = new Set<string>();
    for (const u of org.users) {
      const key = u.uid.toLowerCase();
      present.add(key);
      const s = snap.get(key);
      const fp = fieldsPrint(u);
      const dp = deptPrint(u);
      const account = s?.qiao_account ?? u.uid;
      if (!s || s.fingerprint === null) {
        counts.added++;
        toImport.push({ account, u, restored: false });
      } else if (s.removed) {
        counts.restored++;
        toImport.push({ account, u, restored: true });
      } else if (s.fingerprint !== fp || s.departments !== dp) {
        if (s.fingerprint !== fp) counts.changed++;
        if (s.departments !== dp) counts.moved++;
        toImport.push({ account, u, restored: false });
      }
    }
    const gone = synced.filter((s) => !present.has(s.uid.toLowerCase()));
    const deptRows = await this.#store.query<{ path: string; removed: number }>('SELECT path, removed FROM rtx_bridge_departments');
    const knownDepts = new Set(deptRows.filter((d) => !Number(d.removed)).map((d) => d.path));
    const newDepts = org.departments.map((d) => d.path);
    const describedDepts = org.departments;
    const newDeptSet = new Set(newDepts);
    const deptsAdded = newDepts.filter((p) => !knownDepts.has(p));
    const deptsGone = [...knownDepts].filter((p) => !newDeptSet.has(p));
    counts.departmentsAdded = deptsAdded.length;

    // ---- never a wipe ---------------------------------------------------------------------------------------
    if (!opts.force) {
      if (org.users.length === 0 && synced.length > 0) {
        throw new SyncRefused(`the RTX export lists nobody while ${synced.length} people were synced before; refusing to remove everyone (run the sync with force if RTX really is empty)`);
      }
      const pct = synced.length ? (gone.length * 100) / synced.length : 0;
      if (gone.length > 10 && pct > opts.maxRemovePercent) {
        throw new SyncRefused(
          `the RTX export would remove ${gone.length} of ${synced.length} synced people (${pct.toFixed(0)} %, more than the ${opts.maxRemovePercent} % allowed); refusing — check RTX, or run the sync with force`,
        );
      }
    }

    // ---- add / change / move / restore: the core's RTX import, batch by batch -------------------------------
    const batches: Array<typeof toImport> = [];
    for (let i = 0; i < toImport.length; i += opts.batchSize) batches.push(toImport.slice(i, i + opts.batchSize));
    if (!batches.length && deptsAdded.length) batches.push([]);
    for (const batch of batches) {
      const imported = await this.#importBatch(org, describedDepts, batch, counts);
      await this.#remember(imported.map((x) => x.u), snap);
    }
    if (deptsAdded.length || batches.length) await this.#rememberDepartments(newDepts);
    for (const x of toImport.filter((t) => t.restored)) {
      try {
        const id = await this.#accounts.qiaoId(x.u.uid);
        if (id !== null) await this.#call('org.users.restore', { id }, SYNC_META);
      } catch (err) {
        // Not resigned after all (an admin restored them already): that is the state wanted.
        if (statusConflict(err) !== null) continue;
        counts.problems.push(`restore "${x.u.uid}": ${(err as Error).message}`);
      }
    }

    // ---- removed people: resigned in Qiao (kept, like RTX keeps no one, but their history stays) -------------
    for (const s of gone) {
      try {
        let id = s.qiao_user_id;
        if (id === null) {
          try {
            id = Number((await this.#call<{ id: number }>('org.users.byAccount', { account: s.qiao_account })).id);
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
        }
        if (id !== null) {
          try {
            await this.#call('org.users.resign', { id }, SYNC_META);
          } catch (err) {
            // Already resigned (an admin did it, or a sync that died after the resign): nothing left to do.
            if (!(statusConflict(err) === 'resigned' || isNotFound(err))) throw err;
          }
        }
        await this.#store.execute('UPDATE rtx_bridge_users SET removed = 1, updated_at = ? WHERE uid_key = ?', [Date.now(), s.uid.toLowerCase()]);
        counts.removed++;
      } catch (err) {
        counts.skipped++;
        counts.problems.push(`remove "${s.uid}": ${(err as Error).message}`);
      }
    }

    // ---- removed departments, deepest first --------------------------------------------------------------------
    if (deptsGone.length) {
      const { departments } = await this.#call<{ departments: Array<{ id: number; parentId: number | null; name: string }> }>('org.departments.list', {});
      const byId = new Map(departments.map((d) => [Number(d.id), d]));
      const idOfPath = new Map<string, number>();
      for (const d of departments) {
        const parts: string[] = [];
        for (let cur: typeof d | undefined = d; cur; cur = cur.parentId === null ? undefined : byId.get(Number(cur.parentId))) parts.unshift(cur.name);
        idOfPath.set(parts.join('\\'), Number(d.id));
      }
      for (const p of deptsGone.sort((a, b) => b.split('\\').length - a.split('\\').length)) {
        const id = idOfPath.get(p);
        try {
          if (id !== undefined) await this.#call('org.departments.delete', { id }, SYNC_META);
          counts.departmentsRemoved++;
        } catch (err) {
          counts.problems.push(`department "${p}" is gone from RTX but stays in Qiao: ${(err as Error).message}`);
        }
        await this.#store.execute('UPDATE rtx_bridge_departments SET removed = 1, updated_at = ? WHERE path = ?', [Date.now(), p]);
      }
    }
    this.#accounts.reset();
    this.#log('info', `org sync: ${JSON.stringify({ ...counts, problems: counts.problems.length })}`);
    return counts;
  }

  /** Imports one batch; people the core refuses are left out (and reported) and the rest imported. */
  async #importBatch(org: ParsedOrg, depts: Array<{ path: string; describe?: string }>, batch: Array<{ account: string; u: RtxUser }>, counts: SyncCounts): Promise<Array<{ account: string; u: RtxUser }>> {
    let current = batch;
    for (let attempt = 0; ; attempt++) {
      const { xml, lineOf } = importXml(org.enterprise.name, depts, current);
      try {
        await this.#call('org.import.rtx', { data: Buffer.from(xml, 'utf8').toString('base64'), source: 'rtx' }, SYNC_META);
        return current;
      } catch (err) {
        const e = err as CoreError;
        const problems = e.data?.problems ?? [];
        const bad = new Map<string, string>();
        for (const p of problems) {
          const account = p.line !== undefined ? lineOf.get(p.line) : undefined;
          if (account !== undefined) bad.set(account, p.message);
        }
        if (attempt > 0 || e.type !== 'QIAO_VALIDATION' || bad.size === 0 || bad.size < problems.length) throw err;
        for (const [account, message] of bad) counts.problems.push(`"${account}" not imported: ${message}`);
        counts.skipped += bad.size;
        current = current.filter((x) => !bad.has(x.account));
      }
    }
  }

  async #remember(users: RtxUser[], snap: Map<string, Snapshot>): Promise<void> {
    const now = Date.now();
    for (let i = 0; i < users.length; i += 200) {
      const part = users.slice(i, i + 200);
      const rows = part.map((u) => {
        const s = snap.get(u.uid.toLowerCase());
        const account = s?.qiao_account ?? u.uid;
        return [u.uid.toLowerCase(), u.uid, account, account.toLowerCase(), s?.origin === 'manual' ? 'manual' : 'sync', fieldsPrint(u), deptPrint(u), 0, now];
      });
      await this.#store.execute(
        `INSERT INTO rtx_bridge_users (uid_key, uid, qiao_account, qiao_account_key, origin, fingerprint, departments, removed, updated_at)
         VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
         ON CONFLICT (uid_key) DO UPDATE SET uid = excluded.uid, origin = excluded.origin, fingerprint = excluded.fingerprint, departments = excluded.departments, removed = 0, updated_at = excluded.updated_at`,
        rows.flat(),
      );
    }
  }

  async #rememberDepartments(paths: string[]): Promise<void> {
    const now = Date.now();
    for (let i = 0; i < paths.length; i += 300) {
      const part = paths.slice(i, i + 300);
      await this.#store.execute(
        `INSERT INTO rtx_bridge_departments (path, removed, updated_at) VALUES ${part.map(() => '(?, 0, ?)').join(', ')}
         ON CONFLICT (path) DO UPDATE SET removed = 0, updated_at = excluded.updated_at`,
        part.flatMap((p) => [p, now]),
      );
    }
  }
}
