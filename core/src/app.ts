import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type moleculer from 'moleculer';
import { createBroker } from './broker.ts';
import { loadConfig, type QiaoConfig } from './config.ts';
import { openDatabase, type Database } from './db/database.ts';
import { migrate } from './db/migrator.ts';
import { selectServices } from './services.ts';
import type { BootstrapResult } from './system/system.service.ts';

export const CORE_MIGRATIONS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'db', 'migrations');

export interface QiaoApp {
  config: QiaoConfig;
  broker: moleculer.ServiceBroker;
  db: Database | null;
  /** What first-start bootstrap did in this process (null when this process does not run `system`). */
  bootstrap: BootstrapResult | null;
  stop(): Promise<void>;
}

/** Opens storage (if this process owns any), migrates it, and starts the selected services on one broker. */
export async function startQiao(config: QiaoConfig = loadConfig()): Promise<QiaoApp> {
  const definitions = selectServices(config.services);
  let db: Database | null = null;
  if (definitions.some((d) => d.needsDb)) {
    db = openDatabase(config.databaseUrl);
    await migrate(db, 'core', CORE_MIGRATIONS);
  }
  const broker = createBroker(config);
  let bootstrap: BootstrapResult | null = null;
  try {
    for (const def of definitions) broker.createService((await def.load())({ config, db }));
    await broker.start();
    if (definitions.some((d) => d.name === 'system')) bootstrap = await broker.call<BootstrapResult>('system.bootstrap');
  } catch (err) {
    await broker.stop().catch(() => undefined);
    await db?.close().catch(() => undefined);
    throw err;
  }
  return {
    config,
    broker,
    db,
    bootstrap,
    stop: async () => {
      await broker.stop();
      await db?.close();
    },
  };
}
