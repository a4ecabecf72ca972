import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startQiao, type QiaoApp } from '../../core/src/app.ts';
import { loadConfig, type ConfigOverrides } from '../../core/src/config.ts';
import type { Database } from '../../core/src/db/database.ts';

export interface TestApp extends QiaoApp {
  db: Database;
  dataDir: string;
}

/**
 * A core on its own throw-away data dir and database (`databaseUrl` from forEachDatabase), running the
 * services asked for, quiet, on ephemeral ports; `stop()` also removes the data dir.
 */
export async function startTestApp(databaseUrl: string, services: string[], overrides: ConfigOverrides = {}, prefix = 'qiao-test-'): Promise<TestApp> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const app = await startQiao(
    loadConfig(process.env, {
      dataDir,
      databaseUrl,
      logLevel: process.env.QIAO_TEST_LOG ? "warn" : false,
      transporter: null,
      gateway: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      pluginsFile: path.join(dataDir, 'plugins.json'),
      services,
      ...overrides,
    }),
  );
  const stopApp = app.stop;
  return Object.assign(app, {
    db: app.db!,
    dataDir,
    stop: async () => {
      await stopApp();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  });
}
