import { CONNECTION_STATUSES, PRESENCE_STATUSES, type ExternalEntry, type PresenceConnection } from './presence-state.ts';

/**
 * What gateways tell the presence service, as broker broadcasts (every presence instance keeps the whole
 * picture, so `presence.online` answers the same wherever it is called):
 *
 * - `delta`: sockets opened, changed or closed since the last report (batched per tick);
 * - `snapshot`: every socket the node holds, in parts of at most SNAPSHOT_PART, sent back to back, when a
 *   presence instance asks (`presence.resync`) or a heartbeat count disagrees;
 * - `heartbeat`: every REPORT_INTERVAL_MS, how many sockets the node holds. A node silent for
 *   SILENT_AFTER_MS is dropped, so a crashed gateway's people go offline even without a disconnect event.
 */
export const REPORT_EVENT = 'presence.report';
/**
 * Broadcast by a presence instance that needs the full picture: `{ nodeId? }` (absent: every node). Without
 * `nodeId` it also concerns external sources: an instance that starts while no other runs knows nothing of
 * what they said, so a source should then send its whole list again (`presence.external.set`).
 */
export const RESYNC_EVENT = 'presence.resync';
/** Broadcast by every presence instance when someone's presence changed: a `UserPresence`. */
export const CHANGED_EVENT = 'presence.changed';

/**
 * Between presence instances only (broadcast to the `presence` group): what external sources said, so that
 * every instance shows the same whichever one the source called. `set` and `clear` follow each call, and when a
 * node running presence joins, the instances there already send everything they know, as the same `clear`
 * and `set` messages (at most SNAPSHOT_PART entries each). Entries carry their time, so late,
 * reordered or repeated messages are harmless: the newest entry wins everywhere.
 */
export const EXTERNAL_EVENT = 'presence.external';

export const REPORT_INTERVAL_MS = 20_000;
export const SILENT_AFTER_MS = 3 * REPORT_INTERVAL_MS;
/** Keeps one snapshot part well under NATS's default 1 MiB message limit. */
export const SNAPSHOT_PART = 2_000;

export type PresenceReport =
  | { nodeId: string; kind: 'delta'; upserts: PresenceConnection[]; removals: string[] }
  | { nodeId: string; kind: 'snapshot'; snapshotId: string; part: number; parts: number; connections: PresenceConnection[] }
  | { nodeId: string; kind: 'heartbeat'; count: number };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
const isText = (v: unknown, max: number) => typeof v === 'string' && v.length > 0 && v.length <= max;

function isConnection(v: unknown): v is PresenceConnection {
  return (
    isObject(v) &&
    isText(v.id, 100) &&
    isId(v.userId) &&
    isId(v.sessionId) &&
    isText(v.deviceType, 32) &&
    isText(v.deviceId, 128) &&
    (CONNECTION_STATUSES as readonly unknown[]).includes(v.status) &&
    isText(v.since, 40)
  );
}

/**
 * Checks a report off the wire. Events have no caller to answer, so a malformed one is refused here
 * (and logged by the caller) rather than half applied.
 */
export function parseReport(v: unknown): PresenceReport | null {
  if (!isObject(v) || !isText(v.nodeId, 200)) return null;
  const nodeId = v.nodeId as string;
  if (v.kind === 'heartbeat') return Number.isSafeInteger(v.count) && (v.count as number) >= 0 ? { nodeId, kind: 'heartbeat', count: v.count as number } : null;
  if (v.kind === 'delta') {
    if (!Array.isArray(v.upserts) || !Array.isArray(v.removals)) return null;
    if (!v.upserts.every(isConnection) || !v.removals.every((r) => isText(r, 100))) return null;
    return { nodeId, kind: 'delta', upserts: v.upserts, removals: v.removals as string[] };
  }
  if (v.kind === 'snapshot') {
    const { part, parts } = v as { part: unknown; parts: unknown };
    if (!isText(v.snapshotId, 100) || !Number.isSafeInteger(part) || !Number.isSafeInteger(parts)) return null;
    if ((part as number) < 0 || (parts as number) < 1 || (part as number) >= (parts as number)) return null;
    if (!Array.isArray(v.connections) || !v.connections.every(isConnection)) return null;
    return { nodeId, kind: 'snapshot', snapshotId: v.snapshotId as string, part: part as number, parts: parts as number, connections: v.connections };
  }
  return null;
}

/** An external source's name: what `presence.external.set` accepts and what clients see as `source`. */
export const SOURCE_PATTERN = /^[a-z0-9-]{1,40}$/;
export const EXTERNAL_ENTRIES_MAX = 10_000;

export type ExternalMessage =
  | { origin: string; kind: 'set'; source: string; entries: ExternalEntry[] }
  | { origin: string; kind: 'clear'; source: string; at: number };

function isExternalEntry(v: unknown): v is ExternalEntry {
  return (
    isObject(v) &&
    isId(v.userId) &&
    (PRESENCE_STATUSES as readonly unknown[]).includes(v.status) &&
    typeof v.at === 'number' &&
    Number.isFinite(v.at) &&
    isText(v.since, 40)
  );
}

/** Checks a message between presence instances, like `parseReport`. */
export function parseExternal(v: unknown): ExternalMessage | null {
  if (!isObject(v) || !isText(v.origin, 300)) return null;
  const origin = v.origin as string;
  if (typeof v.source !== 'string' || !SOURCE_PATTERN.test(v.source)) return null;
  if (v.kind === 'clear') return typeof v.at === 'number' && Number.isFinite(v.at) ? { origin, kind: 'clear', source: v.source, at: v.at } : null;
  if (v.kind === 'set') {
    if (!Array.isArray(v.entries) || v.entries.length > EXTERNAL_ENTRIES_MAX || !v.entries.every(isExternalEntry)) return null;
    return { origin, kind: 'set', source: v.source, entries: v.entries };
  }
  return null;
}
