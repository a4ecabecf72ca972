import type { Context, ServiceSchema } from 'moleculer';
import type { Database } from '../../core/src/db/database.ts';
import { insertUser } from '../../core/src/im/test-helpers.ts';

/** Where the process runs, so the test can tell the nodes apart by more than their names. */
function whoami(hasDb: boolean) {
  return {
    handler(this: { broker: { nodeID: string } }) {
      return { nodeID: this.broker.nodeID, pid: process.pid, hasDb };
    },
  };
}

/**
 * Runs beside the storage services: creates users (the org service that owns them does not exist yet) in
 * this process's database, so on SQLite no other process ever opens the file, and lets the test wait until
 * this node has seen the other nodes' listeners, so no wake-up is broadcast before they are known.
 */
export function storeFixture(db: Database): ServiceSchema {
  return {
    name: 'mp-store',
    actions: {
      whoami: whoami(true),
      'users.create': {
        params: { account: { type: 'string', min: 1, max: 64 } },
        async handler(ctx: Context<{ account: string }>) {
          return { id: await insertUser(db, ctx.params.account) };
        },
      },
      waitFor: {
        params: { services: { type: 'array', items: 'string' } },
        async handler(ctx: Context<{ services: string[] }>) {
          await this.broker.waitForServices(ctx.params.services, 15_000, 20);
          return { ok: true };
        },
      },
    },
  };
}

/**
 * Runs in the gateway process: sends on a caller's behalf, so the call to `im.send` starts on this node,
 * and records every `im.message.stored` wake-up that reaches it.
 */
export function probeFixture(): ServiceSchema {
  const received: unknown[] = [];
  return {
    name: 'mp-probe',
    actions: {
      whoami: whoami(false),
      send: {
        handler(ctx: Context<Record<string, unknown>>) {
          return ctx.call('im.send', ctx.params);
        },
      },
      received: {
        handler() {
          return received;
        },
      },
    },
    events: {
      'im.message.stored'(ctx: Context<unknown>) {
        received.push(ctx.params);
      },
    },
  };
}
