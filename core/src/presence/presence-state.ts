/**
 * Who is connected, kept from what the gateways report: one entry per open client socket, grouped by the
 * gateway node that holds it, so a node that goes away takes its sockets with it. A person's presence is
 * worked out from their sockets: a device is online when any of its sockets is, away when all of them are
 * away; a person is online when any device is online, away when every connected device is away, offline
 * with no socket at all.
 *
 * External sources (another IM system beside Qiao, e.g. RTX through its bridge) add a status per person on
 * top: each source is shown as one device-like entry (`deviceType: 'external'`, `deviceId` and `source`
 * the source's name), and the best of a person's devices and sources wins (online > away > offline).
 * Every external entry carries the time it was recorded (`at`, epoch ms, stamped by the presence instance
 * that was told), so instances that hear about changes in different orders settle on the newest.
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
  /** Only on external entries: the system this status comes from (`deviceType` is then `external`). */
  source?: string;
}

export const PRESENCE_STATUSES = ['online', 'away', 'offline'] as const;
/** The device type of the entries that external sources add to a person's devices. */
export const EXTERNAL_DEVICE_TYPE = 'external';

/** What an external source says about one person, as kept and passed between presence instances. */
export interface ExternalEntry {
  userId: number;
  status: PresenceStatus;
  /** When the source was told this (epoch ms, by the presence instance that was told); newest wins. */
  at: number;
  /** ISO time this status began (unchanged while the source repeats it). */
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
export function fingerprint(p: UserPresence): string {
  return `${p.status}|${p.devices.map((d) => `${d.deviceType}/${d.deviceId}/${d.status}`).join(',')}`;
}

export class PresenceState {
  readonly #nodes = new Map<string, NodeEntry>();
  readonly #byUser = new Map<number, Map<string, PresenceConnection>>();
  /** Per external source, per person; `offline` entries are kept so an older `online` cannot come back. */
  readonly #external = new Map<string, Map<number, ExternalEntry>>();
  /** Per external source, when it was last cleared: entries recorded before that are stale. */
  readonly #clearedAt = new Map<string, number>();

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
    for (const [source, entries] of this.#external) {
      const e = entries.get(userId);
      if (e && e.status !== 'offline') devices.set(`\u0001${source}`, { deviceType: EXTERNAL_DEVICE_TYPE, deviceId: source, source, status: e.status, since: e.since });
    }
    const list = [...devices.values()].sort((a, b) => a.deviceType.localeCompare(b.deviceType) || a.deviceId.localeCompare(b.deviceId));
    const status: PresenceStatus = list.length === 0 ? 'offline' : list.some((d) => d.status === 'online') ? 'online' : 'away';
    return { userId, status, devices: list };
  }

  /** People with at least one socket open, in id order; without `includeAway`, only those not away. */
  online(includeAway = true): number[] {
    const out: number[] = [];
    for (const userId of this.#present()) {
      if (includeAway || this.user(userId).status === 'online') out.push(userId);
    }
    return out.sort((a, b) => a - b);
  }

  stats(): { users: number; online: number; away: number; connections: number; byDeviceType: Record<string, number>; bySource: Record<string, number>; nodes: number } {
    let online = 0;
    let away = 0;
    let connections = 0;
    const byDeviceType: Record<string, number> = {};
    const bySource: Record<string, number> = {};
    for (const userId of this.#present()) {
      const p = this.user(userId);
      if (p.status === 'online') online++;
      else away++;
      for (const d of p.devices) {
        byDeviceType[d.deviceType] = (byDeviceType[d.deviceType] ?? 0) + 1;
        if (d.source) bySource[d.source] = (bySource[d.source] ?? 0) + 1;
      }
    }
    for (const n of this.#nodes.values()) connections += n.connections.size;
    return { users: online + away, online, away, connections, byDeviceType, bySource, nodes: this.#nodes.size };
  }

  /**
   * Records what an external source says about these people (later entries for one person win); an entry
   * older than what is known already, or than the source's last clear, is ignored. Returns the people whose
   * presence changed.
   */
  setExternal(source: string, entries: ExternalEntry[]): UserPresence[] {
    const clearedAt = this.#clearedAt.get(source) ?? Number.NEGATIVE_INFINITY;
    const fresh = entries.filter((e) => e.at >= clearedAt);
    if (fresh.length === 0) return [];
    const before = this.#snapshot(new Set(fresh.map((e) => e.userId)));
    let mine = this.#external.get(source);
    if (!mine) this.#external.set(source, (mine = new Map()));
    for (const e of fresh) {
      const old = mine.get(e.userId);
      if (old && old.at > e.at) continue;
      // A repeated status keeps the time it began.
      mine.set(e.userId, old && old.status === e.status ? { ...e, since: old.since < e.since ? old.since : e.since } : { ...e });
    }
    return this.#changed(before);
  }

  /** Forgets what a source said up to `at` (epoch ms); returns the people whose presence changed. */
  clearExternal(source: string, at: number): UserPresence[] {
    this.#clearedAt.set(source, Math.max(at, this.#clearedAt.get(source) ?? Number.NEGATIVE_INFINITY));
    const mine = this.#external.get(source);
    if (!mine) return [];
    const stale = [...mine.values()].filter((e) => e.at <= at).map((e) => e.userId);
    const before = this.#snapshot(new Set(stale));
    for (const u of stale) mine.delete(u);
    if (mine.size === 0) this.#external.delete(source);
    return this.#changed(before);
  }

  /** Everything known from external sources, to hand to another presence instance. */
  externalState(): Array<{ source: string; clearedAt: number | null; entries: ExternalEntry[] }> {
    const sources = new Set([...this.#external.keys(), ...this.#clearedAt.keys()]);
    return [...sources].sort().map((source) => ({
      source,
      clearedAt: this.#clearedAt.get(source) ?? null,
      entries: [...(this.#external.get(source)?.values() ?? [])].map((e) => ({ ...e })),
    }));
  }

  /** People with a socket open or an external source saying they are there. */
  #present(): Set<number> {
    const out = new Set(this.#byUser.keys());
    for (const entries of this.#external.values()) for (const e of entries.values()) if (e.status !== 'offline') out.add(e.userId);
    return out;
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
