import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QiaoClient, type SyncItem } from '@qiao/client';
import { forEachDatabase } from '../../../../test/support/databases.ts';
import { startQiao, type QiaoApp } from '../../app.ts';
import { PASSWORD, SUPER } from '../../auth/test-kit.ts';
import { loadConfig } from '../../config.ts';
import { until } from '../client/test-kit.ts';

/**
 * The gateway on nodes of its own: one node owns storage and runs the core services, two others run only
 * a gateway each, joined by Moleculer's in-process transporter. Wake-ups and presence cross nodes as
 * broker broadcasts, so a message sent through one gateway is pushed by the other.
 */
forEachDatabase('client sockets across nodes', ({ url }) => {
  const tag = randomBytes(3).toString('hex');
  const dirs: string[] = [];
  let core: QiaoApp;
  let edgeB: QiaoApp;
  let edgeC: QiaoApp;

  async function node(name: string, services: string[], databaseUrl?: string): Promise<QiaoApp> {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `qiao-cluster-${name}-`));
    dirs.push(dataDir);
    return startQiao(
      loadConfig(process.env, {
        dataDir,
        ...(databaseUrl ? { databaseUrl } : {}),
        nodeId: `${name}-${tag}`,
        transporter: 'Fake',
        logLevel: false,
        gateway: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: 0 },
        pluginsFile: path.join(dataDir, 'plugins.json'),
        services,
      }),
    );
  }
  const base = async (app: QiaoApp) => (await app.broker.call<{ url: string }, object>('gateway.address', {}, { nodeID: app.broker.nodeID })).url;

  before(async function () {
    this.timeout(60_000);
    core = await node('core', ['system', 'eventlog', 'org', 'licence', 'auth', 'audit', 'im', 'presence'], url());
    [edgeB, edgeC] = [await node('edge-b', ['gateway']), await node('edge-c', ['gateway'])];
    for (const edge of [edgeB, edgeC]) await edge.broker.waitForServices(['auth', 'im', 'presence', 'org'], 20_000);
    await core.broker.waitForServices(['gateway'], 20_000);
  });
  after(async () => {
    for (const app of [edgeC, edgeB, core]) await app?.stop().catch(() => undefined);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('pushes through a gateway on one node what was sent through a gateway on another, and tracks presence across them', async function () {
    this.timeout(30_000);
    const ids: Record<string, number> = {};
    for (const account of ['alice', 'bob']) {
      ids[account] = (await core.broker.call<{ id: number }, object>('org.users.create', { account, name: account }, { meta: SUPER })).id;
      await core.broker.call('auth.users.setPassword', { userId: ids[account], password: PASSWORD, mustChange: false }, { meta: SUPER });
    }
    const alice = await QiaoClient.login({ baseUrl: await base(edgeC) }, { account: 'alice', password: PASSWORD, deviceType: 'web', deviceId: 'w-alice' });
    const bob = await QiaoClient.login({ baseUrl: await base(edgeB) }, { account: 'bob', password: PASSWORD, deviceType: 'web', deviceId: 'w-bob' });
    const received: SyncItem[] = [];
    bob.on('item', (i) => void received.push(i));
    await bob.connect();
    await alice.connect();
    await until('presence on the core node to see both', async () => (await core.broker.call<{ userIds: number[] }>('presence.online')).userIds.length === 2);
    const chat = await alice.conversations.create({ type: 'single', members: [ids.bob] });
    const sent = await alice.messages.send(chat.id, { type: 'text', body: { text: 'across nodes' } });
    await until('bob’s client to receive it through the other gateway', () => received.some((i) => i.kind === 'message' && (i.data as { id: number }).id === sent.id));
    // A watcher on one gateway hears about a person on the other.
    const changes: string[] = [];
    alice.on('presence', (p) => void changes.push(p.status));
    assert.equal((await alice.presence.watch([ids.bob]))[0].status, 'online');
    bob.disconnect();
    await until('alice to hear bob went offline', () => changes.includes('offline'));
    // A gateway node that goes away takes its people with it.
    await bob.connect();
    await until('bob online again', async () => (await core.broker.call<{ userIds: number[] }>('presence.online')).userIds.includes(ids.bob));
    await edgeB.stop();
    await until('presence to drop the stopped node', async () => !(await core.broker.call<{ userIds: number[] }>('presence.online')).userIds.includes(ids.bob));
    alice.disconnect();
    bob.disconnect();
  });
});
