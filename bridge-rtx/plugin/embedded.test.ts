import assert from 'node:assert/strict';
import { forEachDatabase } from '../../test/support/databases.ts';
import { control } from '../emulator/test-support.ts';
import { addRtxUsers, eventually, FEED_TOKEN, freePort, HOST_TOKEN, RELAY, startBridgeRig, type BridgeRig } from './test-kit.ts';

forEachDatabase('rtx bridge: the agent embedded in the plugin (small sites)', ({ url }) => {
  let rig: BridgeRig;
  let feedPort: number;
  before(async function () {
    this.timeout(60_000);
    feedPort = await freePort();
    rig = await startBridgeRig({
      databaseUrl: url(),
      // A cron with seconds (node-cron's six fields) so the scheduled sync shows within the test.
      settings: (rtx) => ({
        sync: { cron: '*/2 * * * * *' },
        embeddedAgent: {
          enabled: true,
          rtxSdkUrl: rtx.url,
          rtxHostUrl: rtx.hostUrl,
          rtxHostToken: HOST_TOKEN,
          feedPort,
          feedBind: '127.0.0.1',
          feedToken: FEED_TOKEN,
          relayAccount: RELAY.account,
          relayPassword: RELAY.password,
        },
      }),
    });
    rig.rtx.feed.configure(`http://127.0.0.1:${feedPort}/rtx/feed`, FEED_TOKEN);
    await addRtxUsers(rig.rtx, [{ uid: 'zhangsan', name: '张三' }, { uid: 'lisi', name: '李四' }]);
  });
  after(async function () {
    this.timeout(30_000);
    await rig?.stop();
  });

  it('links without a connection code, syncs, and relays both ways from inside the Qiao plugin process', async function () {
    this.timeout(60_000);
    await eventually(async () => {
      const s = await rig.call<{ link: { connected: boolean; agentId: string } }>('rtxBridge.status');
      assert.equal(s.link.connected, true);
      assert.equal(s.link.agentId, 'agent-embedded');
    });
    const run = await rig.sync(true);
    assert.equal(run.status, 'ok', JSON.stringify(run));
    const zs = await rig.userId('zhangsan');
    const ls = await rig.userId('lisi');
    await control(rig.rtx, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: '内置代理你好' });
    const conv = `s:${Math.min(zs, ls)}:${Math.max(zs, ls)}`;
    await eventually(async () => {
      const { messages } = await rig.call<{ messages: Array<{ body: { text: string } }> }>('im.messages.list', { conversationId: conv, userId: ls });
      assert.deepEqual(
        messages.map((m) => m.body.text),
        ['内置代理你好'],
      );
    });
    await rig.call('im.send', { conversationId: conv, senderId: ls, clientMsgId: 'embedded-1', type: 'text', body: { text: '收到' } });
    await eventually(async () => {
      const box = await control<{ ims: Array<{ text: string }> }>(rig.rtx, 'GET', '/users/zhangsan/inbox');
      assert.deepEqual(
        box.ims.map((m) => m.text),
        ['【李四】收到'],
      );
    });
  });

  it('syncs on its cron schedule (every 5 minutes by default) besides on demand', async function () {
    this.timeout(30_000);
    await eventually(async () => {
      const runs = await rig.call<Array<{ trigger: string; status: string }>>('rtxBridge.sync.history', { limit: 20 });
      assert.ok(runs.some((r) => r.trigger === 'cron' && ['ok', 'unchanged'].includes(r.status)), JSON.stringify(runs));
    });
  });
});
