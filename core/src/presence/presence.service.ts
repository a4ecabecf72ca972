import type { Context, ServiceSchema } from 'moleculer';
import { adminAction, type ServiceDeps } from '../services.ts';
import { PresenceState, type PresenceConnection, type UserPresence } from './presence-state.ts';
import { CHANGED_EVENT, parseReport, REPORT_EVENT, REPORT_INTERVAL_MS, RESYNC_EVENT, SILENT_AFTER_MS } from './reports.ts';

const id = { type: 'number', integer: true, positive: true, convert: true } as const;

/**
 * Presence (在线状态): online, away or offline, per device, from the sockets the gateways hold. It owns
 * no storage: presence is what is true now, and a restarted instance asks the gateways for the full
 * picture again. It is a core service, not a gateway one: im asks it who is online (`presence.online`,
 * for "online only" broadcasts) wherever im runs, and gateway-only processes stay plain edge nodes. Every
 * instance keeps the whole cluster's picture from the gateways' broadcasts, so any of them answers the
 * same, and each announces changes (`presence.changed`); gateways drop the repeats when several run.
 */
export default function presenceService(_deps: ServiceDeps): ServiceSchema {
  const state = new PresenceState();
  /** Snapshot parts being collected, per node; applied as one replacement when complete. */
  const pending = new Map<string, { snapshotId: string; parts: PresenceConnection[][]; received: number }>();

  return {
    name: 'presence',

    actions: {
      /** Ids of the people connected now; `includeAway: false` leaves out those whose every device is away. */
      online: {
        params: { includeAway: { type: 'boolean', optional: true, convert: true } },
        handler(ctx: Context<{ includeAway?: boolean }>) {
          return { userIds: state.online(ctx.params.includeAway ?? true) };
        },
      },
      /** Presence of the people named, each with their connected devices. */
      get: {
        params: { userIds: { type: 'array', items: id, min: 1, max: 1000 } },
        handler(ctx: Context<{ userIds: number[] }>): { users: UserPresence[] } {
          return { users: [...new Set(ctx.params.userIds)].map((u) => state.user(u)) };
        },
      },
      stats: adminAction({
        admin: true,
        rest: 'GET /presence',
        handler() {
          return state.stats();
        },
      }),
    },

    events: {
      [REPORT_EVENT](ctx: Context<unknown>) {
        const report = parseReport(ctx.params);
        if (!report) {
          this.logger.warn(`presence: ignored a malformed report from node ${ctx.nodeID}`);
          return;
        }
        if (report.kind === 'heartbeat') {
          // A count that disagrees means a report was lost (or this instance is new): ask for the full list.
          if (state.seen(report.nodeId) !== report.count && !pending.has(report.nodeId)) this.resync(report.nodeId);
          return;
        }
        if (report.kind === 'delta') {
          this.notify(state.apply(report.nodeId, report.upserts, report.removals));
          return;
        }
        let collecting = pending.get(report.nodeId);
        if (!collecting || collecting.snapshotId !== report.snapshotId || collecting.parts.length !== report.parts) {
          collecting = { snapshotId: report.snapshotId, parts: new Array(report.parts), received: 0 };
          pending.set(report.nodeId, collecting);
        }
        if (!collecting.parts[report.part]) collecting.received++;
        collecting.parts[report.part] = report.connections;
        if (collecting.received === report.parts) {
          pending.delete(report.nodeId);
          this.notify(state.replace(report.nodeId, collecting.parts.flat()));
        }
      },
      '$node.disconnected'(ctx: Context<{ node?: { id?: string } }>) {
        const nodeId = ctx.params?.node?.id;
        if (nodeId) {
          pending.delete(nodeId);
          this.notify(state.drop(nodeId));
        }
      },
    },

    methods: {
      notify(changed: UserPresence[]) {
        for (const p of changed) {
          Promise.resolve(this.broker.broadcast(CHANGED_EVENT, p)).catch((err: Error) => this.logger.warn(`presence: announcing a change failed: ${err.message}`));
        }
      },
      resync(nodeId?: string) {
        Promise.resolve(this.broker.broadcast(RESYNC_EVENT, nodeId ? { nodeId } : {})).catch((err: Error) => this.logger.warn(`presence: resync request failed: ${err.message}`));
      },
      sweep() {
        for (const nodeId of state.silentSince(Date.now() - SILENT_AFTER_MS)) {
          this.logger.info(`presence: node ${nodeId} stopped reporting; its sockets count as closed`);
          pending.delete(nodeId);
          this.notify(state.drop(nodeId));
        }
      },
    },

    created() {
      this.timer = null;
    },

    started() {
      this.timer = setInterval(() => this.sweep(), REPORT_INTERVAL_MS);
      this.timer.unref?.();
      // A new instance knows nothing yet: gateways answer with their full lists.
      this.resync();
    },

    stopped() {
      if (this.timer) clearInterval(this.timer);
    },
  };
}
