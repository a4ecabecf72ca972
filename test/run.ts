/**
 * The one test command (`npm test`): typecheck, then every test file in one mocha run, with each storage
 * suite declared once per dialect (see support/databases.ts). Prints the counts per dialect and a closing
 * `N passed, N failed` line.
 *
 *   npm test                       everything
 *   npm test -- core/src/licence   only test files under that path
 *   npm test -- --no-typecheck     skip tsc
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Mocha from 'mocha';
import pg from 'pg';
import { pgAdminUrl } from './support/databases.ts';

// A DATABASE_URL pointing at PostgreSQL is taken as the server to test on; it is then removed so no test
// can fall back to it and write into a real database.
if (!process.env.QIAO_TEST_PG_URL && /^postgres(ql)?:/.test(process.env.DATABASE_URL ?? '')) process.env.QIAO_TEST_PG_URL = process.env.DATABASE_URL;
delete process.env.DATABASE_URL;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const noTypecheck = args.includes('--no-typecheck');
const grep = args.find((a) => a.startsWith('--grep='))?.slice('--grep='.length);
const filters = args.filter((a) => !a.startsWith('--')).map((a) => path.resolve(a));

const SEARCH_ROOTS = ['core', 'plugins', 'bridge-rtx', 'admin', 'sdk-examples', 'test'];

function findTests(dir: string, out: string[] = []): string[] {
  if (!fs.existsSync(dir)) return out;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.') || entry.name === 'dist') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) findTests(full, out);
    else if (entry.name.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

async function postgresReachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: pgAdminUrl(), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

if (!noTypecheck) {
  console.log('» typecheck (tsc)');
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', root], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.log('typecheck failed');
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

const dialects = ['sqlite'];
if (process.env.QIAO_TEST_PG === 'off') {
  console.log('» PostgreSQL suites OFF (QIAO_TEST_PG=off): storage is tested on SQLite only in this run');
} else {
  const problem = await postgresReachable();
  if (problem) {
    console.error(`» PostgreSQL at ${pgAdminUrl().replace(/:[^:@/]*@/, ':***@')} is not reachable (${problem}).`);
    console.error('  Set QIAO_TEST_PG_URL to a server where the user may CREATE DATABASE, or QIAO_TEST_PG=off to skip it knowingly.');
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  dialects.push('postgres');
}
process.env.QIAO_TEST_DIALECTS = dialects.join(',');
process.env.QIAO_LOG_LEVEL ??= 'off';

const files = SEARCH_ROOTS.flatMap((d) => findTests(path.join(root, d)))
  .filter((f) => filters.length === 0 || filters.some((p) => f.startsWith(p)))
  .sort();
if (files.length === 0) {
  console.log('no test files matched');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const mocha = new Mocha({ reporter: 'spec', timeout: 20_000, slow: 2_000, grep });
for (const f of files) mocha.addFile(f);
await mocha.loadFilesAsync();

const counts = new Map<string, { passed: number; failed: number }>();
const bucket = (title: string) => {
  const tag = /\[(sqlite|postgres)\]/.exec(title)?.[1] ?? 'no storage';
  if (!counts.has(tag)) counts.set(tag, { passed: 0, failed: 0 });
  return counts.get(tag)!;
};
let pending = 0;
const runner = mocha.run((failures) => {
  console.log('\n» results by storage');
  for (const [tag, c] of [...counts.entries()].sort()) console.log(`  ${tag.padEnd(10)} ${c.passed} passed, ${c.failed} failed`);
  const passed = [...counts.values()].reduce((s, c) => s + c.passed, 0);
  const failed = [...counts.values()].reduce((s, c) => s + c.failed, 0);
  if (pending) console.log(`  (${pending} pending tests are counted as neither)`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failures ? 1 : 0;
  // Stray handles (a server a test forgot) must not hang CI.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
});
runner.on('pass', (t) => bucket(t.fullTitle()).passed++);
runner.on('fail', (t) => bucket(t.fullTitle()).failed++);
runner.on('pending', () => pending++);
