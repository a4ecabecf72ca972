import type { ServiceSchema } from 'moleculer';
import type { DataTypes, QueryInterface } from 'sequelize';
import type { BeforeMessageStoredResult, LoggedEvent, PendingMessage, StoredMessage } from './hooks.ts';

export type * from './manifest.ts';
export type * from './hooks.ts';
export { DURABLE_HOOK_TOPICS } from './manifest.ts';

/**
 * A plugin migration module (`migrations/0001-name.ts` exporting `up`, and `down` for `uninstall --purge`).
 * The host runs them under the plugin's id before the plugin starts; they must work on SQLite and PostgreSQL.
 */
export type PluginMigration = (params: {
  context: { qi: QueryInterface; DataTypes: typeof DataTypes; dialect: 'sqlite' | 'postgres' };
  name: string;
}) => Promise<void>;

/** The plugin API version this package describes; manifests declare a range against it. */
export const PLUGIN_API_VERSION = '1.0.0';

export interface PluginLogger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** The plugin's way to its own tables (`permissions.database` in the manifest). SQL with `?` placeholders. */
export interface PluginDatabase {
  dialect: 'sqlite' | 'postgres';
  /** Rows of a SELECT (or of an INSERT … RETURNING on PostgreSQL). */
  query<T = Record<string, unknown>>(sql: string, replacements?: unknown[]): Promise<T[]>;
  /** Runs a statement that returns no rows. */
  execute(sql: string, replacements?: unknown[]): Promise<void>;
}

/** What every plugin callback is handed. Calls leave the plugin's process and are checked against its manifest. */
export interface PluginContext<S = Record<string, unknown>> {
  pluginId: string;
  /** Validated settings, defaults filled in. A settings change restarts the plugin. */
  settings: S;
  /** A folder that belongs to this plugin alone, kept across restarts and upgrades. */
  dataDir: string;
  logger: PluginLogger;
  /** Present when the manifest asks for `permissions.database`. */
  db?: PluginDatabase;
  /** Calls a broker action (the core's, another plugin's, or one of its own); `meta` travels with the call. */
  call<T = unknown>(action: string, params?: unknown, opts?: { meta?: Record<string, unknown> }): Promise<T>;
  /** Emits a broker event (a wake-up for others, never the record of anything). */
  emit(event: string, payload?: unknown): Promise<void>;
}

export interface PluginDefinition<S = Record<string, unknown>> {
  /** Moleculer services the plugin runs; their actions become callable across the cluster. */
  services?: (ctx: PluginContext<S>) => ServiceSchema[];
  hooks?: {
    beforeMessageStored?: (message: PendingMessage, ctx: PluginContext<S>) => Promise<BeforeMessageStoredResult> | BeforeMessageStoredResult;
    /** Called once per committed message, in commit order, also for those sent while the plugin was off. */
    afterMessageStored?: (event: LoggedEvent<StoredMessage>, ctx: PluginContext<S>) => Promise<void> | void;
    onOrgChanged?: (event: LoggedEvent, ctx: PluginContext<S>) => Promise<void> | void;
  };
  /** Broker events the plugin listens to (must be listed in `permissions.events`). */
  events?: Record<string, (payload: unknown, ctx: PluginContext<S>) => Promise<void> | void>;
  start?: (ctx: PluginContext<S>) => Promise<void> | void;
  stop?: (ctx: PluginContext<S>) => Promise<void> | void;
}

/** Identity function that gives a plugin module its types: `export default definePlugin({...})`. */
export function definePlugin<S = Record<string, unknown>>(definition: PluginDefinition<S>): PluginDefinition<S> {
  return definition;
}
