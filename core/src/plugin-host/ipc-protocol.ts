/**
 * Messages between the plugin host (core process) and a plugin process, over Node's IPC channel with
 * structured-clone serialisation. Every request carries an id; the answer is a `result` with the same id.
 */
import type { LoggedEvent, PluginManifest } from '@qiao/plugin-api';

export interface SerializedError {
  name: string;
  message: string;
  code?: number;
  type?: string;
  data?: unknown;
}

export interface InitMessage {
  t: 'init';
  pluginId: string;
  manifest: PluginManifest;
  mainPath: string;
  settings: Record<string, unknown>;
  dataDir: string;
  logLevel: string | false;
  /** Only for plugins whose manifest asks for `permissions.database`. */
  databaseUrl: string | null;
}

/**
 * One action a plugin offers, with the parts of its definition the platform broker needs: its param schema
 * (validated at the edge, before the call crosses into the plugin) and its admin marks (so the admin API
 * mounts it like any core action).
 */
export interface OfferedAction {
  name: string;
  params?: Record<string, unknown>;
  admin?: true | 'super';
  rest?: string;
}

/** What the plugin process offers once started. */
export interface ReadyMessage {
  t: 'ready';
  services: Array<{ name: string; actions: OfferedAction[] }>;
  hooks: string[];
  events: string[];
}

export type HostToPlugin =
  | InitMessage
  | { t: 'call'; id: number; action: string; params: unknown; meta: Record<string, unknown> }
  | { t: 'hook'; id: number; hook: 'beforeMessageStored'; payload: unknown }
  | { t: 'event'; name: string; payload: unknown }
  | { t: 'wake' }
  | { t: 'ping'; id: number }
  | { t: 'stop' }
  | { t: 'result'; id: number; ok: true; value: unknown }
  | { t: 'result'; id: number; ok: false; error: SerializedError };

/** Requests a plugin makes of the host; each is answered by a `result`. */
export type PluginRequest =
  | { t: 'call'; id: number; action: string; params: unknown; meta: Record<string, unknown> }
  | { t: 'cursor'; id: number; stream: string; op: 'get' }
  | { t: 'cursor'; id: number; stream: string; op: 'commit'; position: number }
  | { t: 'read'; id: number; stream: string; after: number; limit: number };

export type PluginToHost =
  | ReadyMessage
  | PluginRequest
  | { t: 'emit'; name: string; payload: unknown }
  | { t: 'pong'; id: number }
  | { t: 'fatal'; error: SerializedError }
  | { t: 'result'; id: number; ok: true; value: unknown }
  | { t: 'result'; id: number; ok: false; error: SerializedError };

export type { LoggedEvent };

export function serializeError(err: unknown): SerializedError {
  if (err && typeof err === 'object') {
    const e = err as { name?: string; message?: string; code?: unknown; type?: unknown; data?: unknown };
    return {
      name: String(e.name ?? 'Error'),
      message: String(e.message ?? err),
      code: typeof e.code === 'number' ? e.code : undefined,
      type: typeof e.type === 'string' ? e.type : undefined,
      // Only plain data crosses; anything structured-clone cannot copy is dropped rather than crashing IPC.
      data: safeClone(e.data),
    };
  }
  return { name: 'Error', message: String(err) };
}

function safeClone(v: unknown): unknown {
  try {
    return structuredClone(v);
  } catch {
    return undefined;
  }
}
