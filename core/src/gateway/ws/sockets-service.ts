import type { Context, ServiceSchema } from 'moleculer';
import { CHANGED_EVENT, RESYNC_EVENT } from '../../presence/reports.ts';
import type { SocketHub } from './hub.ts';

/**
 * The broker side of a gateway's socket hub: receives the broadcasts meant for connected clients and
 * hands them to the hub. Created with the gateway's fastify instance and destroyed with it, one per
 * gateway, so a gateway on any node pushes. The `$` keeps it out of service listings (it is plumbing of
 * the gateway service, not a service of its own); Moleculer still announces its event handlers to every
 * node, which is all broadcasts need.
 */
export function socketsService(name: string, hub: SocketHub): ServiceSchema {
  return {
    name,

    events: {
      'im.sync.wake'(ctx: Context<{ userIds?: unknown }>) {
        hub.wake(ctx.params?.userIds);
      },
      'auth.session.revoked'(ctx: Context<{ sessionId?: unknown; reason?: unknown }>) {
        hub.revoked(ctx.params?.sessionId, ctx.params?.reason);
      },
      'auth.session.wipe'(ctx: Context<{ sessionId?: unknown }>) {
        hub.wiped(ctx.params?.sessionId);
      },
      'org.changed'() {
        hub.orgChanged();
      },
      [CHANGED_EVENT](ctx: Context<unknown>) {
        hub.presenceChanged(ctx.params);
      },
      [RESYNC_EVENT](ctx: Context<{ nodeId?: unknown }>) {
        const nodeId = ctx.params?.nodeId;
        if (nodeId === undefined || nodeId === hub.reporter.reporterId) hub.reporter.snapshot();
      },
    },
  };
}
