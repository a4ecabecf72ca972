import { randomBytes } from 'node:crypto';
import type { Context, ServiceSchema } from 'moleculer';
import { adminAction, type ServiceDeps } from '../services.ts';
import { PRESENCE_STATUSES, PresenceState, type ExternalEntry, type PresenceConnection, type PresenceStatus, type UserPresence } from './presence-state.ts';
import {
  CHANGED_EVENT,
  EXTERNAL_ENTRIES_MAX,
  EXTERNAL_EVENT,
  parseExternal,
  parseReport,
  REPORT_EVENT,
  REPORT_INTERVAL_MS,
  RESYNC_EVENT,
  SILENT_AFTER_MS,
  SNAPSHOT_PART,
  SOURCE_PATTERN,
  type ExternalMessage,
} from './reports.ts';

const id = { type: 'number', integer: true, positive: true, convert: true } as const;
const source = {
  type: 'string',
  min: 1,
  max: 40,
  pattern: SOURCE_PATTERN,
  messages: { stringPattern: "The 'source' field must be 1 to 40 lowercase letters, digits and dashes (such as rtx)" },
} as const;

/**
 * Presence (在线状态): online, away or offline, per device, from the sockets the gateways hold. It owns
 * no storage: presence is what is true now, and a restarted instance asks the gateways for the full
 * picture again. It is a core service, not a gateway one: im asks it who is online (`presence.online`,
 * for "online only" broadcasts) wherever im runs, and gateway-only processes stay plain edge nodes. Every
 * instance keeps the whole cluster's picture from the gateways' broadcasts, so any of them answers the
 * same, and each announces changes (`presence.changed`); gateways drop the repeats when several run.
 *
 * External sources (the RTX bridge: people logged in to RTX) add their own status per person through
 * `presence.external.set` / `.clear`; the instance called passes it on to the others (EXTERNAL_EVENT), and
 * hands everything it knows to an instance that joins later, as gateways hand over their sockets.
 */
export default function presenceService(_deps: ServiceDeps): ServiceSchema {
  const state = new PresenceState();
  /** Snapshot parts being collected, per node; applied as one replacement when complete. */
  const pending = new Map<string, { snapshotId: string; parts: PresenceConnection[][]; received: number }>();
  /** Tells this instance's own EXTERNAL_EVENT broadcasts apart (it applied them when called). */
  const origin = randomBytes(8).toString('hex');
  /** Sources set by plugins, by plugin id: a plugin process that dies cannot clear what it reported. */
  const pluginSources = new Map<string, Set<string>>();

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
      /**
       * What an external system (e.g. `rtx`) says about these people now; each replaces that person's
       * previous status from the same source. `offline` takes the source's entry away.
       */
      'external.set': {
        params: {
          source,
          entries: {
            type: 'array',
            max: EXTERNAL_ENTRIES_MAX,
            items: { type: 'object', strict: true, props: { userId: { ...id, convert: false }, status: { type: 'enum', values: [...PRESENCE_STATUSES] } } },
          },
        },
        handler(ctx: Context<{ source: string; entries: Array<{ userId: number; status: PresenceStatus }> }, { plugin?: string }>) {
          const plugin = ctx.meta.plugin;
          if (typeof plugin === 'string' && plugin) pluginSources.set(plugin, (pluginSources.get(plugin) ?? new Set()).add(ctx.params.source));
          const at = Date.now();
          const since = new Date(at).toISOString();
          const entries: ExternalEntry[] = ctx.params.entries.map((e) => ({ userId: e.userId, status: e.status, at, since }));
          const changed = state.setExternal(ctx.params.source, entries);
          this.notify(changed);
          this.shareSet(ctx.params.source, entries);
          return { source: ctx.params.source, changed: changed.length };
        },
      },
      /** Forgets everything an external source said (its link went down: nothing it said is known now). */
      'external.clear': {
        params: { source },
        handler(ctx: Context<{ source: string }>) {
          return { source: ctx.params.source, changed: this.clearSource(ctx.params.source) };
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
      /** A plugin's process ended (crash, stop, disable): what it reported is not known any more. */
      'plugins.process.exited'(ctx: Context<{ pluginId?: string }>) {
        const plugin = ctx.params?.pluginId;
        if (!plugin || !pluginSources.has(plugin)) return;
        for (const name of pluginSources.get(plugin)!) this.clearSource(name);
        pluginSources.delete(plugin);
      },
      [EXTERNAL_EVENT](ctx: Context<unknown>) {
        const message = parseExternal(ctx.params);
        if (!message) {
          this.logger.warn(`presence: ignored a malformed external-presence message from node ${ctx.nodeID}`);
          return;
        }
        if (message.origin === origin) return;
        if (message.kind === 'clear') {
          this.notify(state.clearExternal(message.source, message.at));
        } else {
          this.notify(state.setExternal(message.source, message.entries));
        }
      },
      /** A node that joins with a presence instance of its own learns what external sources said so far. */
      '$node.connected'(ctx: Context<{ node?: { id?: string; services?: Array<{ name?: string }> } }>) {
        const node = ctx.params?.node;
        if (!node || node.id === this.broker.nodeID || !node.services?.some((s) => s.name === 'presence')) return;
        for (const { source: name, clearedAt, entries } of state.externalState()) {
          if (clearedAt !== null) this.share({ origin, kind: 'clear', source: name, at: clearedAt });
          this.shareSet(name, entries);
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
      /** A source's entries to the other instances, in parts no larger than a gateway's snapshot part. */
      shareSet(name: string, entries: ExternalEntry[]) {
        for (let i = 0; i < entries.length; i += SNAPSHOT_PART) this.share({ origin, kind: 'set', source: name, entries: entries.slice(i, i + SNAPSHOT_PART) });
      },
      clearSource(name: string): number {
        const at = Date.now();
        const changed = state.clearExternal(name, at);
        this.notify(changed);
        this.share({ origin, kind: 'clear', source: name, at });
        return changed.length;
      },
      notify(changed: UserPresence[]) {
        for (const p of changed) {
          Promise.resolve(this.broker.broadcast(CHANGED_EVENT, p)).catch((err: Error) => this.logger.warn(`presence: announcing a change failed: ${err.message}`));
        }
      },
      /** To the other presence instances only: gateways hear the outcome as `presence.changed`. */
      share(message: ExternalMessage) {
        Promise.resolve(this.broker.broadcast(EXTERNAL_EVENT, message, { groups: ['presence'] })).catch((err: Error) => this.logger.warn(`presence: sharing external presence failed: ${err.message}`));
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
      // A new instance knows nothing yet: gateways answer with their full lists (and the instances already
      // running send what external sources said when they see this node join).
      this.resync();
    },

    stopped() {
      if (this.timer) clearInterval(this.timer);
    },
  };
}
