import type moleculer from 'moleculer';

/** Every admin API route lives under this prefix. */
export const API_PREFIX = '/api/admin';

export type AdminLevel = true | 'super';

/** One broker action an admin may call, and where the admin API mounts it. */
export interface AdminAction {
  action: string;
  admin: AdminLevel;
  /** From the action's `rest: 'METHOD /path'`; absent when the action is reachable only through `/call`. */
  route?: { method: string; path: string };
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** Parses `'POST /plugins/:id/enable'`; null when the string is not of that form. */
export function parseRest(rest: unknown): { method: string; path: string } | null {
  if (typeof rest !== 'string') return null;
  const m = /^\s*([A-Za-z]+)\s+(\/[^\s]*)\s*$/.exec(rest);
  if (!m || !METHODS.has(m[1].toUpperCase())) return null;
  const path = m[2].length > 1 ? m[2].replace(/\/+$/, '') : m[2];
  return { method: m[1].toUpperCase(), path };
}

interface ListedService {
  name: string;
  actions?: Record<string, { name?: string; admin?: unknown; rest?: unknown; visibility?: string }>;
}

/**
 * Every action the broker knows (local or on other nodes) whose definition carries `admin: true | 'super'`,
 * keyed by action name. `problems` lists definitions that ask for a route in a form we cannot mount.
 */
export function collectAdminActions(broker: moleculer.ServiceBroker): { actions: Map<string, AdminAction>; problems: string[] } {
  const services = broker.registry.getServiceList({ withActions: true, onlyAvailable: true }) as unknown as ListedService[];
  const actions = new Map<string, AdminAction>();
  const problems: string[] = [];
  for (const service of services) {
    if (service.name.startsWith('$')) continue;
    for (const [name, def] of Object.entries(service.actions ?? {})) {
      if (actions.has(name) || def.visibility === 'private' || def.visibility === 'protected') continue;
      if (def.admin !== true && def.admin !== 'super') continue;
      const source = { admin: def.admin as AdminLevel, rest: def.rest };
      const entry: AdminAction = { action: name, admin: source.admin };
      if (source.rest !== undefined) {
        const route = parseRest(source.rest);
        if (route) entry.route = route;
        else problems.push(`action "${name}" has rest "${String(source.rest)}"; expected "METHOD /path" with GET, POST, PUT, PATCH or DELETE`);
      }
      actions.set(name, entry);
    }
  }
  return { actions, problems };
}
