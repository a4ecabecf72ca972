import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { QueryTypes } from 'sequelize';
import { createTestDatabase, forEachDatabase, testDialects, type TestDatabase, type TestDialect } from '../../../test/support/databases.ts';
import { CORE_MIGRATIONS } from '../app.ts';
import { openDatabase, type Database } from '../db/database.ts';
import { migrate } from '../db/migrator.ts';
import { createBackup } from './backup.ts';
import { encodeValue } from './codec.ts';
import { restoreBackup, seededRows } from './restore.ts';
import { describeTable, listTables, quote } from './schema.ts';

const PLUGIN_MIGRATIONS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'plugin-migrations');
const PLUGIN_OWNER = 'com.example.fixture';

async function insertRows(db: Database, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  for (let i = 0; i < rows.length; i += 300) {
    const batch = rows.slice(i, i + 300);
    const one = `(${columns.map(() => '?').join(', ')})`;
    await db.sequelize.query(`INSERT INTO ${quote(table)} (${columns.map(quote).join(', ')}) VALUES ${batch.map(() => one).join(', ')}`, {
      replacements: batch.flat(),
    });
  }
}

/** A database with every core table and the fixture plugin's tables filled, some across several pages. */
async function seed(db: Database): Promise<void> {
  await migrate(db, 'core', CORE_MIGRATIONS);
  await migrate(db, PLUGIN_OWNER, PLUGIN_MIGRATIONS);
  const t0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
  const at = (i: number) => new Date(t0 + i * 1000);
  await insertRows(db, 'system_settings', ['key', 'value', 'updated_at'], [
    ['company', JSON.stringify({ name: '桥 "Bridge" Ltd', buin: 123456 }), at(0)],
    ['weird', JSON.stringify({ s: "it's \\ a ? $1 :x", nested: [1, null, true, { d: 1.5 }] }), at(1)],
  ]);
  await insertRows(db, 'admins', ['id', 'account', 'display_name', 'password_hash', 'role', 'enabled', 'must_change_password', 'created_at', 'updated_at'], [
    [1, 'admin', 'Super', 'scrypt$x', 'super', true, true, at(0), at(0)],
    [5, 'ops', 'Ops', 'scrypt$y', 'admin', false, false, at(1), at(2)],
  ]);
  await insertRows(db, 'admin_sessions', ['token_hash', 'admin_id', 'created_at', 'expires_at'], [['h'.repeat(64), 5, at(3), at(9999)]]);
  await insertRows(db, 'admin_operation_log', ['id', 'admin_account', 'action', 'outcome', 'created_at'], [
    [1, 'admin', 'org.users.create', 'ok', at(4)],
    [2, 'ops', 'org.users.disable', 'ok', at(5)],
  ]);
  await insertRows(db, 'users', ['id', 'account', 'name', 'status', 'authorised', 'created_at', 'updated_at'],
    Array.from({ length: 30 }, (_, i) => [i + 1, `u${i + 1}`, `User ${i + 1} 桥`, i % 7 ? 'active' : 'disabled', i % 2 === 0, at(i), at(i)]));
  await insertRows(db, 'conversations', ['id', 'type', 'name', 'created_by', 'created_at', 'updated_at'], [
    ['c1', 'group', 'Général', 1, at(1), at(1)],
    ['c2', 'direct', null, 2, at(2), at(2)],
    ['c3', 'group', "O'Brien's", null, at(3), at(3)],
  ]);
  await insertRows(db, 'conversation_members', ['conversation_id', 'user_id', 'role', 'joined_at'],
    ['c1', 'c2', 'c3'].flatMap((c, ci) => Array.from({ length: 10 }, (_, i) => [c, ci * 10 + i + 1, i === 0 ? 'owner' : 'member', at(i)])));
  await insertRows(db, 'messages', ['id', 'conversation_id', 'sender_id', 'client_msg_id', 'type', 'body', 'created_at', 'recalled_at'],
    Array.from({ length: 2500 }, (_, i) => [
      i + 1, ['c1', 'c2', 'c3'][i % 3], (i % 30) + 1, `m-${i}`, 'text',
      JSON.stringify({ text: `msg ${i} 'single' "double" \\ 桥 😀`, n: i, empty: i % 5 === 0 ? null : [] }),
      at(i), i % 97 === 0 ? at(i + 60) : null,
    ]));
  await insertRows(db, 'event_log', ['seq', 'topic', 'subject', 'payload', 'created_at'],
    Array.from({ length: 1200 }, (_, i) => [i + 1, 'message.stored', `m-${i}`, JSON.stringify({ id: i + 1 }), at(i)]));
  await insertRows(db, 'plugin_cursors', ['plugin_id', 'stream', 'position', 'updated_at'], [[PLUGIN_OWNER, 'messages', 1200, at(5)]]);
  // Row 1 points at row 2: in key order a child comes before its parent.
  await insertRows(db, 'fixture_things', ['id', 'label', 'blob', 'ratio', 'day', 'flag', 'meta', 'at', 'parent_id'],
    Array.from({ length: 1100 }, (_, i) => [
      i + 1, `thing ${i}`, i % 4 ? randomBytes(i % 50) : null, i / 3, i % 2 ? '2024-02-29' : null, i % 3 === 0,
      i % 2 ? JSON.stringify({ i, tags: ['a', 'b'] }) : null, i % 6 ? at(i) : null, i === 0 ? 2 : i > 10 ? 1 : null,
    ]));
  await insertRows(db, 'fixture_pairs', ['a', 'b', 'value'],
    Array.from({ length: 60 }, (_, i) => [`k${i % 7}`, i, i % 5 ? `v${i}\nline2` : null]));
  await insertRows(db, 'fixture_log', ['line', 'n'], Array.from({ length: 1500 }, (_, i) => [`log ${i % 700}`, i % 3]));
}

/** Every row of every table (but the migrator's own) in neutral form; key-less tables as sorted lists. */
async function dump(db: Database): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const name of await listTables(db)) {
    if (name === 'qiao_migrations') continue;
    const table = await describeTable(db, name);
    const order = table.primaryKey.length ? ` ORDER BY ${table.primaryKey.map(quote).join(', ')}` : '';
    const rows = await db.sequelize.query<Record<string, unknown>>(`SELECT * FROM ${quote(name)}${order}`, { type: QueryTypes.SELECT });
    const lines = rows.map((r) => JSON.stringify(table.columns.map((c) => [c.name, encodeValue(c.kind, r[c.name], db.dialect)])));
    out[name] = table.primaryKey.length ? lines : lines.sort();
  }
  return out;
}

async function count(db: Database, table: string): Promise<number> {
  const [row] = await db.sequelize.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${quote(table)}`, { type: QueryTypes.SELECT });
  return Number(row.n);
}

function rewrite(file: string, out: string, edit: (lines: string[]) => string[]): void {
  const lines = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8').split('\n');
  fs.writeFileSync(out, zlib.gzipSync(edit(lines).join('\n')));
}

forEachDatabase('backup and restore', ({ url, dialect }) => {
  let source: Database;
  let dir: string;
  let backupFile: string;
  let expected: Record<string, string[]>;
  const extra: TestDatabase[] = [];
  const opened: Database[] = [];

  async function freshDatabase(d: TestDialect, withPlugin: boolean): Promise<Database> {
    const t = await createTestDatabase(d);
    extra.push(t);
    const db = openDatabase(t.url);
    opened.push(db);
    if (withPlugin) {
      await migrate(db, 'core', CORE_MIGRATIONS);
      await migrate(db, PLUGIN_OWNER, PLUGIN_MIGRATIONS);
    }
    return db;
  }

  before(async function () {
    this.timeout(60_000);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-backup-'));
    source = openDatabase(url());
    await seed(source);
    expected = await dump(source);
    backupFile = path.join(dir, 'full.jsonl.gz');
  });

  after(async function () {
    this.timeout(60_000);
    for (const db of opened) await db.close().catch(() => undefined);
    await source?.close();
    for (const t of extra) await t.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes a gzip JSON-lines file: header, table sections with rows, end marker', async function () {
    this.timeout(30_000);
    const summary = await createBackup(source, backupFile);
    const lines = zlib.gunzipSync(fs.readFileSync(backupFile)).toString('utf8').trimEnd().split('\n');
    const header = JSON.parse(lines[0]);
    assert.equal(header.format, 'qiao-backup');
    assert.equal(header.version, 1);
    assert.equal(header.dialect, dialect);
    const core = fs.readdirSync(CORE_MIGRATIONS).filter((f) => /^\d{4}-.+\.ts$/.test(f)).map((f) => `core/${f.replace(/\.ts$/, '')}`);
    assert.deepEqual(header.migrations, [`${PLUGIN_OWNER}/0001-fixture-tables`, ...core].sort());
    assert.deepEqual([...header.tables].sort(), (await listTables(source)).sort());
    assert.deepEqual(JSON.parse(lines[lines.length - 1]), { end: true, tables: header.tables.length, rows: summary.rows });
    const totalRows = Object.values(expected).reduce((n, rows) => n + rows.length, 0) + (await count(source, 'qiao_migrations'));
    assert.equal(summary.rows, totalRows);
    assert.ok(fs.readdirSync(dir).every((f) => !f.includes('partial')), 'no partial file left behind');
  });

  it(`restores into a fresh ${dialect} database row for row, and ids continue after the restored ones`, async function () {
    this.timeout(60_000);
    const target = await freshDatabase(dialect, true);
    const summary = await restoreBackup(target, backupFile, { coreMigrations: CORE_MIGRATIONS });
    assert.deepEqual(summary.skippedTables, []);
    assert.deepEqual(summary.skippedColumns, []);
    assert.deepEqual(await dump(target), expected);
    await target.sequelize.query(
      "INSERT INTO admins (account, display_name, password_hash, role, enabled, must_change_password, created_at, updated_at) VALUES ('new', 'New', 'x', 'admin', ?, ?, ?, ?)",
      { replacements: [true, false, new Date(), new Date()] },
    );
    const [row] = await target.sequelize.query<{ id: number }>("SELECT id FROM admins WHERE account = 'new'", { type: QueryTypes.SELECT });
    assert.equal(row.id, 6);
  });

  const other: TestDialect = dialect === 'sqlite' ? 'postgres' : 'sqlite';
  if (testDialects().includes(other)) {
    it(`restores a ${dialect} backup into ${other} row for row, and back again`, async function () {
      this.timeout(90_000);
      const across = await freshDatabase(other, true);
      await restoreBackup(across, backupFile, { coreMigrations: CORE_MIGRATIONS });
      assert.deepEqual(await dump(across), expected);
      const [msg] = await across.sequelize.query<{ body: unknown; recalled_at: unknown }>('SELECT body, recalled_at FROM messages WHERE id = 1', { type: QueryTypes.SELECT });
      const body = typeof msg.body === 'string' ? JSON.parse(msg.body) : msg.body;
      assert.equal(body.text, `msg 0 'single' "double" \\ 桥 😀`);
      assert.equal(new Date(msg.recalled_at as string).toISOString(), new Date(Date.UTC(2025, 0, 2, 3, 5, 5, 678)).toISOString());

      const backAgain = path.join(dir, 'across.jsonl.gz');
      await createBackup(across, backAgain);
      const home = await freshDatabase(dialect, true);
      await restoreBackup(home, backAgain, { coreMigrations: CORE_MIGRATIONS });
      assert.deepEqual(await dump(home), expected);
    });
  }

  it('restores the core tables and reports plugin tables this database does not have', async function () {
    this.timeout(60_000);
    const target = await freshDatabase(dialect, false);
    const summary = await restoreBackup(target, backupFile, { coreMigrations: CORE_MIGRATIONS });
    assert.deepEqual(summary.skippedTables.sort(), ['fixture_log', 'fixture_pairs', 'fixture_things']);
    const { fixture_log: _l, fixture_pairs: _p, fixture_things: _t, ...core } = expected;
    assert.deepEqual(await dump(target), core);
  });

  it('keeps the rows newer core migrations wrote into tables the backup predates', async function () {
    this.timeout(60_000);
    const seeded = await seededRows(CORE_MIGRATIONS);
    const older = path.join(dir, 'older.jsonl.gz');
    rewrite(backupFile, older, (lines) => {
      const header = JSON.parse(lines[0]);
      header.tables = header.tables.filter((t: string) => !seeded.has(t));
      const kept: string[] = [JSON.stringify(header)];
      let skip = false;
      let tables = 0;
      let rows = 0;
      for (const line of lines.slice(1)) {
        if (line.startsWith('{"table":')) {
          skip = seeded.has(JSON.parse(line).table);
          if (!skip) tables++;
        } else if (line.startsWith('{"end":')) {
          kept.push(JSON.stringify({ end: true, tables, rows }));
          continue;
        } else if (line.startsWith('[') && !skip) rows++;
        if (!skip) kept.push(line);
      }
      return kept;
    });
    const target = await freshDatabase(dialect, true);
    await restoreBackup(target, older, { coreMigrations: CORE_MIGRATIONS });
    const restored = await dump(target);
    for (const [table, n] of seeded) assert.equal(restored[table].length, n, `${table} keeps its ${n} seeded row(s)`);
    for (const table of Object.keys(expected).filter((t) => !seeded.has(t))) assert.deepEqual(restored[table], expected[table], table);
  });

  it('keeps the admin operation log through a restore: its rows stay, the backup\'s are added once, the restore is logged', async function () {
    this.timeout(60_000);
    const target = await freshDatabase(dialect, true);
    const t0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
    // Row 1 is the backup's own row 1 (the same database, later); rows 2 and 3 happened only here.
    await insertRows(target, 'admin_operation_log', ['id', 'admin_account', 'action', 'outcome', 'created_at'], [
      [1, 'admin', 'org.users.create', 'ok', new Date(t0 + 4000)],
      [2, 'intruder', 'org.users.delete', 'ok', new Date(t0 + 60_000)],
      [3, 'intruder', 'system.backup.restore', 'ok', new Date(t0 + 61_000)],
    ]);
    await restoreBackup(target, backupFile, { coreMigrations: CORE_MIGRATIONS, replace: true, by: 'root@host' });
    const rows = await target.sequelize.query<{ id: number; admin_account: string; action: string }>('SELECT id, admin_account, action FROM admin_operation_log ORDER BY id', {
      type: QueryTypes.SELECT,
    });
    assert.deepEqual(
      rows.map((r) => [Number(r.id), r.admin_account, r.action]),
      [
        [1, 'admin', 'org.users.create'],
        [2, 'intruder', 'org.users.delete'],
        [3, 'intruder', 'system.backup.restore'],
        [4, 'ops', 'org.users.disable'],
        [5, 'root@host', 'backup.restore'],
      ],
    );
    // Everything else is the backup's.
    const { admin_operation_log: _here, ...rest } = await dump(target);
    const { admin_operation_log: _there, ...wanted } = expected;
    assert.deepEqual(rest, wanted);
  });

  describe('refusals, and nothing half-restored', () => {
    let target: Database;
    let before: Record<string, string[]>;

    beforeEach(async function () {
      this.timeout(60_000);
      if (!target) {
        target = await freshDatabase(dialect, true);
        await insertRows(target, 'users', ['id', 'account', 'name', 'status', 'authorised', 'created_at', 'updated_at'], [[77, 'keep', 'Keep me', 'active', true, new Date(), new Date()]]);
        before = await dump(target);
      }
    });

    async function rejects(file: string, pattern: RegExp, code = 'QIAO_BACKUP_INVALID'): Promise<void> {
      await assert.rejects(restoreBackup(target, file, { coreMigrations: CORE_MIGRATIONS, replace: true }), (err: Error & { type?: string }) => {
        assert.equal(err.type, code, err.message);
        assert.match(err.message, pattern);
        return true;
      });
      assert.deepEqual(await dump(target), before, 'the database is unchanged');
    }

    it('refuses to replace a database that holds data without replace (--yes)', async () => {
      await assert.rejects(restoreBackup(target, backupFile, { coreMigrations: CORE_MIGRATIONS }), (err: Error & { type?: string }) => {
        assert.equal(err.type, 'QIAO_CONFLICT');
        assert.match(err.message, /--yes/);
        return true;
      });
      assert.deepEqual(await dump(target), before);
    });

    it('rejects a file that is not a backup at all', async () => {
      const garbage = path.join(dir, 'garbage.gz');
      fs.writeFileSync(garbage, randomBytes(4096));
      await rejects(garbage, /line 1:/);
      const plain = path.join(dir, 'plain.gz');
      fs.writeFileSync(plain, zlib.gzipSync('hello\nworld\n'));
      await rejects(plain, /line 1: not a Qiao backup/);
      await rejects(path.join(dir, 'missing.gz'), /does not exist/);
    });

    it('rejects a truncated file, naming the line where it breaks', async () => {
      const whole = fs.readFileSync(backupFile);
      const cut = path.join(dir, 'cut.gz');
      fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
      await rejects(cut, /line \d+: the file ends in the middle of the data \(truncated\)/);
      const noEnd = path.join(dir, 'no-end.gz');
      rewrite(backupFile, noEnd, (lines) => lines.slice(0, 3000));
      await rejects(noEnd, /line 3001: the file ends before the end marker/);
    });

    it('rejects a damaged line in the middle, naming it', async () => {
      const damaged = path.join(dir, 'damaged.gz');
      rewrite(backupFile, damaged, (lines) => lines.map((l, i) => (i === 1999 ? l.slice(0, 10) : l)));
      await rejects(damaged, /line 2000: not valid JSON/);
      const narrow = path.join(dir, 'narrow.gz');
      rewrite(backupFile, narrow, (lines) => lines.map((l, i) => (i === 2000 ? JSON.stringify(JSON.parse(l).slice(1)) : l)));
      await rejects(narrow, /line 2001: row of table "\w+" has \d+ values, expected \d+/);
    });

    it('rolls everything back when a late row does not fit its table', async () => {
      const bad = path.join(dir, 'bad-row.gz');
      rewrite(backupFile, bad, (lines) => {
        // The last row of `users` (the last core table in the file) loses its NOT NULL account.
        const end = lines.findIndex((l) => l.startsWith('{"end"'));
        const usersAt = lines.findIndex((l) => l.startsWith('{"table":"users"'));
        let last = usersAt + 1;
        while (last + 1 < end && lines[last + 1].startsWith('[')) last++;
        const row = JSON.parse(lines[last]);
        row[1] = null;
        lines[last] = JSON.stringify(row);
        return lines;
      });
      await rejects(bad, /do not fit table "users"/);
    });

    it('refuses a backup made by a newer Qiao', async () => {
      const future = path.join(dir, 'future.gz');
      rewrite(backupFile, future, (lines) => {
        const header = JSON.parse(lines[0]);
        header.migrations.push('core/9999-future');
        return [JSON.stringify(header), ...lines.slice(1)];
      });
      await rejects(future, /core\/9999-future/);
    });
  });
});
