import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DURABLE_HOOK_TOPICS, PLUGIN_API_VERSION, type DurableHook, type PendingMessage } from '@qiao/plugin-api';
import type { ActionParams, Context, Service, ServiceSchema } from 'moleculer';
import { migrate, revertAll } from '../db/migrator.ts';
import { qiaoError } from '../errors.ts';
import { commitCursor, getCursor, readEvents } from '../eventlog/event-log.ts';
import { adminAction, type ServiceDeps } from '../services.ts';
import type { PluginRequest, ReadyMessage } from './ipc-protocol.ts';
import { allowed, loadManifest, ManifestError, type LoadedManifest } from './manifest.ts';
import { PluginProcess, type ExitInfo } from './plugin-process.ts';
import { readPluginsFile, writePluginsFile, type PluginEntry } from './plugins-file.ts';
import { checkSettings } from './settings.ts';
import { evaluateStatus, type PluginStatus } from './status.ts';

type RunState = 'stopped' | 'starting' | 'running' | 'restarting' | 'stopping';

interface PluginRecord {
  entry: PluginEntry;
  /** Manifest id, or the source when the manifest could not be read. */
  id: string;
  loaded: LoadedManifest | null;
  loadError: string | null;
  settings: Record<string, unknown>;
  settingsError: string | null;
  status: PluginStatus;
  reason: string;
  state: RunState;
  process: PluginProcess | null;
  proxies: Service[];
  failures: Array<{ at: number; reason: string }>;
  errorDisabled: string | null;
  restarts: number;
  restartTimer: NodeJS.Timeout | null;
}

export interface PluginView {
  id: string;
  name: string | null;
  version: string | null;
  source: string;
  enabled: boolean;
  status: PluginStatus;
  reason: string;
  state: RunState;
  pid: number | null;
  restarts: number;
  recentFailures: Array<{ at: string; reason: string }>;
  licenceFeature: string | null;
  hooks: string[];
}

export interface BeforeStoredOutcome {
  outcome: 'allow' | 'reject';
  message: PendingMessage;
  reason?: string;
  pluginId?: string;
}

const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const DEFAULT_HOOK_TIMEOUT_MS = 1_000;
const MAX_READ = 500;

function isPathSource(source: string): boolean {
  return source.startsWith('.') || path.isAbsolute(source);
}

/**
 * The plugin host. It reads plugins.json, validates manifests and settings, decides each plugin's status,
 * runs every enabled plugin in a child process of its own (so a crash, a hang or a leak there cannot take
 * the core down), proxies the plugin's actions onto the broker, checks every call the plugin makes against
 * its manifest, and restarts or error-disables plugins that die.
 */
export default function pluginsService({ config, db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('plugins service needs storage');
  const records = new Map<string, PluginRecord>();
  let features = new Set<string>();
  let fileError: string | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  let stopping = false;

  /** Admin changes and crash handling run one at a time, so two of them never race on a process. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  }

  return {
    name: 'plugins',

    actions: {
      list: adminAction({
        admin: true,
        rest: 'GET /plugins',
        handler(): { plugins: PluginView[]; fileError: string | null } {
          return { plugins: [...records.values()].map((r) => this.view(r)), fileError };
        },
      }),
      get: adminAction({
        admin: true,
        rest: 'GET /plugins/:id',
        params: { id: { type: 'string', min: 1, max: 1000 } },
        handler(ctx: Context<{ id: string }>) {
          const rec = this.find(ctx.params.id);
          return {
            ...this.view(rec),
            manifest: rec.loaded?.manifest ?? null,
            settings: rec.settings,
            settingsSchema: rec.loaded?.manifest.settingsSchema ?? null,
          };
        },
      }),
      enable: adminAction({
        admin: true,
        rest: 'POST /plugins/:id/enable',
        params: { id: { type: 'string', min: 1, max: 1000 } },
        handler(ctx: Context<{ id: string }>) {
          return serial(async () => {
            const rec = this.find(ctx.params.id);
            const would = evaluateStatus({ ...this.statusInput(rec), enabled: true, errorDisabled: null });
            if (would.status === 'invalid') throw qiaoError('QIAO_PLUGIN_MANIFEST_INVALID', `plugin ${rec.id} cannot be enabled: ${would.reason}`);
            if (would.status === 'incompatible') throw qiaoError('QIAO_PLUGIN_INCOMPATIBLE', `plugin ${rec.id} cannot be enabled: it ${would.reason}`);
            if (would.status === 'licence-disabled') {
              throw qiaoError('QIAO_LICENCE_FEATURE_MISSING', `plugin ${rec.id} cannot be enabled: ${would.reason}`, { feature: rec.loaded?.manifest.licenceFeature });
            }
            if (would.status === 'settings-invalid') {
              throw qiaoError('QIAO_PLUGIN_SETTINGS_INVALID', `plugin ${rec.id} cannot be enabled until its settings are fixed: ${would.reason}`, { field: rec.settingsError?.split(':')[0] });
            }
            rec.entry.enabled = true;
            rec.errorDisabled = null;
            rec.failures = [];
            this.save();
            await this.reconcileOne(rec);
            return this.view(rec);
          });
        },
      }),
      disable: adminAction({
        admin: true,
        rest: 'POST /plugins/:id/disable',
        params: { id: { type: 'string', min: 1, max: 1000 } },
        handler(ctx: Context<{ id: string }>) {
          return serial(async () => {
            const rec = this.find(ctx.params.id);
            rec.entry.enabled = false;
            this.save();
            await this.reconcileOne(rec);
            return this.view(rec);
          });
        },
      }),
      configure: adminAction({
        admin: true,
        rest: 'PUT /plugins/:id/settings',
        params: { id: { type: 'string', min: 1, max: 1000 }, settings: { type: 'object' } },
        handler(ctx: Context<{ id: string; settings: Record<string, unknown> }>) {
          return serial(async () => {
            const rec = this.find(ctx.params.id);
            if (!rec.loaded) throw qiaoError('QIAO_PLUGIN_MANIFEST_INVALID', `plugin ${rec.id} has no valid manifest: ${rec.loadError}`);
            const checked = checkSettings(rec.loaded.manifest, ctx.params.settings);
            if (checked.error) {
              // Nothing is written: the running plugin keeps its current, valid settings.
              throw qiaoError('QIAO_PLUGIN_SETTINGS_INVALID', `${checked.error.field}: ${checked.error.message}`, { field: checked.error.field });
            }
            rec.entry.settings = ctx.params.settings;
            rec.settings = checked.value;
            rec.settingsError = null;
            this.save();
            // Settings reach a plugin at start; a running one is restarted to pick them up.
            if (rec.state === 'running' || rec.state === 'starting') await this.stopPlugin(rec, 'reconfigured');
            await this.reconcileOne(rec);
            return this.view(rec);
          });
        },
      }),
      restart: adminAction({
        admin: true,
        rest: 'POST /plugins/:id/restart',
        params: { id: { type: 'string', min: 1, max: 1000 } },
        handler(ctx: Context<{ id: string }>) {
          return serial(async () => {
            const rec = this.find(ctx.params.id);
            await this.stopPlugin(rec, 'restarted by an admin');
            await this.reconcileOne(rec);
            return this.view(rec);
          });
        },
      }),
      install: adminAction({
        admin: 'super',
        rest: 'POST /plugins',
        params: { source: { type: 'string', min: 1, max: 1000 } },
        handler(ctx: Context<{ source: string }>) {
          return serial(async () => {
            const source = this.fetchSource(ctx.params.source);
            const dir = this.resolveDir(source);
            let loaded: LoadedManifest;
            try {
              loaded = loadManifest(dir);
            } catch (err) {
              throw qiaoError('QIAO_PLUGIN_MANIFEST_INVALID', (err as Error).message, { field: 'source' });
            }
            const clash = [...records.values()].find((r) => r.id === loaded.manifest.id || r.entry.source === source);
            if (clash) throw qiaoError('QIAO_PLUGIN_EXISTS', `plugin ${loaded.manifest.id} is already installed (from ${clash.entry.source})`, { field: 'source' });
            const rec = this.load({ source, enabled: false, settings: {} });
            records.set(rec.id, rec);
            this.save();
            this.evaluate(rec);
            return this.view(rec);
          });
        },
      }),
      uninstall: adminAction({
        admin: 'super',
        rest: 'DELETE /plugins/:id',
        params: { id: { type: 'string', min: 1, max: 1000 }, purge: { type: 'boolean', optional: true, convert: true } },
        handler(ctx: Context<{ id: string; purge?: boolean }>) {
          return serial(async () => {
            const rec = this.find(ctx.params.id);
            await this.stopPlugin(rec, 'uninstalled');
            if (rec.restartTimer) clearTimeout(rec.restartTimer);
            records.delete(rec.id);
            this.save();
            if (ctx.params.purge && rec.loaded) {
              if (rec.loaded.migrationsDir) await revertAll(db, rec.id, rec.loaded.migrationsDir);
              await db.sequelize.query('DELETE FROM plugin_cursors WHERE plugin_id = ?', { replacements: [rec.id] });
            }
            const installed = path.join(config.pluginInstallDir, 'node_modules');
            if (!isPathSource(rec.entry.source) && rec.loaded?.dir.startsWith(installed + path.sep)) {
              spawnSync('npm', ['uninstall', '--prefix', config.pluginInstallDir, '--no-audit', '--no-fund', rec.entry.source], { stdio: 'ignore' });
            }
            return { id: rec.id, uninstalled: true, purged: Boolean(ctx.params.purge) };
          });
        },
      }),
      reload: adminAction({
        admin: true,
        rest: 'POST /plugins/reload',
        handler() {
          return serial(async () => {
            await this.loadAll();
            await this.reconcileAll();
            return { plugins: [...records.values()].map((r) => this.view(r)), fileError };
          });
        },
      }),
      'hooks.beforeMessageStored': {
        visibility: 'public',
        params: { message: { type: 'object' } },
        handler(ctx: Context<{ message: PendingMessage }>): Promise<BeforeStoredOutcome> {
          return this.runBeforeMessageStored(ctx.params.message);
        },
      },
    },

    events: {
      'licence.changed'(ctx: Context<{ features?: string[] }>) {
        features = new Set(ctx.params.features ?? []);
        return serial(() => this.reconcileAll());
      },
      'eventlog.appended'() {
        for (const rec of records.values()) {
          if (rec.state === 'running' && rec.loaded?.manifest.hooks && (rec.loaded.manifest.hooks.afterMessageStored || rec.loaded.manifest.hooks.onOrgChanged)) {
            rec.process?.wake();
          }
        }
      },
    },

    methods: {
      find(id: string): PluginRecord {
        const rec = records.get(id) ?? [...records.values()].find((r) => r.entry.source === id);
        if (!rec) throw qiaoError('QIAO_PLUGIN_NOT_FOUND', `plugin "${id}" is not installed`, { field: 'id' });
        return rec;
      },

      view(r: PluginRecord): PluginView {
        return {
          id: r.id,
          name: r.loaded?.manifest.name ?? null,
          version: r.loaded?.manifest.version ?? null,
          source: r.entry.source,
          enabled: r.entry.enabled,
          status: r.status,
          reason: r.reason,
          state: r.state,
          pid: r.process?.alive ? (r.process.pid ?? null) : null,
          restarts: r.restarts,
          recentFailures: r.failures.map((f) => ({ at: new Date(f.at).toISOString(), reason: f.reason })),
          licenceFeature: r.loaded?.manifest.licenceFeature ?? null,
          hooks: Object.keys(r.loaded?.manifest.hooks ?? {}),
        };
      },

      resolveDir(source: string): string {
        if (isPathSource(source)) return path.resolve(config.root, source);
        // Packages installed by `plugins.install` first, then the workspace's own node_modules.
        for (const base of [config.pluginInstallDir, config.root]) {
          try {
            const req = createRequire(path.join(base, 'package.json'));
            return path.dirname(req.resolve(`${source}/plugin.json`));
          } catch {
            /* try the next place */
          }
        }
        return path.join(config.pluginInstallDir, 'node_modules', source);
      },

      /**
       * A folder is used where it is; a tarball or an npm spec is installed into the plugin folder first
       * (without running its install scripts) and is then known by its package name.
       */
      fetchSource(source: string): string {
        const asPath = path.resolve(config.root, source);
        if ((isPathSource(source) || fs.existsSync(asPath)) && fs.existsSync(asPath) && fs.statSync(asPath).isDirectory()) {
          const rel = path.relative(config.root, asPath);
          return rel.startsWith('..') || path.isAbsolute(rel) ? asPath : `./${rel}`;
        }
        fs.mkdirSync(config.pluginInstallDir, { recursive: true });
        const pkgFile = path.join(config.pluginInstallDir, 'package.json');
        if (!fs.existsSync(pkgFile)) fs.writeFileSync(pkgFile, JSON.stringify({ name: 'qiao-installed-plugins', private: true, dependencies: {} }, null, 2));
        const before = Object.keys((JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { dependencies?: object }).dependencies ?? {});
        const spec = fs.existsSync(asPath) ? asPath : source;
        const r = spawnSync('npm', ['install', '--prefix', config.pluginInstallDir, '--save', '--ignore-scripts', '--no-audit', '--no-fund', spec], { encoding: 'utf8' });
        if (r.status !== 0) {
          const why = (r.stderr || r.stdout || '').split('\n').find((l) => /ERR!|error/i.test(l)) ?? `npm exited with ${r.status}`;
          throw qiaoError('QIAO_PLUGIN_INSTALL_FAILED', `could not install "${source}": ${why.trim()}`, { field: 'source' });
        }
        const after = Object.keys((JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { dependencies?: object }).dependencies ?? {});
        const added = after.find((n) => !before.includes(n));
        if (!added) throw qiaoError('QIAO_PLUGIN_INSTALL_FAILED', `"${source}" installed nothing new (already installed?)`, { field: 'source' });
        return added;
      },

      load(entry: PluginEntry): PluginRecord {
        let loaded: LoadedManifest | null = null;
        let loadError: string | null = null;
        try {
          loaded = loadManifest(this.resolveDir(entry.source));
        } catch (err) {
          loadError = err instanceof ManifestError ? err.message : `${entry.source}: ${(err as Error).message}`;
          this.logger.error(`plugin ${entry.source}: ${loadError}`);
        }
        const checked = loaded ? checkSettings(loaded.manifest, entry.settings) : { value: entry.settings ?? {}, error: null };
        return {
          entry,
          id: loaded?.manifest.id ?? entry.source,
          loaded,
          loadError,
          settings: checked.value,
          settingsError: checked.error ? `${checked.error.field}: ${checked.error.message}` : null,
          status: 'disabled',
          reason: '',
          state: 'stopped',
          process: null,
          proxies: [],
          failures: [],
          errorDisabled: null,
          restarts: 0,
          restartTimer: null,
        };
      },

      /** (Re)reads plugins.json. A bad file leaves no plugins loaded and says why; the core runs on. */
      async loadAll() {
        let entries: PluginEntry[] = [];
        try {
          entries = readPluginsFile(config.pluginsFile).plugins;
          fileError = null;
        } catch (err) {
          fileError = (err as Error).message;
          this.logger.error(`plugins: ${fileError}`);
        }
        const next = new Map<string, PluginRecord>();
        for (const entry of entries) {
          const rec = this.load(entry);
          const old = records.get(rec.id);
          if (old) {
            // Keep the running process and crash history of a plugin that is still listed.
            Object.assign(old, { entry: rec.entry, loaded: rec.loaded, loadError: rec.loadError, settings: rec.settings, settingsError: rec.settingsError });
            next.set(rec.id, old);
          } else if (next.has(rec.id)) {
            this.logger.error(`plugins: ${config.pluginsFile}: plugin ${rec.id} is listed twice; the second (${entry.source}) is ignored`);
          } else {
            next.set(rec.id, rec);
          }
        }
        for (const [id, old] of records) if (!next.has(id)) await this.stopPlugin(old, 'removed from plugins.json');
        records.clear();
        for (const [id, rec] of next) records.set(id, rec);
      },

      save() {
        writePluginsFile(config.pluginsFile, { plugins: [...records.values()].map((r) => r.entry) });
      },

      statusInput(rec: PluginRecord) {
        return {
          loaded: rec.loaded,
          loadError: rec.loadError,
          enabled: rec.entry.enabled,
          features,
          settingsError: rec.settingsError,
          errorDisabled: rec.errorDisabled,
          pluginApiVersion: PLUGIN_API_VERSION,
        };
      },

      evaluate(rec: PluginRecord) {
        const { status, reason } = evaluateStatus(this.statusInput(rec));
        if (status !== rec.status) this.logger.info(`plugin ${rec.id}: ${status} (${reason})`);
        rec.status = status;
        rec.reason = reason;
      },

      async reconcileAll() {
        await Promise.all([...records.values()].map((r) => this.reconcileOne(r)));
      },

      async reconcileOne(rec: PluginRecord) {
        this.evaluate(rec);
        const wanted = rec.status === 'enabled' && config.plugins.autostart && !stopping;
        if (wanted && rec.state === 'stopped') await this.startPlugin(rec);
        else if (!wanted && rec.state !== 'stopped') await this.stopPlugin(rec, rec.reason);
      },

      async startPlugin(rec: PluginRecord) {
        if (!rec.loaded) return;
        const loaded = rec.loaded;
        rec.state = 'starting';
        if (rec.restartTimer) clearTimeout(rec.restartTimer);
        rec.restartTimer = null;
        try {
          if (loaded.migrationsDir) await migrate(db, rec.id, loaded.migrationsDir);
        } catch (err) {
          rec.state = 'stopped';
          this.recordFailure(rec, `migration failed: ${(err as Error).message}`);
          return;
        }
        const proc = new PluginProcess({
          pluginId: rec.id,
          loaded,
          settings: rec.settings,
          dataDir: path.join(config.dataDir, 'plugin-data', rec.id),
          logLevel: config.logLevel,
          databaseUrl: loaded.manifest.permissions?.database ? config.databaseUrl : null,
          heartbeatMs: config.plugins.heartbeatMs,
          heartbeatTimeoutMs: config.plugins.heartbeatTimeoutMs,
          startTimeoutMs: START_TIMEOUT_MS,
          onRequest: (msg) => this.answer(rec, msg),
          onEmit: (name, payload) => {
            if (allowed(loaded.manifest.permissions?.emits, name)) this.broker.emit(name, payload);
            else this.logger.warn(`plugin ${rec.id} may not emit "${name}" (not in permissions.emits); dropped`);
          },
        });
        rec.process = proc;
        proc.once('exit', (info: ExitInfo) => {
          // Whatever a plugin left behind in memory elsewhere (e.g. presence it reported) is for its owners to drop.
          Promise.resolve(this.broker.broadcast('plugins.process.exited', { pluginId: rec.id })).catch(() => undefined);
          void serial(() => this.onExit(rec, proc, info));
        });
        try {
          const ready = await proc.start();
          const existing = new Set(this.broker.registry.getServiceList({}).map((s: { name: string }) => s.name));
          const taken = ready.services.find((s) => existing.has(s.name));
          if (taken) {
            rec.errorDisabled = `its service name "${taken.name}" is already used by another service`;
            await this.stopPlugin(rec, rec.errorDisabled);
            this.evaluate(rec);
            return;
          }
          rec.proxies = await this.createProxies(rec, proc, ready.services, ready.events);
          rec.state = 'running';
          this.logger.info(`plugin ${rec.id} running (pid ${proc.pid})`);
        } catch (err) {
          // Died or stalled before it was ready; onExit records the failure and plans the retry.
          this.logger.warn(`plugin ${rec.id} failed to start: ${(err as Error).message}`);
        }
      },

      async createProxies(rec: PluginRecord, proc: PluginProcess, services: ReadyMessage['services'], events: string[]) {
        const created: Service[] = [];
        const meta = (m: object) => JSON.parse(JSON.stringify(m ?? {})) as Record<string, unknown>;
        for (const s of services) {
          created.push(
            this.broker.createService({
              name: s.name,
              actions: Object.fromEntries(
                s.actions.map((a) => [
                  a.name,
                  {
                    ...(a.params ? { params: a.params as ActionParams } : {}),
                    ...(a.admin ? { admin: a.admin, rest: a.rest } : {}),
                    handler: (ctx: Context) => proc.call(`${s.name}.${a.name}`, ctx.params, meta(ctx.meta as object), null),
                  },
                ]),
              ),
            }),
          );
        }
        const permitted = events.filter((e) => allowed(rec.loaded?.manifest.permissions?.events, e));
        if (permitted.length) {
          created.push(
            this.broker.createService({
              name: `plugin-events.${rec.id}`,
              events: Object.fromEntries(permitted.map((e) => [e, { handler: (ctx: Context) => proc.event(e, ctx.params) }])),
            }),
          );
        }
        await this.broker.waitForServices(created.map((c) => c.name), 10_000);
        return created;
      },

      async removeProxies(rec: PluginRecord) {
        const proxies = rec.proxies;
        rec.proxies = [];
        for (const svc of proxies) await this.broker.destroyService(svc).catch(() => undefined);
      },

      /** Every request a plugin makes passes here: its manifest decides what it may touch. */
      async answer(rec: PluginRecord, msg: PluginRequest): Promise<unknown> {
        const manifest = rec.loaded!.manifest;
        if (msg.t === 'call') {
          const own = rec.proxies.some((p) => msg.action.startsWith(`${p.name}.`));
          if (!own && !allowed(manifest.permissions?.actions, msg.action)) {
            throw qiaoError('QIAO_PLUGIN_PERMISSION_DENIED', `plugin ${rec.id} may not call "${msg.action}" (not in permissions.actions of its manifest)`, { action: msg.action });
          }
          // `admin` is only ever set by the admin API: a plugin may pass on other meta, never claim to be an admin.
          const { admin: _admin, plugin: _plugin, ...meta } = (msg.meta ?? {}) as Record<string, unknown>;
          return this.broker.call(msg.action, msg.params as object, { meta: { ...meta, plugin: rec.id } });
        }
        const stream = msg.stream as DurableHook;
        if (!(stream in DURABLE_HOOK_TOPICS) || !manifest.hooks?.[stream]) {
          throw qiaoError('QIAO_PLUGIN_PERMISSION_DENIED', `plugin ${rec.id} did not declare the durable hook "${msg.stream}"`);
        }
        if (msg.t === 'read') return readEvents(db, msg.after, Math.min(msg.limit, MAX_READ), [...DURABLE_HOOK_TOPICS[stream]]);
        if (msg.op === 'get') return getCursor(db, rec.id, stream);
        return commitCursor(db, rec.id, stream, msg.position);
      },

      async stopPlugin(rec: PluginRecord, why: string) {
        if (rec.restartTimer) clearTimeout(rec.restartTimer);
        rec.restartTimer = null;
        const proc = rec.process;
        if (!proc) {
          rec.state = 'stopped';
          return;
        }
        rec.state = 'stopping';
        await this.removeProxies(rec);
        await proc.stop(STOP_GRACE_MS);
        if (rec.process === proc) rec.process = null;
        rec.state = 'stopped';
        this.logger.info(`plugin ${rec.id} stopped (${why})`);
      },

      async onExit(rec: PluginRecord, proc: PluginProcess, info: ExitInfo) {
        if (rec.process !== proc || info.expected) return;
        rec.process = null;
        await this.removeProxies(rec);
        rec.state = 'stopped';
        this.logger.warn(`plugin ${rec.id} ${info.reason}`);
        this.recordFailure(rec, info.reason);
      },

      /** Counts a crash; too many within the window and the plugin is error-disabled, else it restarts. */
      recordFailure(rec: PluginRecord, reason: string) {
        const now = Date.now();
        rec.failures = [...rec.failures.filter((f) => now - f.at < config.plugins.failureWindowMs), { at: now, reason }];
        if (rec.failures.length >= config.plugins.maxFailures) {
          const minutes = Math.round(config.plugins.failureWindowMs / 60_000);
          rec.errorDisabled = `failed ${rec.failures.length} times within ${minutes} min (last: ${reason}); enable it again once fixed`;
          this.evaluate(rec);
          return;
        }
        if (stopping || !records.has(rec.id)) return;
        const delay = Math.min(250 * 2 ** (rec.failures.length - 1), 30_000);
        rec.state = 'restarting';
        rec.restartTimer = setTimeout(() => {
          rec.restartTimer = null;
          void serial(async () => {
            if (rec.state !== 'restarting') return;
            rec.state = 'stopped';
            rec.restarts++;
            await this.reconcileOne(rec);
          });
        }, delay);
      },

      async runBeforeMessageStored(message: PendingMessage): Promise<BeforeStoredOutcome> {
        let current: PendingMessage = { ...message };
        for (const rec of records.values()) {
          const decl = rec.loaded?.manifest.hooks?.beforeMessageStored;
          if (!decl || rec.status !== 'enabled') continue;
          const timeout = decl.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
          try {
            if (!rec.process || rec.state !== 'running') throw new Error(`it is ${rec.state}`);
            const res = (await rec.process.hook('beforeMessageStored', current, timeout)) as { outcome?: string; body?: unknown; reason?: unknown } | null;
            if (res?.outcome === 'reject') {
              return { outcome: 'reject', message: current, reason: String(res.reason ?? 'rejected by a plugin').slice(0, 500), pluginId: rec.id };
            }
            if (res?.outcome === 'modify') {
              if (!res.body || typeof res.body !== 'object' || Array.isArray(res.body)) throw new Error('answered modify without an object body');
              current = { ...current, body: res.body as Record<string, unknown> };
            } else if (res?.outcome !== 'allow') {
              throw new Error(`answered ${JSON.stringify(res)?.slice(0, 100)}, not allow/modify/reject`);
            }
          } catch (err) {
            const why = (err as Error).message;
            if (decl.failPolicy === 'closed') {
              return { outcome: 'reject', message: current, reason: `plugin ${rec.id} could not check this message (${why}) and fails closed`, pluginId: rec.id };
            }
            this.logger.warn(`plugin ${rec.id} beforeMessageStored skipped (fail-open): ${why}`);
          }
        }
        return { outcome: 'allow', message: current };
      },
    },

    async started() {
      try {
        await this.broker.waitForServices(['licence'], 10_000);
        const licence = await this.broker.call<{ features?: string[] }>('licence.status');
        features = new Set(licence.features ?? []);
      } catch (err) {
        this.logger.warn(`plugins: licence unknown (${(err as Error).message}); licensed plugins stay off until it is`);
      }
      await serial(async () => {
        await this.loadAll();
        await this.reconcileAll();
      });
    },

    async stopped() {
      stopping = true;
      await serial(async () => {
        await Promise.all([...records.values()].map((r) => this.stopPlugin(r, 'core stopping')));
      });
    },
  };
}
