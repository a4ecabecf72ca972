/**
 * Entry point of a plugin process. The host forks this file, sends `init`, and from then on the plugin's
 * services live in a broker of their own whose calls to anything outside the plugin go over IPC to the
 * host, which checks them against the manifest's permissions. Nothing the plugin does here can throw into
 * the core: the worst it can do is end this process.
 */
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import moleculer, { type ServiceSchema } from 'moleculer';
import { QueryTypes } from 'sequelize';
import { openDatabase, type Database } from '../db/database.ts';
import { DURABLE_HOOK_TOPICS, type DurableHook, type LoggedEvent, type PluginContext, type PluginDefinition } from '@qiao/plugin-api';
import { serializeError, type HostToPlugin, type InitMessage, type OfferedAction, type PluginToHost, type SerializedError } from './ipc-protocol.ts';

const REQUEST_TIMEOUT_MS = 30_000;
const IDLE_POLL_MS = 5_000;
const HANDLER_RETRY_MS = 1_000;

let nextId = 1;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
let stopping = false;
const wakeups = new Set<() => void>();

function send(msg: PluginToHost): void {
  if (process.connected) process.send!(msg);
}

function toError(e: SerializedError): Error {
  const err = new moleculer.Errors.MoleculerError(e.message, e.code ?? 500, e.type ?? 'PLUGIN_HOST_ERROR', e.data);
  err.name = e.name;
  return err;
}

/** A request to the host; `msg` without `id`, which is filled in here. */
function request<T>(msg: Record<string, unknown> & { t: string }): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`host did not answer ${msg.t} within ${REQUEST_TIMEOUT_MS} ms`));
    }, REQUEST_TIMEOUT_MS);
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
    send({ ...msg, id } as unknown as PluginToHost);
  });
}

function plain(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

function waitForWake(ms: number): Promise<void> {
  // A stop that came while a read was in flight has already woken everyone: do not sleep past it.
  if (stopping) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      wakeups.delete(done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    wakeups.add(done);
  });
}

/** Reads a durable stream from the host's cursor onwards, one event at a time, committing after each. */
async function consume(stream: DurableHook, handler: (e: LoggedEvent) => unknown, logger: ReturnType<moleculer.ServiceBroker['getLogger']>): Promise<void> {
  let cursor = await request<number>({ t: 'cursor', op: 'get', stream });
  while (!stopping) {
    const events = await request<LoggedEvent[]>({ t: 'read', stream, after: cursor, limit: 100 });
    if (events.length === 0) {
      await waitForWake(IDLE_POLL_MS);
      continue;
    }
    for (const event of events) {
      if (stopping) return;
      // A failing handler is retried on the same event: skipping it would leave a gap for good.
      for (;;) {
        try {
          await handler(event);
          break;
        } catch (err) {
          logger.error(`${stream} handler failed on seq ${event.seq}; retrying`, err);
          await waitForWake(HANDLER_RETRY_MS);
          if (stopping) return;
        }
      }
      cursor = event.seq;
      await request({ t: 'cursor', op: 'commit', stream, position: cursor });
    }
  }
}

async function main(init: InitMessage): Promise<void> {
  const mod = (await import(pathToFileURL(init.mainPath).href)) as { default?: PluginDefinition };
  const definition = mod.default;
  if (!definition || typeof definition !== 'object') throw new Error(`${init.mainPath} has no default export from definePlugin()`);

  const localActions = new Set<string>();
  const bridge: moleculer.Middleware = {
    name: 'QiaoPluginBridge',
    call(next: moleculer.CallMiddlewareHandler) {
      return ((actionName: string, params: unknown, opts: moleculer.CallingOptions = {}) => {
        if (localActions.has(actionName) || actionName.startsWith('$node.')) return next(actionName, params, opts);
        return request({ t: 'call', action: actionName, params: plain(params), meta: (plain(opts.meta) ?? {}) as Record<string, unknown> });
      }) as moleculer.CallMiddlewareHandler;
    },
    emit(next: (event: string, payload: unknown, opts: unknown) => Promise<void>) {
      return (event: string, payload: unknown, opts: unknown) => {
        send({ t: 'emit', name: event, payload: plain(payload) });
        return next(event, payload, opts);
      };
    },
  } as unknown as moleculer.Middleware;

  const broker = new moleculer.ServiceBroker({
    nodeID: `plugin-${init.pluginId}-${process.pid}`,
    namespace: 'qiao-plugin',
    logger: init.logLevel === false ? false : { type: 'Console', options: { level: init.logLevel, formatter: 'short' } },
    middlewares: [bridge],
  });
  const logger = broker.getLogger('plugin', { id: init.pluginId });
  fs.mkdirSync(init.dataDir, { recursive: true });
  const db: Database | null = init.databaseUrl ? openDatabase(init.databaseUrl, { poolMax: 3 }) : null;
  const ctx: PluginContext = {
    pluginId: init.pluginId,
    settings: init.settings,
    dataDir: init.dataDir,
    logger,
    db: db
      ? {
          dialect: db.dialect,
          query: <T>(sql: string, replacements: unknown[] = []) => db.sequelize.query(sql, { replacements, type: QueryTypes.SELECT }) as unknown as Promise<T[]>,
          execute: async (sql: string, replacements: unknown[] = []) => {
            await db.sequelize.query(sql, { replacements });
          },
        }
      : undefined,
    call: <T>(action: string, params?: unknown, opts?: { meta?: Record<string, unknown> }) =>
      broker.call(action, params as Record<string, unknown>, opts?.meta ? { meta: opts.meta } : undefined) as Promise<T>,
    emit: async (event: string, payload?: unknown) => {
      await broker.emit(event, payload);
    },
  };

  const schemas: ServiceSchema[] = definition.services ? definition.services(ctx) : [];
  for (const schema of schemas) {
    const svc = broker.createService(schema);
    for (const action of Object.keys(schema.actions ?? {})) localActions.add(`${svc.fullName}.${action}`);
  }

  process.on('message', (raw: HostToPlugin) => {
    if (raw.t === 'call') {
      broker
        .call(raw.action, raw.params as Record<string, unknown>, { meta: raw.meta })
        .then((value) => send({ t: 'result', id: raw.id, ok: true, value: plain(value) }))
        .catch((err) => send({ t: 'result', id: raw.id, ok: false, error: serializeError(err) }));
    } else if (raw.t === 'hook') {
      const hook = definition.hooks?.beforeMessageStored;
      Promise.resolve()
        .then(() => {
          if (!hook) throw new Error('plugin does not implement beforeMessageStored');
          return hook(raw.payload as Parameters<typeof hook>[0], ctx);
        })
        .then((value) => send({ t: 'result', id: raw.id, ok: true, value: plain(value) }))
        .catch((err) => send({ t: 'result', id: raw.id, ok: false, error: serializeError(err) }));
    } else if (raw.t === 'event') {
      const handler = definition.events?.[raw.name];
      if (handler) Promise.resolve(handler(raw.payload, ctx)).catch((err) => logger.error(`event ${raw.name} handler failed`, err));
    }
  });

  await broker.start();
  await definition.start?.(ctx);

  const consumers: Promise<void>[] = [];
  for (const stream of Object.keys(DURABLE_HOOK_TOPICS) as DurableHook[]) {
    const handler = definition.hooks?.[stream] as ((e: LoggedEvent, c: PluginContext) => unknown) | undefined;
    if (handler && init.manifest.hooks?.[stream]) {
      consumers.push(consume(stream, (e) => handler(e, ctx), logger).catch((err) => fatal(err)));
    }
  }

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    wakeups.forEach((w) => w());
    await Promise.allSettled(consumers);
    await definition.stop?.(ctx);
    await broker.stop();
    await db?.close();
    process.exit(0);
  };
  process.on('message', (raw: HostToPlugin) => {
    if (raw.t === 'stop') stop().catch((err) => fatal(err));
  });

  send({
    t: 'ready',
    services: schemas.map((s) => ({ name: s.name, actions: Object.entries(s.actions ?? {}).map(([name, def]) => offered(name, def)) })),
    hooks: Object.keys(definition.hooks ?? {}),
    events: Object.keys(definition.events ?? {}),
  });
}

/** The cloneable parts of an action definition (a bare handler function has none). */
function offered(name: string, def: unknown): OfferedAction {
  if (!def || typeof def !== 'object') return { name };
  const d = def as { params?: unknown; admin?: unknown; rest?: unknown };
  const out: OfferedAction = { name };
  if (d.params && typeof d.params === 'object') out.params = plain(d.params) as Record<string, unknown>;
  if (d.admin === true || d.admin === 'super') out.admin = d.admin;
  if (typeof d.rest === 'string') out.rest = d.rest;
  return out;
}

function fatal(err: unknown): void {
  send({ t: 'fatal', error: serializeError(err) });
  // Give the IPC message a moment to leave before the process ends.
  setTimeout(() => process.exit(1), 50);
}

process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
// The host went away: a plugin must never outlive the core that started it.
process.on('disconnect', () => process.exit(0));

process.on('message', (raw: HostToPlugin) => {
  switch (raw.t) {
    case 'init':
      main(raw).catch(fatal);
      break;
    case 'result': {
      const p = pending.get(raw.id);
      if (!p) return;
      pending.delete(raw.id);
      clearTimeout(p.timer);
      if (raw.ok) p.resolve(raw.value);
      else p.reject(toError(raw.error));
      break;
    }
    case 'ping':
      send({ t: 'pong', id: raw.id });
      break;
    case 'wake':
      wakeups.forEach((w) => w());
      break;
    default:
      break;
  }
});
