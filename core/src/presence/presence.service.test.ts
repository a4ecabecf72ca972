import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import moleculer from 'moleculer';
import { describeError } from '../errors.ts';
import { until } from '../gateway/client/test-kit.ts';
import type { ServiceDeps } from '../services.ts';
import presenceService from './presence.service.ts';
import type { UserPresence } from './presence-state.ts';

async function refused(promise: Promise<unknown>, field: string): Promise<void> {
  const e = await promise.then(
    () => null,
    (err: unknown) => describeError(err),
  );
  assert.ok(e, 'expected a refusal');
  assert.equal(e.code, 'QIAO_VALIDATION', e.message);
  assert.match(JSON.stringify(e.data), new RegExp(field.replace(/[[\].]/g, '\\$&')), e.message);
}

/**
 * External presence sources on the presence service itself: storage-free, so these run on brokers joined
 * by Moleculer's in-process transporter, one presence instance per node, as a cluster would run them.
 */
describe('presence from external sources', () => {
  const namespace = `presence-${randomBytes(4).toString('hex')}`;
  const brokers: moleculer.ServiceBroker[] = [];
  const announced: UserPresence[] = [];

  async function node(name: string, withPresence = true): Promise<moleculer.ServiceBroker> {
    const broker = new moleculer.ServiceBroker({ namespace, nodeID: `${name}-${namespace}`, transporter: 'Fake', logger: false });
    if (withPresence) broker.createService(presenceService({} as ServiceDeps));
    brokers.push(broker);
    await broker.start();
    return broker;
  }
  const get = async (broker: moleculer.ServiceBroker, userIds: number[]) =>
    (await broker.call<{ users: UserPresence[] }, object>('presence.get', { userIds }, { nodeID: broker.nodeID })).users;
  const online = async (broker: moleculer.ServiceBroker, includeAway = true) =>
    (await broker.call<{ userIds: number[] }, object>('presence.online', { includeAway }, { nodeID: broker.nodeID })).userIds;

  let a: moleculer.ServiceBroker;
  let b: moleculer.ServiceBroker;

  before(async () => {
    const watcher = await node('watcher', false);
    watcher.createService({
      name: 'presence-watcher',
      events: {
        'presence.changed'(ctx: moleculer.Context<UserPresence>) {
          announced.push(ctx.params);
        },
      },
    });
    a = await node('a');
    b = await node('b');
    for (const n of [watcher, a, b]) await n.waitForServices(['presence', 'presence-watcher'], 5000);
  });
  after(async () => {
    for (const n of brokers.reverse()) await n.stop();
  });

  it('records a source’s statuses, merges them with the person’s own devices, and shares them with every instance', async () => {
    const r = await a.call<{ source: string; changed: number }, object>('presence.external.set', {
      source: 'rtx',
      entries: [
        { userId: 11, status: 'online' },
        { userId: 12, status: 'away' },
        { userId: 13, status: 'offline' },
      ],
    }, { nodeID: a.nodeID });
    assert.deepEqual(r, { source: 'rtx', changed: 2 });
    const [p11] = await get(a, [11]);
    assert.equal(p11.status, 'online');
    assert.deepEqual(p11.devices.map(({ since: _, ...d }) => d), [{ deviceType: 'external', deviceId: 'rtx', source: 'rtx', status: 'online' }]);
    assert.ok(!Number.isNaN(Date.parse(p11.devices[0].since)));
    assert.deepEqual(await online(a), [11, 12]);
    assert.deepEqual(await online(a, false), [11]);
    // The other instance was not called, and answers the same.
    await until('b to hear of it', async () => (await online(b)).length === 2);
    assert.deepEqual(await get(b, [11, 12, 13]), await get(a, [11, 12, 13]));
    // Watchers hear the changes through the usual announcement.
    await until('the changes announced', () => announced.some((p) => p.userId === 11 && p.status === 'online') && announced.some((p) => p.userId === 12 && p.status === 'away'));
    assert.ok(!announced.some((p) => p.userId === 13), 'nobody announced for a person still offline');
  });

  it('replaces a person’s previous status from the same source, and keeps sources apart', async () => {
    announced.length = 0;
    await b.call('presence.external.set', { source: 'rtx', entries: [{ userId: 11, status: 'away' }] }, { nodeID: b.nodeID });
    await b.call('presence.external.set', { source: 'lync-2', entries: [{ userId: 12, status: 'online' }] }, { nodeID: b.nodeID });
    for (const n of [a, b]) {
      await until(`node ${n.nodeID} to settle`, async () => {
        const [p11, p12] = await get(n, [11, 12]);
        return p11.status === 'away' && p12.status === 'online';
      });
      const [, p12] = await get(n, [11, 12]);
      assert.deepEqual(p12.devices.map((d) => `${d.source}:${d.status}`), ['lync-2:online', 'rtx:away']);
    }
    await until('the changes announced', () => announced.some((p) => p.userId === 11 && p.status === 'away') && announced.some((p) => p.userId === 12 && p.status === 'online'));
  });

  it('forgets everything from a source on clear, on every instance, leaving the other sources', async () => {
    announced.length = 0;
    assert.deepEqual(await a.call('presence.external.clear', { source: 'rtx' }, { nodeID: a.nodeID }), { source: 'rtx', changed: 2 });
    for (const n of [a, b]) {
      await until(`node ${n.nodeID} to forget rtx`, async () => (await online(n)).join() === '12');
      assert.deepEqual((await get(n, [11, 12])).map((p) => [p.userId, p.status, p.devices.map((d) => d.source).join()]), [[11, 'offline', ''], [12, 'online', 'lync-2']]);
    }
    await until('the change announced', () => announced.some((p) => p.userId === 11 && p.status === 'offline' && p.devices.length === 0));
    // Clearing a source nothing came from is harmless.
    assert.deepEqual(await a.call('presence.external.clear', { source: 'nobody' }), { source: 'nobody', changed: 0 });
  });

  it('forgets what a plugin reported once its process ends, as it cannot clear it itself', async () => {
    await a.call('presence.external.set', { source: 'crashy', entries: [{ userId: 21, status: 'online' }] }, { nodeID: a.nodeID, meta: { plugin: 'com.example.crashy' } });
    for (const n of [a, b]) await until(`node ${n.nodeID} to show 21`, async () => (await online(n)).includes(21));
    await b.broadcast('plugins.process.exited', { pluginId: 'com.example.other' });
    await new Promise((r) => setTimeout(r, 50));
    assert.ok((await online(a)).includes(21), 'another plugin ending changes nothing');
    await b.broadcast('plugins.process.exited', { pluginId: 'com.example.crashy' });
    for (const n of [a, b]) await until(`node ${n.nodeID} to forget 21`, async () => !(await online(n)).includes(21));
  });

  it('gives an instance that starts later what the others know', async () => {
    await a.call('presence.external.set', { source: 'rtx', entries: [{ userId: 21, status: 'online' }] }, { nodeID: a.nodeID });
    const c = await node('c');
    await until('the new instance to learn it', async () => (await online(c)).join() === '12,21');
    assert.deepEqual(await get(c, [12, 21]), await get(a, [12, 21]));
  });

  it('refuses bad input whole, naming the field', async () => {
    const set = (params: object) => a.call('presence.external.set', params);
    await refused(set({ source: 'RTX', entries: [] }), 'source');
    await refused(set({ source: '', entries: [] }), 'source');
    await refused(set({ source: 'x'.repeat(41), entries: [] }), 'source');
    await refused(set({ source: 'rtx', entries: [{ userId: 0, status: 'online' }] }), 'entries[0].userId');
    await refused(set({ source: 'rtx', entries: [{ userId: 1, status: 'busy' }] }), 'entries[0].status');
    await refused(set({ source: 'rtx', entries: [{ userId: 1, status: 'online', extra: 1 }] }), 'entries[0]');
    await refused(set({ source: 'rtx', entries: Array.from({ length: 10_001 }, (_, i) => ({ userId: i + 1, status: 'online' })) }), 'entries');
    await refused(a.call('presence.external.clear', { source: 'r tx' }), 'source');
    assert.deepEqual(await online(a), [12, 21], 'nothing was applied');
    // The largest batch is taken.
    const big = Array.from({ length: 10_000 }, (_, i) => ({ userId: 1000 + i, status: 'away' }));
    assert.deepEqual(await set({ source: 'big', entries: big }), { source: 'big', changed: 10_000 });
    await until('b to hear the whole batch', async () => (await online(b)).length === 10_002);
    await a.call('presence.external.clear', { source: 'big' });
  });
});
