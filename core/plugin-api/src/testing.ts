/**
 * A test harness for plugin authors: starts a real Qiao core in-process (SQLite file by default, or the
 * PostgreSQL URL you pass) with your plugin installed, licensed and enabled, running in its own process
 * exactly as in production.
 *
 *   const core = await startPluginTestCore({ pluginDir, settings: { keywords: ['urgent'] } });
 *   const [alice, bob] = await core.createUsers('alice', 'bob');
 *   const chat = await core.createConversation([alice, bob]);
 *   await core.send(chat, alice, 'urgent: server down');
 *   await core.stop();
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StoredMessage } from './hooks.ts';

export { forEachDatabase, createTestDatabase, testDialects, type TestDialect, type TestDatabase } from './test-databases.ts';

export interface PluginTestCoreOptions {
  /** The folder that holds the plugin's plugin.json. */
  pluginDir: string;
  settings?: Record<string, unknown>;
  /** Licence features besides the plugin's own `licenceFeature`, which is always granted. */
  features?: string[];
  /** Default: a fresh SQLite file in a temp folder. */
  databaseUrl?: string;
  /** Default true. */
  enabled?: boolean;
}

export interface PluginTestCore {
  /** The running core (a `QiaoApp` from @qiao/core). */
  app: { broker: { call<T>(action: string, params?: unknown): Promise<T> } & Record<string, any>; stop(): Promise<void> } & Record<string, any>;
  pluginId: string;
  call<T = unknown>(action: string, params?: unknown): Promise<T>;
  createUsers(...accounts: string[]): Promise<number[]>;
  createConversation(memberIds: number[], name?: string): Promise<string>;
  /** Sends a text message through the core's `im.send`, hooks and all. */
  send(conversationId: string, senderId: number, text: string): Promise<StoredMessage>;
  /** The plugin's status as the admin sees it. */
  status(): Promise<{ status: string; state: string; reason: string }>;
  /** Polls `check` until it stops throwing (15 s by default). */
  eventually<T>(check: () => Promise<T> | T, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

let clientIds = 0;

export async function startPluginTestCore(options: PluginTestCoreOptions): Promise<PluginTestCore> {
  // Loaded lazily: plugin code never imports the core, only its tests do, through here.
  const { startQiao } = await import('@qiao/core/app.ts');
  const { loadConfig } = await import('@qiao/core/config.ts');
  const { createLicenceRig } = await import('@qiao/core/licence/licence-rig.ts');
  const { loadManifest } = await import('@qiao/core/plugin-host/manifest.ts');

  const pluginDir = path.resolve(options.pluginDir);
  const { manifest } = loadManifest(pluginDir);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-plugin-test-'));
  const pluginsFile = path.join(dir, 'plugins.json');
  fs.writeFileSync(pluginsFile, JSON.stringify({ plugins: [{ source: pluginDir, enabled: options.enabled ?? true, settings: options.settings ?? {} }] }));
  const rig = createLicenceRig(dir);
  const features = [...(options.features ?? []), ...(manifest.licenceFeature ? [manifest.licenceFeature] : [])];
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'data', 'licence.json'), JSON.stringify(rig.issue({ features })));

  const app = await startQiao(
    loadConfig({}, {
      dataDir: path.join(dir, 'data'),
      databaseUrl: options.databaseUrl ?? `sqlite:${path.join(dir, 'data', 'qiao.sqlite')}`,
      logLevel: false,
      pluginsFile,
      services: ['core'],
      licenceTrustedKeyFiles: [rig.trustedKeyFile],
    }),
  );

  const eventually = async <T>(check: () => Promise<T> | T, timeoutMs = 15_000): Promise<T> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await check();
      } catch (err) {
        if (Date.now() > until) throw err;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const status = () => app.broker.call<{ status: string; state: string; reason: string }, { id: string }>('plugins.get', { id: manifest.id });
  if (options.enabled ?? true) {
    await eventually(async () => {
      const s = await status();
      if (s.state !== 'running') throw new Error(`plugin ${manifest.id} is ${s.status}/${s.state}: ${s.reason}`);
    });
  }

  return {
    app: app as unknown as PluginTestCore['app'],
    pluginId: manifest.id,
    call: <T>(action: string, params?: unknown) => app.broker.call<T, unknown>(action, params),
    async createUsers(...accounts) {
      // Through the org and auth actions, as an admin would: people who exist, hold a seat and can be sent to.
      const ids: number[] = [];
      for (const account of accounts) {
        const user = await app.broker.call<{ id: number }, object>('org.users.create', { account, name: account });
        ids.push(Number(user.id));
      }
      if (ids.length) await app.broker.call('auth.users.authorise', { userIds: ids });
      return ids;
    },
    async createConversation(memberIds, name) {
      const type = memberIds.length === 2 && !name ? 'single' : 'discussion';
      const conv = await app.broker.call<{ id: string }, object>('im.conversations.create', { type, members: memberIds, name, createdBy: memberIds[0] });
      return conv.id;
    },
    send: (conversationId, senderId, text) =>
      app.broker.call<StoredMessage, object>('im.send', { conversationId, senderId, clientMsgId: `harness-${process.pid}-${++clientIds}`, type: 'text', body: { text } }),
    status,
    eventually,
    async stop() {
      await app.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
