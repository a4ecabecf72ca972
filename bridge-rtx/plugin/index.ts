import { definePlugin, type PluginContext } from '@qiao/plugin-api';
import type { Context } from 'moleculer';
import type { CoreCall } from './accounts.ts';
import { Bridge, bridgeError, type BridgeSettings } from './bridge.ts';
import { Store } from './store.ts';

/**
 * The RTX bridge plugin (Qiao side). Its actions are the RTX 集成 page of the admin console; the agent
 * talks to it over its own port (see link-protocol.ts). One Bridge per plugin process.
 */

let bridge: Bridge | null = null;

function running(): Bridge {
  if (!bridge) throw bridgeError('QIAO_PLUGIN_UNAVAILABLE', 503, 'the RTX bridge is still starting');
  return bridge;
}

const id = { type: 'number', integer: true, positive: true, convert: true } as const;

export default definePlugin<BridgeSettings>({
  services: (ctx: PluginContext<BridgeSettings>) => [
    {
      name: 'rtxBridge',
      actions: {
        'connectionCode.create': {
          admin: true,
          rest: 'POST /rtx-bridge/connection-code',
          handler: () => running().connectionCode(),
        },
        status: {
          admin: true,
          rest: 'GET /rtx-bridge/status',
          handler: () => running().status(),
        },
        'sync.run': {
          admin: true,
          rest: 'POST /rtx-bridge/sync',
          params: { force: { type: 'boolean', optional: true, convert: true }, wait: { type: 'boolean', optional: true, convert: true } },
          async handler(c: Context<{ force?: boolean; wait?: boolean }>) {
            const b = running();
            const { id, done } = await b.startSync('admin', c.params.force ?? false);
            // wait: false — the admin console polls the history; a 100,000-person first import takes a while.
            return c.params.wait === false ? b.syncRun(id) : done;
          },
        },
        'sync.history': {
          admin: true,
          rest: 'GET /rtx-bridge/sync-runs',
          params: { limit: { type: 'number', integer: true, min: 1, max: 500, optional: true, convert: true } },
          handler: (c: Context<{ limit?: number }>) => running().syncHistory(c.params.limit ?? 50),
        },
        'relay.failures': {
          admin: true,
          rest: 'GET /rtx-bridge/failures',
          params: { limit: { type: 'number', integer: true, min: 1, max: 1000, optional: true, convert: true } },
          handler: (c: Context<{ limit?: number }>) => running().failures(c.params.limit ?? 100),
        },
        'relay.retry': {
          admin: true,
          rest: 'POST /rtx-bridge/failures/retry',
          handler: () => running().retryFailures(),
        },
        'accounts.list': {
          admin: true,
          rest: 'GET /rtx-bridge/accounts',
          params: {
            search: { type: 'string', max: 100, optional: true },
            page: { type: 'number', integer: true, min: 1, optional: true, convert: true },
            pageSize: { type: 'number', integer: true, min: 1, max: 500, optional: true, convert: true },
          },
          async handler(c: Context<{ search?: string; page?: number; pageSize?: number }>) {
            const b = running();
            const size = c.params.pageSize ?? 50;
            const offset = ((c.params.page ?? 1) - 1) * size;
            const where = c.params.search ? 'WHERE uid_key LIKE ? OR qiao_account_key LIKE ?' : '';
            const like = c.params.search ? [`%${c.params.search.toLowerCase()}%`, `%${c.params.search.toLowerCase()}%`] : [];
            const rows = await b.store.query<Record<string, unknown>>(
              `SELECT uid, qiao_account, qiao_user_id, origin, removed, updated_at FROM rtx_bridge_users ${where} ORDER BY uid_key LIMIT ? OFFSET ?`,
              [...like, size, offset],
            );
            const [{ n }] = await b.store.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM rtx_bridge_users ${where}`, like);
            return {
              total: Number(n),
              accounts: rows.map((r) => ({
                rtxAccount: r.uid,
                qiaoAccount: r.qiao_account,
                qiaoUserId: r.qiao_user_id === null ? null : Number(r.qiao_user_id),
                origin: r.origin,
                removedFromRtx: Boolean(Number(r.removed)),
                updatedAt: new Date(Number(r.updated_at)).toISOString(),
              })),
            };
          },
        },
        'accounts.map': {
          admin: true,
          rest: 'PUT /rtx-bridge/accounts/:rtxAccount',
          params: {
            rtxAccount: { type: 'string', min: 1, max: 100 },
            qiaoAccount: { type: 'string', min: 1, max: 100 },
          },
          handler: (c: Context<{ rtxAccount: string; qiaoAccount: string }>) => running().mapAccount(c.params.rtxAccount, c.params.qiaoAccount),
        },
        'agents.revoke': {
          admin: true,
          rest: 'POST /rtx-bridge/agents/revoke',
          handler: () => running().revokeAgents(),
        },
        /** For the client API: a Qiao user stores their RTX password so their replies reach RTX as themselves. */
        'credentials.set': {
          params: { userId: id, password: { type: 'string', min: 1, max: 200, nullable: true } },
          handler: (c: Context<{ userId: number; password: string | null }>) => running().setCredential(c.params.userId, c.params.password),
        },
        'presence.get': {
          params: { accounts: { type: 'array', items: { type: 'string', min: 1, max: 100 }, min: 1, max: 1000 } },
          handler: (c: Context<{ accounts: string[] }>) => ({ states: running().rtxPresence(c.params.accounts) }),
        },
      },
      async started() {
        if (!ctx.db) throw new Error('the RTX bridge needs permissions.database');
        const call: CoreCall = (action, params, meta) => this.broker.call(action, params ?? {}, { meta: meta ?? {} }) as never;
        const b = new Bridge(ctx, new Store(ctx.db), call);
        await b.start();
        bridge = b;
      },
      async stopped() {
        const b = bridge;
        bridge = null;
        await b?.stop();
      },
    },
  ],
  events: {
    // A presence instance that starts afresh (every one restarted) knows nothing RTX said: say it all again.
    'presence.resync'(payload) {
      if ((payload as { nodeId?: string } | null)?.nodeId) return;
      if (bridge) void bridge.presence.resend();
    },
  },
  hooks: {
    async afterMessageStored(event) {
      // Until the bridge is up the cursor waits here (the host retries the same message), so none is missed.
      await running().onMessageStored(event.payload);
    },
  },
});
