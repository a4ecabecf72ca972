/** JSON Schema (draft 2020-12 subset that ajv understands) for a plugin's settings. */
export type JsonSchema = Record<string, unknown>;

/** What a hook does when the plugin fails, times out or is not running: let the message through, or stop it. */
export type FailPolicy = 'open' | 'closed';

export interface HookDeclaration {
  /** Longest the core waits for this plugin's answer, ms (1–10000, default 1000). */
  timeoutMs?: number;
  /** Default 'open': a broken plugin must not stop people from talking unless it says it must. */
  failPolicy?: FailPolicy;
}

/** The contents of a plugin package's `plugin.json`. */
export interface PluginManifest {
  /** Reverse-DNS id, unique across all plugins (`com.acme.keyword-alert`). */
  id: string;
  name: string;
  /** The plugin's own version, semver. */
  version: string;
  description?: string;
  /** Module that default-exports `definePlugin(...)`, relative to the package folder. */
  main: string;
  /** Semver range of the core plugin API this plugin works with (`^1.0.0`). */
  pluginApi: string;
  /** Licence feature key this plugin needs; omitted for plugins that need none. */
  licenceFeature?: string;
  /** JSON Schema for the plugin's settings; defaults in it fill missing values. */
  settingsSchema?: JsonSchema;
  /**
   * What the plugin may touch through the broker. Patterns match whole dotted names; `*` matches one
   * segment or the rest (`im.messages.*`). Its own services are always allowed.
   */
  permissions?: {
    /** Broker actions it may call. */
    actions?: string[];
    /** Broker events it may receive. */
    events?: string[];
    /** Broker events it may emit. */
    emits?: string[];
    /**
     * A connection to the platform database for the plugin's own tables (made by its `migrations`).
     * Shown to the admin as a permission because the connection is not confined to those tables.
     */
    database?: boolean;
  };
  hooks?: {
    beforeMessageStored?: HookDeclaration;
    /** Durable: every committed message, in order, once, by cursor. */
    afterMessageStored?: Record<string, never>;
    /** Durable: every committed org change, in order, once, by cursor. */
    onOrgChanged?: Record<string, never>;
  };
  /** Folder of the plugin's own migrations (`0001-name.js|ts`), relative to the package folder. */
  migrations?: string;
  /** Limits for the plugin's process. */
  resources?: { maxMemoryMb?: number };
}

/** Durable streams a plugin can consume, and the event-log topics each covers. */
export const DURABLE_HOOK_TOPICS = {
  afterMessageStored: ['message.*'],
  onOrgChanged: ['org.*'],
} as const;

export type DurableHook = keyof typeof DURABLE_HOOK_TOPICS;
