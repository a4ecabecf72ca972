import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startQiao, type QiaoApp } from '../../core/src/app.ts';
import { QueryTypes } from 'sequelize';
import { loadConfig } from '../../core/src/config.ts';
import { openDatabase } from '../../core/src/db/database.ts';
import { createTestDatabase, forEachDatabase, type TestDatabase } from '../support/databases.ts';
import { cliEnv, runQiao } from './cli-harness.ts';

forEachDatabase('qiao backup / restore (CLI)', ({ url, dialect }) => {
  let env: NodeJS.ProcessEnv;
  let dataDir: string;
  let target: TestDatabase;
  let targetEnv: NodeJS.ProcessEnv;
  let file: string;

  before(async function () {
    this.timeout(60_000);
    ({ env, dataDir } = await cliEnv(url()));
    target = await createTestDatabase(dialect);
    targetEnv = { ...env, DATABASE_URL: target.url };
    file = path.join(dataDir, 'out', 'site.jsonl.gz');
    const created = await runQiao(['admin', 'create', 'dora', '--password', 'dora-password-1'], env);
    assert.equal(created.code, 0, created.stderr);
  });

  after(async function () {
    this.timeout(60_000);
    await target?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes a backup file', async function () {
    this.timeout(60_000);
    const r = await runQiao(['backup', '--out', file], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`backup written: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+ tables, \\d+ rows\\)`));
    assert.ok(fs.statSync(file).size > 0);
    const dflt = await runQiao(['backup'], env);
    assert.equal(dflt.code, 0, dflt.stderr);
    assert.match(dflt.stdout, /backups\/qiao-\d{8}-\d{6}\.jsonl\.gz/);
  });

  it('restores it into an empty database, then needs --yes to replace data', async function () {
    this.timeout(90_000);
    const r = await runQiao(['restore', file], targetEnv);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /restored \d+ rows into \d+ tables/);
    const list = await runQiao(['admin', 'list', '--json'], targetEnv);
    assert.deepEqual(JSON.parse(list.stdout).map((a: { account: string }) => a.account), ['admin', 'dora']);

    const again = await runQiao(['restore', file], targetEnv);
    assert.equal(again.code, 1);
    assert.match(again.stderr.trim(), /^qiao: QIAO_CONFLICT: the database already holds data .*--yes/);
    const yes = await runQiao(['restore', file, '--yes'], targetEnv);
    assert.equal(yes.code, 0, yes.stderr);
    // Each restore is in the admin operation log, which a restore never empties.
    const db = openDatabase(target.url);
    try {
      const rows = await db.sequelize.query<{ admin_account: string }>("SELECT admin_account FROM admin_operation_log WHERE action = 'backup.restore'", { type: QueryTypes.SELECT });
      assert.equal(rows.length, 2);
      assert.match(rows[0].admin_account, /^cli:.+@.+/);
    } finally {
      await db.close();
    }
  });

  it('rejects a damaged file with one line naming the line at fault', async function () {
    this.timeout(60_000);
    const broken = path.join(dataDir, 'broken.jsonl.gz');
    fs.writeFileSync(broken, fs.readFileSync(file).subarray(0, 40));
    const r = await runQiao(['restore', broken, '--yes'], targetEnv);
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^qiao: QIAO_BACKUP_INVALID: backup .*broken\.jsonl\.gz, line \d+: .*\(field: file\)$/);
    const list = await runQiao(['admin', 'list', '--json'], targetEnv);
    assert.deepEqual(JSON.parse(list.stdout).map((a: { account: string }) => a.account), ['admin', 'dora']);
  });

  describe('while the server runs', () => {
    let app: QiaoApp;

    before(async function () {
      this.timeout(60_000);
      app = await startQiao(loadConfig(targetEnv, { logLevel: false, services: ['system', 'admin-api'], admin: { host: '127.0.0.1', port: Number(env.QIAO_ADMIN_PORT) } }));
    });

    after(async () => app?.stop());

    it('refuses to restore unless --force', async function () {
      this.timeout(60_000);
      const r = await runQiao(['restore', file, '--yes'], targetEnv);
      assert.equal(r.code, 1);
      assert.match(r.stderr.trim(), /^qiao: QIAO_CONFLICT: the Qiao server seems to be running .*--force/);
    });

    it('backs up while it serves', async function () {
      this.timeout(60_000);
      const live = path.join(dataDir, 'live.jsonl.gz');
      const r = await runQiao(['backup', '--out', live], targetEnv);
      assert.equal(r.code, 0, r.stderr);
    });
  });
});
