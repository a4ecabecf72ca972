/**
 * Org directory at scale (issue 3): generates a 100,000-person, 5,000-department organisation as RTX XML in
 * GB2312, imports it, serves one person's full directory download (`org.client.snapshot`), applies 1,000
 * changes and serves the delta since the download (`org.client.changes`). Prints times, payload sizes
 * (bytes of JSON) and the process's peak RSS, per database. Each database runs in its own child process
 * so the peak memory of one does not hide in the other's.
 *
 *   npm run bench -- org                 both databases
 *   BENCH_ORG_USERS=20000 npm run bench -- org
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { rtxSample } from '../../core/src/org/import-export/rtx-sample.ts';
import { startOrgApp, SUPER, type OrgApp } from '../../core/src/org/test-kit.ts';
import { benchDialects, fmt, withDatabase } from './support.ts';

const USERS = Number(process.env.BENCH_ORG_USERS ?? 100_000);
const DEPARTMENTS = Number(process.env.BENCH_ORG_DEPARTMENTS ?? 5_000);
const CHANGES = 1000;

const mib = (bytes: number) => `${fmt(bytes / 1048576)} MiB`;
const peakRss = () => process.resourceUsage().maxRSS * 1024;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

async function runOne(dialect: 'sqlite' | 'postgres'): Promise<void> {
  await withDatabase(dialect, async (db) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-org-bench-'));
    let app: OrgApp | undefined;
    try {
      const file = path.join(dir, 'rtx-org.xml');
      const gen = await timed(() => pipeline(Readable.from(rtxSample({ departments: DEPARTMENTS, users: USERS, encoding: 'gb2312' })), fs.createWriteStream(file)));
      const xmlBytes = fs.statSync(file).size;
      app = await startOrgApp(db.url);
      const call = <T>(action: string, params: object) => app!.broker.call<T, object>(`org.${action}`, params, { meta: SUPER, timeout: 0 });

      const imp = await timed(() => call<{ users: { created: number }; departments: { created: number } }>('import.rtx', { file }));
      if (imp.value.users.created !== USERS || imp.value.departments.created !== DEPARTMENTS) throw new Error(`import created ${JSON.stringify(imp.value)}`);
      const reimp = await timed(() => call<{ users: { unchanged: number } }>('import.rtx', { file }));
      if (reimp.value.users.unchanged !== USERS) throw new Error(`re-import changed people: ${JSON.stringify(reimp.value)}`);

      const viewer = (await call<{ users: Array<{ id: number }> }>('users.list', { search: 'user1', pageSize: 1 })).users[0].id;
      const snap = await timed(() => call<{ version: number; users: unknown[]; departments: unknown[] }>('client.snapshot', { viewer }));
      const json = await timed(async () => JSON.stringify(snap.value));
      const snapshotBytes = Buffer.byteLength(json.value);
      if (snap.value.users.length !== USERS || snap.value.departments.length !== DEPARTMENTS) throw new Error('snapshot is not the whole directory');

      // 1,000 changes to 1,000 different people, each its own transaction, as admins and the sync make them.
      const ids = (await app.db.sequelize.query<{ id: number }>('SELECT id FROM users ORDER BY id', { type: 'SELECT' as never })).map((r) => Number(r.id)).filter((id) => id !== viewer);
      const deptIds = (await call<{ departments: Array<{ id: number }> }>('departments.list', {})).departments.map((d) => d.id);
      const apply = await timed(async () => {
        for (let i = 0; i < CHANGES; i++) {
          const id = ids[(i * 97) % ids.length];
          if (i % 10 === 0) await call('users.resign', { id });
          else if (i % 10 === 1) await call('users.setMemberships', { id, departments: [{ departmentId: deptIds[(i * 31) % deptIds.length], position: '调动', weight: 1 }] });
          else if (i % 10 === 2) await call('users.setSecrecy', { userIds: [id], mobile: true });
          else await call('users.update', { id, mobile: `139${String(i).padStart(8, '0')}` });
        }
      });
      const delta = await timed(() =>
        call<{ reset: boolean; users: { upserts: unknown[]; deletions: number[] }; departments: { upserts: unknown[] } }>('client.changes', { viewer, since: snap.value.version }),
      );
      const deltaJson = JSON.stringify(delta.value);
      const got = delta.value.users.upserts.length + delta.value.users.deletions.length;
      if (delta.value.reset || got !== CHANGES || delta.value.users.deletions.length !== CHANGES / 10) {
        throw new Error(`delta holds ${delta.value.users.upserts.length} upserts + ${delta.value.users.deletions.length} deletions, expected ${CHANGES} with ${CHANGES / 10} deletions`);
      }
      const rows: Array<[string, string]> = [
        ['generate RTX XML (GB2312)', `${fmt(gen.ms / 1000, 2)} s, ${mib(xmlBytes)}`],
        [`import ${USERS} people / ${DEPARTMENTS} departments`, `${fmt(imp.ms / 1000, 2)} s (${fmt(USERS / (imp.ms / 1000), 0)} people/s)`],
        ['re-import same file (nothing changes)', `${fmt(reimp.ms / 1000, 2)} s`],
        ['full directory download (client.snapshot)', `${fmt(snap.ms, 0)} ms + ${fmt(json.ms, 0)} ms JSON, ${mib(snapshotBytes)}`],
        [`apply ${CHANGES} changes (one transaction each)`, `${fmt(apply.ms / 1000, 2)} s (${fmt(CHANGES / (apply.ms / 1000), 0)}/s)`],
        [`delta since the download (client.changes)`, `${fmt(delta.ms, 0)} ms, ${fmt(Buffer.byteLength(deltaJson) / 1024)} KiB (${delta.value.users.upserts.length} upserts, ${delta.value.users.deletions.length} deletions)`],
        ['peak RSS of this process', mib(peakRss())],
      ];
      console.log(`\n[${dialect}]`);
      for (const [k, v] of rows) console.log(`  ${k.padEnd(48)} ${v}`);
    } finally {
      await app?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

const only = process.argv.find((a) => a.startsWith('--dialect='))?.slice('--dialect='.length);
if (only === 'sqlite' || only === 'postgres') {
  await runOne(only);
} else {
  console.log(`org directory: ${USERS} people, ${DEPARTMENTS} departments, ${CHANGES}-change delta`);
  let failed = 0;
  for (const dialect of await benchDialects()) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), `--dialect=${dialect}`], { stdio: 'inherit', env: process.env });
    if (r.status !== 0) failed++;
  }
  process.exit(failed ? 1 : 0);
}
