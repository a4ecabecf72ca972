import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory that holds package.json, plugins.json and (by default) data/. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The plugin API version the core implements; plugin manifests declare a semver range against it. */
export { PLUGIN_API_VERSION } from '@qiao/plugin-api';

export interface QiaoConfig {
  /** Where relative paths in this config are resolved from. */
  root: string;
  dataDir: string;
  /** Uploaded files and images (content-addressed); on a disk with room for the retention period. */
  filesDir: string;
  /** `sqlite:<file>` (default, under dataDir) or `postgres://…`. */
  databaseUrl: string;
  /** Moleculer transporter URL (e.g. `nats://127.0.0.1:4222`); none runs everything in one process. */
  transporter: string | null;
  nodeId: string;
  /** Which service groups this process runs; see `core/src/services.ts`. */
  services: string[];
  gateway: { host: string; port: number };
  admin: { host: string; port: number };
  pluginsFile: string;
  /** Where installed plugin packages go when installed from a tarball or an npm spec. */
  pluginInstallDir: string;
  licenceFile: string;
  /**
   * Files of extra Ed25519 public keys (PEM) trusted to sign licences, on top of the vendor keys in
   * core/keys/. Meant for vendors' own test rigs; production sites leave it empty.
   */
  licenceTrustedKeyFiles: string[];
  /** cron expression for the live licence re-check. */
  licenceCheckCron: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | false;
  /** Company created on first start. */
  companyName: string;
  /** Limits of the client WebSocket (`QIAO_WS_…`). */
  ws: WsConfig;
  plugins: {
    /** Liveness ping interval for plugin processes, ms. */
    heartbeatMs: number;
    /** A plugin process that misses a ping this long is killed and counted as a failure. */
    heartbeatTimeoutMs: number;
    /** Failures within `failureWindowMs` that turn a plugin `error-disabled`. */
    maxFailures: number;
    failureWindowMs: number;
    /** Start plugin processes on boot (off for maintenance commands that only edit state). */
    autostart: boolean;
  };
}

// ---- the client WebSocket (/v1/ws) ---------------------------------------------------------------------

/** Limits of the client WebSocket, per gateway; see core/src/gateway/ws. */
export interface WsConfig {
  /** Server ping interval; a socket that has not answered the previous ping is dropped. */
  heartbeatMs: number;
  /** How long an unauthenticated socket may stay open waiting for its auth frame. */
  authTimeoutMs: number;
  /** Frames larger than this are refused with an error frame (the socket stays open). */
  maxFrameBytes: number;
  /** Frames larger than this close the socket (1009) before they are even read. */
  hardMaxFrameBytes: number;
  /** Token bucket per socket: this many frames at once… */
  burst: number;
  /** …refilled at this rate. */
  perSecond: number;
  /** Refused frames within `abuseWindowMs` after which the socket is closed (1008). */
  abuseRefusals: number;
  abuseWindowMs: number;
  /** Each socket's token is checked again this often, in case a revocation event was lost. */
  recheckMs: number;
  /** `im.sync.heads` calls in flight at once when wake-ups reach many people. */
  wakeConcurrency: number;
  /** People one `watch` frame may name (presence answers at most 1,000 at once). */
  watchLimit: number;
}

export const WS_DEFAULTS: WsConfig = {
  heartbeatMs: 30_000,
  authTimeoutMs: 10_000,
  maxFrameBytes: 16 * 1024,
  hardMaxFrameBytes: 1024 * 1024,
  burst: 30,
  perSecond: 10,
  abuseRefusals: 100,
  abuseWindowMs: 10_000,
  recheckMs: 5 * 60_000,
  wakeConcurrency: 32,
  watchLimit: 500,
};

/** The environment variable behind each WebSocket limit. */
export const WS_ENV: Record<keyof WsConfig, string> = {
  heartbeatMs: 'QIAO_WS_HEARTBEAT_MS',
  authTimeoutMs: 'QIAO_WS_AUTH_TIMEOUT_MS',
  maxFrameBytes: 'QIAO_WS_MAX_FRAME_BYTES',
  hardMaxFrameBytes: 'QIAO_WS_HARD_MAX_FRAME_BYTES',
  burst: 'QIAO_WS_RATE_BURST',
  perSecond: 'QIAO_WS_RATE_PER_SECOND',
  abuseRefusals: 'QIAO_WS_ABUSE_REFUSALS',
  abuseWindowMs: 'QIAO_WS_ABUSE_WINDOW_MS',
  recheckMs: 'QIAO_WS_TOKEN_RECHECK_MS',
  wakeConcurrency: 'QIAO_WS_WAKE_CONCURRENCY',
  watchLimit: 'QIAO_WS_WATCH_LIMIT',
};

/** Bounds that keep a mistyped value from disabling a limit or stalling every socket. */
const WS_BOUNDS: Record<keyof WsConfig, [min: number, max: number]> = {
  heartbeatMs: [1000, 3_600_000],
  authTimeoutMs: [100, 600_000],
  maxFrameBytes: [256, 64 * 1024 * 1024],
  hardMaxFrameBytes: [256, 64 * 1024 * 1024],
  burst: [1, 100_000],
  perSecond: [1, 100_000],
  abuseRefusals: [1, 1_000_000],
  abuseWindowMs: [100, 3_600_000],
  recheckMs: [1000, 86_400_000],
  wakeConcurrency: [1, 1000],
  watchLimit: [1, 1000],
};

/** Reads the WebSocket limits from `QIAO_WS_…`; a bad value stops startup with the variable named. */
export function loadWsConfig(env: NodeJS.ProcessEnv): WsConfig {
  const out = { ...WS_DEFAULTS };
  for (const key of Object.keys(WS_ENV) as Array<keyof WsConfig>) {
    const name = WS_ENV[key];
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const n = Number(raw.trim());
    const [min, max] = WS_BOUNDS[key];
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`config: ${name} must be a whole number from ${min} to ${max} (default ${WS_DEFAULTS[key]}), got "${raw}"`);
    }
    out[key] = n;
  }
  if (out.maxFrameBytes > out.hardMaxFrameBytes) {
    throw new Error(`config: ${WS_ENV.maxFrameBytes} (${out.maxFrameBytes}) must not exceed ${WS_ENV.hardMaxFrameBytes} (${out.hardMaxFrameBytes})`);
  }
  return out;
}

export type ConfigOverrides = Partial<Omit<QiaoConfig, 'gateway' | 'admin' | 'plugins' | 'ws'>> & {
  ws?: Partial<QiaoConfig['ws']>;
  gateway?: Partial<QiaoConfig['gateway']>;
  admin?: Partial<QiaoConfig['admin']>;
  plugins?: Partial<QiaoConfig['plugins']>;
};

function int(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`config: ${name} must be a non-negative integer, got "${value}"`);
  return n;
}

function list(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** Reads the configuration from the environment; every setting has a working default. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): QiaoConfig {
  const root = overrides.root ?? env.QIAO_ROOT ?? PROJECT_ROOT;
  const dataDir = path.resolve(root, overrides.dataDir ?? env.QIAO_DATA_DIR ?? 'data');
  const logLevel = (env.QIAO_LOG_LEVEL ?? 'info') as QiaoConfig['logLevel'];
  const base: QiaoConfig = {
    root,
    dataDir,
    filesDir: path.resolve(dataDir, env.QIAO_FILES_DIR ?? 'files'),
    databaseUrl: env.DATABASE_URL || `sqlite:${path.join(dataDir, 'qiao.sqlite')}`,
    transporter: env.TRANSPORTER || null,
    nodeId: env.QIAO_NODE_ID || `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    services: env.QIAO_SERVICES ? list(env.QIAO_SERVICES) : ['all'],
    gateway: { host: env.QIAO_HOST ?? '0.0.0.0', port: int(env.QIAO_GATEWAY_PORT, 7080, 'QIAO_GATEWAY_PORT') },
    admin: { host: env.QIAO_ADMIN_HOST ?? '0.0.0.0', port: int(env.QIAO_ADMIN_PORT, 7003, 'QIAO_ADMIN_PORT') },
    pluginsFile: path.resolve(root, env.QIAO_PLUGINS_FILE ?? 'plugins.json'),
    pluginInstallDir: path.resolve(dataDir, 'plugins'),
    licenceFile: path.resolve(dataDir, env.QIAO_LICENCE_FILE ?? 'licence.json'),
    licenceTrustedKeyFiles: list(env.QIAO_LICENCE_TRUSTED_KEYS).map((f) => path.resolve(root, f)),
    licenceCheckCron: env.QIAO_LICENCE_CHECK_CRON ?? '* * * * *',
    logLevel: (logLevel as string) === 'off' ? false : logLevel,
    companyName: env.QIAO_COMPANY_NAME ?? 'My Company',
    ws: loadWsConfig(env),
    plugins: {
      heartbeatMs: int(env.QIAO_PLUGIN_HEARTBEAT_MS, 5000, 'QIAO_PLUGIN_HEARTBEAT_MS'),
      heartbeatTimeoutMs: int(env.QIAO_PLUGIN_HEARTBEAT_TIMEOUT_MS, 15000, 'QIAO_PLUGIN_HEARTBEAT_TIMEOUT_MS'),
      maxFailures: int(env.QIAO_PLUGIN_MAX_FAILURES, 3, 'QIAO_PLUGIN_MAX_FAILURES'),
      failureWindowMs: int(env.QIAO_PLUGIN_FAILURE_WINDOW_MS, 3_600_000, 'QIAO_PLUGIN_FAILURE_WINDOW_MS'),
      autostart: true,
    },
  };
  return {
    ...base,
    ...overrides,
    root,
    dataDir,
    gateway: { ...base.gateway, ...overrides.gateway },
    admin: { ...base.admin, ...overrides.admin },
    plugins: { ...base.plugins, ...overrides.plugins },
    ws: { ...base.ws, ...overrides.ws },
  };
}
