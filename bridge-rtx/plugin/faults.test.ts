import assert from 'node:assert/strict';
import type { ServiceBroker } from 'moleculer';
import { startPluginTestCore, type PluginTestCore } from '@qiao/plugin-api/testing';
import { forEachDatabase } from '../../test/support/databases.ts';
import { control, sdk } from '../emulator/test-support.ts';
import type { RtxEmulator } from '../emulator/index.ts';
import { addRtxUsers, eventually, freePort, PLUGIN_DIR, spawnAgentProcess, startBridgeRig, type BridgeRig } from './test-kit.ts';

/** An RTX organisation of `n` people in 10 departments, loaded through the emulator's USERSYNC import. */
function orgXml(n: number): string {
  const depts = Array.from({ length: 10 }, (_, d) => {
    const users = Array.from({ length: n / 10 }, (_, i) => `<user uid="p${d}_${i}" name="员工${d}-${i}" gender="${i % 2}" mobile="" email="" phone="" rtxno="" position=""/>`).join('');
    return `<department name="部门${d}" describe="">${users}</department>`;
  }).join('');
  return `<?xml version="1.0" encoding="utf-8"?><enterprise name="大公司"><departments><department name="大公司" describe="">${depts}</department></departments></enterprise>`;
}

forEachDatabase('rtx bridge faults: RTX down while Qiao users send', ({ url }) => {
  {
    let rig: BridgeRig;
    before(async function () {
      this.timeout(60_000);
      rig = await startBridgeRig({ databaseUrl: url() });
      await addRtxUsers(rig.rtx, [{ uid: 'zhangsan' }, { uid: 'lisi' }]);
      await rig.startAgent();
      await rig.sync();
      await rig.call('rtxBridge.credentials.set', { userId: await rig.userId('lisi'), password: 'lisi-pw' });
    });
    after(async function () {
      this.timeout(30_000);
      await rig?.stop();
    });

    it('keeps 500 messages on disk while RTX is down and delivers each once, in order, when it returns', async function () {
      this.timeout(120_000);
      const zs = await rig.userId('zhangsan');
      const ls = await rig.userId('lisi');
      const conv = (await rig.call<{ id: string }>('im.conversations.create', { type: 'single', members: [ls, zs], createdBy: ls })).id;
      // RTX goes away the hard way (RTX_HTTPServer stopped: connections refused) and stays away while all 500
      // are sent; the agent keeps retrying with growing pauses the whole time, as it would for 10 minutes.
      await rig.rtx.down('refuse');
      for (let i = 1; i <= 500; i++) await rig.call('im.send', { conversationId: conv, senderId: ls, clientMsgId: `down-${i}`, type: 'text', body: { text: `消息 ${i}` } });
      // An OA notification sent meanwhile through the agent's SDK pages reaches Qiao now, and RTX later.
      const proxy = { url: rig.agent!.sdkProxyUrl } as RtxEmulator;
      const res = await sdk(proxy, 'SendNotify.cgi', { query: { receiver: 'zhangsan', msg: 'RTX 停机时的通知', title: '停机' } });
      assert.match(res.text, /操作成功/);
      await eventually(() => assert.equal(rig.agent!.status().stats.toRtxPending, 500), 60_000);
      const status = await rig.call<{ link: { rtx: { sdk: string } }; relay: { pendingToRtx: number } }>('rtxBridge.status');
      assert.equal(status.link.rtx.sdk, 'down');
      assert.equal(status.relay.pendingToRtx, 500);
      assert.equal((await control(rig.rtx, 'GET', '/users/zhangsan/inbox')).ims.length, 0);
      await eventually(async () => {
        const b = await rig.call<{ broadcasts: Array<{ title: string }> }>('im.broadcasts.list', {});
        assert.ok(b.broadcasts.some((x) => x.title === '停机'));
      });

      await rig.rtx.up();
      const ims = await eventually(async () => {
        const box = await control<{ ims: Array<{ text: string; from: string }>; notifications: Array<{ title: string }> }>(rig.rtx, 'GET', '/users/zhangsan/inbox');
        assert.equal(box.ims.length, 500);
        assert.ok(box.notifications.some((n) => n.title === '停机'), 'the notification kept for RTX arrived too');
        return box.ims;
      }, 60_000);
      assert.deepEqual(
        ims.map((m) => m.text),
        Array.from({ length: 500 }, (_, i) => `消息 ${i + 1}`),
      );
      assert.ok(ims.every((m) => m.from === 'lisi'));
      await eventually(async () => {
        const s = await rig.call<{ relay: { pendingToRtx: number; counters: Record<string, number> } }>('rtxBridge.status');
        assert.equal(s.relay.pendingToRtx, 0);
        assert.equal(s.relay.counters['toRtx.delivered'], 500);
      });
      // And none of the 500 relays came back into Qiao through RTX's filter.
      await eventually(() => assert.equal(rig.agent!.status().stats.loopsPrevented, 500));
      assert.equal((await rig.call<{ messages: unknown[] }>('im.messages.list', { conversationId: conv, userId: zs, limit: 500 })).messages.length, 500);
    });
  }
});

forEachDatabase('rtx bridge faults: the agent killed in the middle of an org sync', ({ url }) => {
  {
    let rig: BridgeRig;
    before(async function () {
      this.timeout(60_000);
      rig = await startBridgeRig({ databaseUrl: url(), settings: { sync: { batchSize: 500 } } });
      await fetch(`${rig.rtx.controlUrl}/org.xml?mode=merge`, { method: 'PUT', body: orgXml(5000) });
    });
    after(async function () {
      this.timeout(30_000);
      await rig?.stop();
    });

    it('lets the next sync finish the work without duplicates', async function () {
      this.timeout(180_000);
      const first = await rig.spawnAgent();
      await eventually(async () => assert.equal((await rig.call<{ link: { connected: boolean } }>('rtxBridge.status')).link.connected, true));
      // Linking starts the first sync by itself; the agent dies while it runs.
      await eventually(async () => assert.equal((await rig.call<{ sync: { running: boolean } }>('rtxBridge.status')).sync.running, true), 10_000);
      await first.kill('SIGKILL');
      const interrupted = await eventually(async () => {
        const [run] = await rig.call<Array<{ status: string; error: string | null }>>('rtxBridge.sync.history', { limit: 1 });
        assert.notEqual(run!.status, 'running');
        return run!;
      }, 60_000);
      // Either the agent died before it sent the organisation (the run failed, saying why) or after (the plugin
      // finished the import on its own). Both leave a state the next sync can complete.
      if (interrupted.status === 'failed') assert.match(interrupted.error ?? '', /agent disconnected/);

      // Restarted without a code: it links again with the credential it kept.
      const second = await spawnAgentProcess(rig, undefined);
      try {
        await eventually(async () => assert.equal((await rig.call<{ link: { connected: boolean } }>('rtxBridge.status')).link.connected, true), 30_000);
        const run = await rig.sync(true);
        assert.equal(run.status, 'ok', JSON.stringify(run));
        assert.equal(run.rtxUsers, 5000);
        assert.equal(run.added + (interrupted.status === 'ok' ? 5000 : 0) <= 5000, true);
        const list = await rig.call<{ total: number }>('org.users.list', { pageSize: 1 });
        assert.equal(list.total, 5000, 'everyone once');
        const accounts = await rig.call<{ total: number }>('rtxBridge.accounts.list', { pageSize: 1 });
        assert.equal(accounts.total, 5000);
        assert.equal((await rig.sync()).status, 'unchanged');
      } finally {
        await second.kill('SIGTERM');
      }
    });
  }
});

forEachDatabase('rtx bridge faults: Qiao restarted', ({ url }) => {
  {
    let core: PluginTestCore | null = null;
    let rig: BridgeRig;
    let port: number;
    before(async function () {
      this.timeout(60_000);
      port = await freePort();
      rig = await startBridgeRig({ databaseUrl: url(), port });
      await addRtxUsers(rig.rtx, [{ uid: 'zhangsan' }, { uid: 'lisi' }]);
      await rig.startAgent();
      await rig.sync();
    });
    after(async function () {
      this.timeout(30_000);
      await core?.stop().catch(() => undefined);
      await rig?.stop();
    });

    it('the agent reconnects by itself and delivers what RTX users sent meanwhile', async function () {
      this.timeout(120_000);
      const zs = await rig.userId('zhangsan');
      const ls = await rig.userId('lisi');
      await rig.core.stop();
      await eventually(() => assert.notEqual(rig.agent!.status().link.state, 'open'));
      // RTX users keep talking while Qiao is down: the agent journals it.
      await control(rig.rtx, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: 'Qiao 重启期间的消息' });
      await eventually(() => assert.equal(rig.agent!.status().stats.toQiaoPending, 1));

      core = await startPluginTestCore({ pluginDir: PLUGIN_DIR, databaseUrl: url(), settings: { listen: { host: '127.0.0.1', port }, presence: { intervalSeconds: 1 } } });
      const broker = core.app.broker as unknown as ServiceBroker;
      await rig.agent!.linked(30_000);
      const conv = `s:${Math.min(zs, ls)}:${Math.max(zs, ls)}`;
      await eventually(async () => {
        const { messages } = await broker.call<{ messages: Array<{ body: { text: string } }> }, object>('im.messages.list', { conversationId: conv, userId: ls });
        assert.deepEqual(
          messages.map((m) => m.body.text),
          ['Qiao 重启期间的消息'],
        );
      });
      await eventually(() => assert.equal(rig.agent!.status().stats.toQiaoPending, 0));
      // And the other way round, through the new core.
      await broker.call('im.send', { conversationId: conv, senderId: ls, clientMsgId: 'after-restart', type: 'text', body: { text: '重启后回复' } });
      await eventually(async () => {
        const box = await control<{ ims: Array<{ text: string }> }>(rig.rtx, 'GET', '/users/zhangsan/inbox');
        assert.ok(box.ims.some((m) => m.text.endsWith('重启后回复')));
      });
    });
  }
});
