import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { CORE_MIGRATIONS } from '../app.ts';
import { createBackup } from '../backup/backup.ts';
import { restoreBackup } from '../backup/restore.ts';
import { loadConfig, type QiaoConfig } from '../config.ts';
import { openDatabase } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { localUrl } from '../gateway/local-url.ts';

function defaultBackupFile(config: QiaoConfig): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return path.join(config.dataDir, 'backups', `qiao-${stamp}.jsonl.gz`);
}

/** Any HTTP answer on the admin port means a server is using this installation right now. */
async function runningServer(config: QiaoConfig): Promise<string | null> {
  const url = localUrl(config.admin.host, config.admin.port);
  try {
    await fetch(`${url}/`, { signal: AbortSignal.timeout(2_000) });
    return url;
  } catch {
    return null;
  }
}

/** `qiao backup` and `qiao restore`: the whole database, to and from one portable file. */
export function register(program: Command): void {
  program
    .command('backup')
    .description('write every table of the database to a gzip JSON-lines file (safe while the server runs)')
    .option('--out <file>', 'where to write it (default: <data dir>/backups/qiao-<time>.jsonl.gz)')
    .action(async (opts: { out?: string }) => {
      const config = loadConfig();
      const db = openDatabase(config.databaseUrl);
      try {
        const summary = await createBackup(db, opts.out ?? defaultBackupFile(config));
        console.log(`backup written: ${summary.file} (${summary.tables} tables, ${summary.rows} rows)`);
        console.log('it holds the database only: keep the licence file and plugins.json alongside it');
      } finally {
        await db.close();
      }
    });

  program
    .command('restore <file>')
    .description('replace the database with a backup (any dialect into any dialect); the server must be stopped')
    .option('--yes', 'replace a database that already holds data')
    .option('--force', 'restore even though the server seems to be running')
    .action(async (file: string, opts: { yes?: boolean; force?: boolean }) => {
      const config = loadConfig();
      const running = await runningServer(config);
      if (running && !opts.force) {
        throw qiaoError('QIAO_CONFLICT', `the Qiao server seems to be running (its admin API answers at ${running}); stop it first, or pass --force`, { field: 'force' });
      }
      const db = openDatabase(config.databaseUrl);
      try {
        // The operation log keeps who restored: the OS account that ran this, on this host.
        const by = `cli:${os.userInfo().username}@${os.hostname()}`;
        const summary = await restoreBackup(db, path.resolve(file), { coreMigrations: CORE_MIGRATIONS, replace: Boolean(opts.yes), by });
        console.log(`restored ${summary.rows} rows into ${summary.tables} tables from ${file}`);
        if (summary.skippedTables.length) {
          console.error(`warning: not restored, no such table here (plugins not installed?): ${summary.skippedTables.join(', ')}`);
        }
        if (summary.skippedColumns.length) console.error(`warning: columns this schema no longer has: ${summary.skippedColumns.join(', ')}`);
      } finally {
        await db.close();
      }
    });
}
