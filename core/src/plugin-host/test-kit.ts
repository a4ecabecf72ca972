// Shared set-up for the plugin host's tests: a core on a throw-away database with a plugins.json of the test's choosing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startQiao, type QiaoApp } from '../app.ts';
import { loadConfig, type ConfigOverrides } from '../config.ts';
import type { PluginEntry } from './plugins-file.ts';
import type { PluginView } from './plugins.service.ts';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

export interface HostRig {
  app: QiaoApp;
  dir: string;
  pluginsFile: string;
  stop(): Promise<void>;
}

export async function startHost(databaseUrl: string, plugins: PluginEntry[], overrides: ConfigOverrides = {}): Promise<HostRig> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-host-'));
  const pluginsFile = path.join(dir, 'plugins.json');
  fs.writeFileSync(pluginsFile, JSON.stringify({ plugins }, null, 2));
  const app = await startQiao(
    loadConfig({}, {
      dataDir: path.join(dir, 'data'),
      databaseUrl,
      logLevel: false,
      pluginsFile,
      services: ['core'],
      ...overrides,
      plugins: { heartbeatMs: 200, heartbeatTimeoutMs: 1500, ...overrides.plugins },
    }),
  );
  return {
    app,
    dir,
    pluginsFile,
    stop: async () => {
      await app.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function pluginView(app: QiaoApp, id: string): Promise<PluginView> {
  return app.broker.call<PluginView, { id: string }>('plugins.get', { id });
}

/** Polls until `check` passes; the plugin host works asynchronously (process starts, restarts). */
export async function eventually<T>(check: () => Promise<T>, what: string, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${(last as Error)?.message ?? last}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Grants licence features the way the licence service announces them. */
export async function grantFeatures(app: QiaoApp, features: string[]): Promise<void> {
  await app.broker.broadcast('licence.changed', { status: 'valid', features });
}
