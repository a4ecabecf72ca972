import { CONNECTION_STATUSES, type PresenceConnection } from './presence-state.ts';

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
/** Broadcast by a presence instance that needs the full picture: `{ nodeId? }` (absent: every node). */
export const RESYNC_EVENT = 'presence.resync';
/** Broadcast by every presence instance when someone's presence changed: a `UserPresence`. */
export const CHANGED_EVENT = 'presence.changed';

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
