import type { ActionSchema, Service, ServiceSchema } from 'moleculer';
import type { QiaoConfig } from './config.ts';
import type { Database } from './db/database.ts';

/** What a core service factory is handed. `db` is null in processes that run no storage-owning service. */
export interface ServiceDeps {
  config: QiaoConfig;
  db: Database | null;
}

export interface ServiceDefinition {
  /** The Moleculer service name, also what `qiao start --services` accepts. */
  name: string;
  group: 'core' | 'gateway' | 'admin';
  needsDb: boolean;
  load(): Promise<(deps: ServiceDeps) => ServiceSchema>;
}

/**
 * Every core service, in start order. Factories are imported lazily so a gateway-only process does not load
 * the storage code, and each lives in the folder named after it.
 */
export const SERVICES: ServiceDefinition[] = [
  { name: 'system', group: 'core', needsDb: true, load: async () => (await import('./system/system.service.ts')).default },
  { name: 'org', group: 'core', needsDb: true, load: async () => (await import('./org/org.service.ts')).default },
  { name: 'licence', group: 'core', needsDb: true, load: async () => (await import('./licence/licence.service.ts')).default },
  { name: 'auth', group: 'core', needsDb: true, load: async () => (await import('./auth/auth.service.ts')).default },
  { name: 'audit', group: 'core', needsDb: true, load: async () => (await import('./audit/audit.service.ts')).default },
  { name: 'eventlog', group: 'core', needsDb: true, load: async () => (await import('./eventlog/eventlog.service.ts')).default },
  { name: 'im', group: 'core', needsDb: true, load: async () => (await import('./im/im.service.ts')).default },
  { name: 'apps', group: 'core', needsDb: true, load: async () => (await import('./openapi/apps.service.ts')).default },
  { name: 'plugins', group: 'core', needsDb: true, load: async () => (await import('./plugin-host/plugins.service.ts')).default },
  { name: 'presence', group: 'core', needsDb: false, load: async () => (await import('./presence/presence.service.ts')).default },
  { name: 'gateway', group: 'gateway', needsDb: false, load: async () => (await import('./gateway/gateway.service.ts')).default },
  { name: 'admin-api', group: 'admin', needsDb: false, load: async () => (await import('./admin-api/admin-api.service.ts')).default },
];

/** Expands `all`, group names (`core`, `gateway`, `admin`) and service names into definitions. */
export function selectServices(selection: string[]): ServiceDefinition[] {
  const wanted = new Set<string>();
  for (const item of selection) {
    if (item === 'all') SERVICES.forEach((s) => wanted.add(s.name));
    else if (SERVICES.some((s) => s.group === item)) SERVICES.filter((s) => s.group === item).forEach((s) => wanted.add(s.name));
    else if (SERVICES.some((s) => s.name === item)) wanted.add(item);
    else throw new Error(`unknown service "${item}": use all, core, gateway, admin or one of ${SERVICES.map((s) => s.name).join(', ')}`);
  }
  return SERVICES.filter((s) => wanted.has(s.name));
}

/** How an action is offered to admins: `rest` is `METHOD /path/:param`, mounted under /api/admin. */
export interface AdminActionKeys {
  /** true: any admin; 'super': super-admins only. */
  admin: true | 'super';
  rest: string;
}

type ServiceThis = Service & Record<string, any>;

/**
 * Marks an action as an admin action (reachable from the admin API and the `qiao` CLI). A function rather
 * than bare keys because Moleculer's ActionSchema type has no room for them; at run time they are plain
 * properties of the action definition, visible in the registry on every node.
 */
export function adminAction(def: ActionSchema<ServiceThis> & AdminActionKeys): ActionSchema<ServiceThis> {
  return def;
}
