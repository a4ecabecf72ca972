/**
 * Who is connected, kept from what the gateways report: one entry per open client socket, grouped by the
 * gateway node that holds it, so a node that goes away takes its sockets with it. A person's presence is
 * worked out from their sockets: a device is online when any of its sockets is, away when all of them are
 * away; a person is online when any device is online, away when every connected device is away, offline
 * with no socket at all.
 */

export const CONNECTION_STATUSES = ['online', 'away'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];
export type PresenceStatus = ConnectionStatus | 'offline';

/** One open client socket, as a gateway reports it. `id` is unique within its node. */
export interface PresenceConnection {
  id: string;
  userId: number;
  sessionId: number;
  deviceType: string;
  deviceId: string;
  status: ConnectionStatus;
  /** ISO time the socket connected or last changed status. */
  since: string;
}

export interface DevicePresence {
  deviceType: string;
  deviceId: string;
  status: ConnectionStatus;
  since: string;
}

export interface UserPresence {
  userId: number;
  status: PresenceStatus;
  devices: DevicePresence[];
}

interface NodeEntry {
  seenAt: number;
  connections: Map<string, PresenceConnection>;
}

const key = (nodeId: string, connectionId: string) => `${nodeId}\u0000${connectionId}`;

/** A comparable fingerprint of a person's presence, to tell whether a report changed it. */
function fingerprint(p: UserPresence): string {
  return `${p.status}|${p.devices.map((d) => `${d.deviceType}/${d.deviceId}/${d.status}`).join(',')}`;
}

export class PresenceState {
  readonly #nodes = new Map<string, NodeEntry>();
  readonly #byUser = new Map<number, Map<string, PresenceConnection>>();

  /** Applies a node's changes; returns the people whose presence changed. */
  apply(nodeId: string, upserts: PresenceConnection[], removals: string[], now = Date.now()): UserPresence[] {
    const node = this.#node(nodeId, now);
    const touched = new Set<number>([...upserts.map((c) => c.userId), ...removals.map((id) => node.connections.get(id)?.userId).filter((u): u is number => u !== undefined)]);
    const before = this.#snapshot(touched);
    for (const id of removals) this.#remove(nodeId, node, id);
    for (const c of upserts) {
      const old = node.connections.get(c.id);
      if (old && old.userId !== c.userId) this.#remove(nodeId, node, c.id);
      node.connections.set(c.id, c);
      let mine = this.#byUser.get(c.userId);
      if (!mine) this.#byUser.set(c.userId, (mine = new Map()));
      mine.set(key(nodeId, c.id), c);
    }
    return this.#changed(before);
  }

  /** Replaces everything known about a node with its full list; returns the people whose presence changed. */
  replace(nodeId: string, connections: PresenceConnection[], now = Date.now()): UserPresence[] {
    const node = this.#node(nodeId, now);
    const incoming = new Set(connections.map((c) => c.id));
    const gone = [...node.connections.keys()].filter((id) => !incoming.has(id));
    return this.apply(nodeId, connections, gone, now);
  }

  /** Forgets a node and its sockets (it stopped, crashed or stopped reporting). */
  drop(nodeId: string): UserPresence[] {
    const node = this.#nodes.get(nodeId);
    if (!node) return [];
    const changed = this.apply(nodeId, [], [...node.connections.keys()]);
    this.#nodes.delete(nodeId);
    return changed;
  }

  /** Marks a node as alive; returns how many sockets this state holds for it. */
  seen(nodeId: string, now = Date.now()): number {
    return this.#node(nodeId, now).connections.size;
  }

  /** Nodes that have not reported since `before` (epoch ms). */
  silentSince(before: number): string[] {
    return [...this.#nodes.entries()].filter(([, n]) => n.seenAt < before).map(([id]) => id);
  }

  user(userId: number): UserPresence {
    const devices = new Map<string, DevicePresence>();
    for (const c of this.#byUser.get(userId)?.values() ?? []) {
      const k = `${c.deviceType}\u0000${c.deviceId}`;
      const d = devices.get(k);
      if (!d) devices.set(k, { deviceType: c.deviceType, deviceId: c.deviceId, status: c.status, since: c.since });
      else {
        if (c.status === 'online' && d.status === 'away') Object.assign(d, { status: 'online', since: c.since });
        else if (c.status === d.status && c.since < d.since) d.since = c.since;
      }
    }
    const list = [...devices.values()].sort((a, b) => a.deviceType.localeCompare(b.deviceType) || a.deviceId.localeCompare(b.deviceId));
    const status: PresenceStatus = list.length === 0 ? 'offline' : list.some((d) => d.status === 'online') ? 'online' : 'away';
    return { userId, status, devices: list };
  }

  /** People with at least one socket open, in id order; without `includeAway`, only those not away. */
  online(includeAway = true): number[] {
    const out: number[] = [];
    for (const userId of this.#byUser.keys()) {
      if (includeAway || this.user(userId).status === 'online') out.push(userId);
    }
    return out.sort((a, b) => a - b);
  }

  stats(): { users: number; online: number; away: number; connections: number; byDeviceType: Record<string, number>; nodes: number } {
    let online = 0;
    let away = 0;
    let connections = 0;
    const byDeviceType: Record<string, number> = {};
    for (const userId of this.#byUser.keys()) {
      const p = this.user(userId);
      if (p.status === 'online') online++;
      else away++;
      for (const d of p.devices) byDeviceType[d.deviceType] = (byDeviceType[d.deviceType] ?? 0) + 1;
    }
    for (const n of this.#nodes.values()) connections += n.connections.size;
    return { users: online + away, online, away, connections, byDeviceType, nodes: this.#nodes.size };
  }

  #node(nodeId: string, now: number): NodeEntry {
    let node = this.#nodes.get(nodeId);
    if (!node) this.#nodes.set(nodeId, (node = { seenAt: now, connections: new Map() }));
    node.seenAt = Math.max(node.seenAt, now);
    return node;
  }

  #remove(nodeId: string, node: NodeEntry, connectionId: string): void {
    const c = node.connections.get(connectionId);
    if (!c) return;
    node.connections.delete(connectionId);
    const mine = this.#byUser.get(c.userId);
    mine?.delete(key(nodeId, connectionId));
    if (mine?.size === 0) this.#byUser.delete(c.userId);
  }

  #snapshot(userIds: Set<number>): Map<number, string> {
    return new Map([...userIds].map((u) => [u, fingerprint(this.user(u))]));
  }

  #changed(before: Map<number, string>): UserPresence[] {
    const out: UserPresence[] = [];
    for (const [userId, was] of before) {
      const now = this.user(userId);
      if (fingerprint(now) !== was) out.push(now);
    }
    return out;
  }
}
