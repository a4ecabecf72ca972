import assert from 'node:assert/strict';
import type { ServiceBroker } from 'moleculer';
import { forEachDatabase } from '../../test/support/databases.ts';
import type { RtxEmulator } from '../emulator/index.ts';
import { control, sdk } from '../emulator/test-support.ts';
import { addRtxUsers, eventually, startBridgeRig, type BridgeRig } from './test-kit.ts';

interface Shown {
  userId: number;
  status: string;
  devices: Array<{ deviceType: string; source?: string; status: string }>;
}

/** RTX presence in Qiao's own presence (what Qiao clients show), end to end: emulator → agent → plugin → core. */
forEachDatabase('rtx bridge: RTX presence in Qiao presence', ({ url }) => {
  let rig: BridgeRig;
  const id: Record<string, number> = {};
  const shown = async (userId: number) => (await rig.call<{ users: Shown[] }>('presence.get', { userIds: [userId] })).users[0]!;
  const statusOf = async (userId: number) => (await shown(userId)).status;
  const rtxSays = (uid: string, status: 0 | 1 | 2) => control(rig.rtx, 'PUT', `/users/${uid}/presence`, { status });

  before(async function () {
    this.timeout(90_000);
    rig = await startBridgeRig({ databaseUrl: url() });
    await addRtxUsers(rig.rtx, [{ uid: 'zhangsan' }, { uid: 'lisi' }, { uid: 'wangwu' }]);
    await rig.startAgent();
    assert.equal((await rig.sync()).status, 'ok');
    for (const uid of ['zhangsan', 'lisi', 'wangwu']) id[uid] = await rig.userId(uid);
  });
  after(async function () {
    this.timeout(30_000);
    await rig?.stop();
  });

  it('shows an RTX person online, away and offline in Qiao as RTX does, as a device of source rtx', async function () {
    this.timeout(30_000);
    assert.equal(await statusOf(id.zhangsan!), 'offline');
    await rtxSays('zhangsan', 1);
    const p = await eventually(async () => {
      const u = await shown(id.zhangsan!);
      assert.equal(u.status, 'online');
      return u;
    });
    assert.deepEqual(
      p.devices.map((d) => [d.deviceType, d.source, d.status]),
      [['external', 'rtx', 'online']],
    );
    assert.deepEqual((await rig.call<{ userIds: number[] }>('presence.online', {})).userIds, [id.zhangsan], 'online for "online only" broadcasts too');
    await rtxSays('zhangsan', 2);
    await eventually(async () => assert.equal(await statusOf(id.zhangsan!), 'away'));
    await rtxSays('zhangsan', 0);
    await eventually(async () => assert.equal(await statusOf(id.zhangsan!), 'offline'));
    await rtxSays('zhangsan', 1);
    await rtxSays('lisi', 2);
    await eventually(async () => {
      assert.equal(await statusOf(id.zhangsan!), 'online');
      assert.equal(await statusOf(id.lisi!), 'away');
    });
    const status = await rig.call<{ presence: { shownInQiao: number; error: string | null } }>('rtxBridge.status');
    assert.deepEqual(status.presence.shownInQiao, 2);
    assert.equal(status.presence.error, null);
  });

  it('shows the better of Qiao devices and RTX, and tells RTX callers of getstatus.php who is on Qiao', async function () {
    this.timeout(30_000);
    await rtxSays('lisi', 0);
    await rtxSays('wangwu', 2);
    await eventually(async () => {
      assert.equal(await statusOf(id.lisi!), 'offline');
      assert.equal(await statusOf(id.wangwu!), 'away');
    });
    // lisi, offline in RTX, opens a Qiao client: online; away in RTX as well: still online.
    const broker = rig.core.app.broker as unknown as ServiceBroker;
    const socket = { id: 'presence-test-socket', userId: id.lisi, sessionId: 1, deviceType: 'android', deviceId: 'phone-1', status: 'online', since: new Date().toISOString() };
    await broker.broadcast('presence.report', { nodeId: 'presence-test-gateway', kind: 'delta', upserts: [socket], removals: [] });
    try {
      await eventually(async () => assert.equal(await statusOf(id.lisi!), 'online'));
      const proxy = { url: rig.agent!.sdkProxyUrl } as RtxEmulator;
      await eventually(async () => assert.equal((await sdk(proxy, 'getstatus.php', { query: { username: 'lisi' } })).text, '1'));
      assert.equal((await sdk(proxy, 'getstatus.php', { query: { username: 'wangwu' } })).text, '2', 'RTX’s own answer for people not on Qiao');
      await rtxSays('lisi', 2);
      await eventually(async () => assert.deepEqual((await shown(id.lisi!)).devices.map((d) => [d.deviceType, d.status]).sort(), [['android', 'online'], ['external', 'away']]));
      assert.equal(await statusOf(id.lisi!), 'online');
    } finally {
      await broker.broadcast('presence.report', { nodeId: 'presence-test-gateway', kind: 'delta', upserts: [], removals: [socket.id] });
    }
    await eventually(async () => assert.equal(await statusOf(id.lisi!), 'away'));
  });

  it('shows nobody from RTX while RTX is down, and everyone again when it is back', async function () {
    this.timeout(60_000);
    await eventually(async () => assert.equal(await statusOf(id.zhangsan!), 'online'));
    await rig.rtx.down('503');
    await eventually(async () => {
      assert.equal(await statusOf(id.zhangsan!), 'offline');
      assert.equal(await statusOf(id.lisi!), 'offline');
    });
    await rig.rtx.up();
    await eventually(async () => {
      assert.equal(await statusOf(id.zhangsan!), 'online');
      assert.equal(await statusOf(id.lisi!), 'away');
    });
  });

  it('shows nobody from RTX once the agent link is down, and everyone again when an agent links', async function () {
    this.timeout(60_000);
    await rig.agent!.stop();
    await eventually(async () => {
      assert.equal(await statusOf(id.zhangsan!), 'offline');
      assert.equal(await statusOf(id.lisi!), 'offline');
    });
    assert.equal((await rig.call<{ presence: { shownInQiao: number } }>('rtxBridge.status')).presence.shownInQiao, 0);
    // Changed in RTX while nobody could see it: the new link reports it as it is now.
    await rtxSays('lisi', 1);
    await rig.startAgent();
    await eventually(async () => {
      assert.equal(await statusOf(id.zhangsan!), 'online');
      assert.equal(await statusOf(id.lisi!), 'online');
    });
  });

  it('shows nobody from RTX once the plugin stops', async function () {
    this.timeout(60_000);
    await eventually(async () => assert.equal(await statusOf(id.zhangsan!), 'online'));
    await rig.call('plugins.disable', { id: rig.core.pluginId });
    await eventually(async () => {
      assert.equal(await statusOf(id.zhangsan!), 'offline');
      assert.equal(await statusOf(id.lisi!), 'offline');
      assert.equal((await rig.call<{ users: number }>('presence.stats')).users, 0);
    });
  });
});
