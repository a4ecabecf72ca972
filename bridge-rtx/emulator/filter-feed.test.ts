import assert from 'node:assert/strict';
import { startRtxEmulator, type RtxEmulator } from './emulator.ts';
import { FEED_CONTENT_TYPE } from './filter-feed.ts';
import { parseRtxcData, rtxcItems } from './rtxc-data.ts';
import { control, sdk, startFeedReceiver, waitUntil } from './test-support.ts';

async function seed(emu: RtxEmulator): Promise<void> {
  await control(emu, 'POST', '/users', { uid: 'zhangsan', name: '张三', password: 'pw', presence: 1 });
  await control(emu, 'POST', '/users', { uid: 'lisi', name: '李四', presence: 1 });
  await control(emu, 'POST', '/users', { uid: '王五', name: '王五', presence: 1 });
}

describe('rtx emulator: application-filter feed (Tencent.RTX.IM, AA_COPY)', () => {
  it('POSTs each IM as RTXCData with sender and receivers, for one-to-one, multi-person and group chats', async () => {
    const agent = await startFeedReceiver();
    const emu = await startRtxEmulator({ port: 0, hostPort: 0, forwardUrl: agent.url, forwardToken: 'feed-secret' });
    try {
      await seed(emu);
      const one = await control(emu, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: '你好 [文档|http://oa/1] 𠮷' });
      const multi = await control(emu, 'POST', '/messages', { from: 'lisi', to: ['zhangsan', '王五'], text: 'multi', title: '午饭' });
      const g = await control(emu, 'POST', '/groups', { name: '项目群', members: ['zhangsan', 'lisi', '王五'] });
      const grp = await control(emu, 'POST', '/messages', { from: '王五', group: '项目群', text: '群里说话' });
      await agent.waitFor(3);

      const [p1, p2, p3] = agent.accepted;
      assert.equal(p1!.headers['content-type'], FEED_CONTENT_TYPE);
      assert.equal(p1!.headers.authorization, 'Bearer feed-secret');
      assert.equal(p1!.headers['x-rtx-request-type'], 'Tencent.RTX.IM');
      assert.deepEqual(agent.accepted.map((p) => p.headers['x-rtx-seq']), ['1', '2', '3']);

      const m1 = parseRtxcData(p1!.body);
      assert.deepEqual(m1, { key: one.key, mode: 0, text: '你好 [文档|http://oa/1] 𠮷', imMessageId: one.imMessageId, initiator: 'zhangsan', title: undefined, disGroupId: undefined });
      assert.equal(p1!.headers['x-rtx-sender'], 'zhangsan');
      assert.equal(decodeURIComponent(String(p1!.headers['x-rtx-receivers'])), 'lisi');
      // The message body is an RTXMsg document inside a string item, so its tags travel escaped.
      assert.match(p1!.body, /<Item Key="Content" Type="String">&lt;RTXMsg Ver=&quot;1.0&quot;&gt;&lt;Content&gt;&lt;Txt&gt;你好/);
      assert.equal(rtxcItems(p1!.body).get('im_message_id')!.type, 'Buffer');
      assert.equal(Buffer.from(m1.imMessageId, 'base64').readUInt32LE(0), 16);

      const m2 = parseRtxcData(p2!.body);
      assert.equal(m2.mode, 4);
      assert.equal(m2.key, multi.key);
      assert.equal(m2.title, '午饭');
      assert.equal(m2.disGroupId, undefined);
      assert.equal(decodeURIComponent(String(p2!.headers['x-rtx-receivers'])), 'zhangsan;王五');

      const m3 = parseRtxcData(p3!.body);
      assert.deepEqual([m3.mode, m3.key, m3.disGroupId, m3.title, m3.text], [4, g.key, g.id, '项目群', '群里说话']);
      assert.equal(m3.imMessageId, grp.imMessageId);
      assert.equal(decodeURIComponent(String(p3!.headers['x-rtx-sender'])), '王五');
      assert.equal(new Set([m1.imMessageId, m2.imMessageId, m3.imMessageId]).size, 3);
    } finally {
      await emu.stop();
      await agent.close();
    }
  });

  it('also copies IMs injected through SendIM.cgi, so the agent must recognise its own relays', async () => {
    const agent = await startFeedReceiver();
    const emu = await startRtxEmulator({ port: 0, hostPort: 0, forwardUrl: agent.url });
    try {
      await seed(emu);
      const key = '{CCCCCCCC-2222-3333-4444-555555555555}';
      await sdk(emu, 'SendIM.cgi', { query: { sender: 'zhangsan', pwd: 'pw', receivers: 'lisi', msg: '来自 Qiao', sessionid: key } });
      await agent.waitFor(1);
      const m = parseRtxcData(agent.accepted[0]!.body);
      assert.equal(m.key, key);
      assert.equal(m.text, '来自 Qiao');
      assert.equal(agent.accepted[0]!.headers['x-rtx-sender'], 'zhangsan');
    } finally {
      await emu.stop();
      await agent.close();
    }
  });

  it('retries a refused or failed POST and delivers everything once, in order', async () => {
    // The agent fails the first four attempts (500s), then accepts.
    let agent = await startFeedReceiver((attempt) => (attempt <= 4 ? 500 : 200));
    const port = agent.port;
    const emu = await startRtxEmulator({ port: 0, hostPort: 0, forwardUrl: agent.url, feedRetryInitialMs: 10, feedRetryMaxMs: 40 });
    try {
      await seed(emu);
      const sent: string[] = [];
      for (let i = 0; i < 10; i++) sent.push((await control(emu, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: `m${i}` })).imMessageId);
      await agent.waitFor(5);
      // Now the agent goes away entirely: connections are refused while more messages are sent.
      await agent.close();
      for (let i = 10; i < 20; i++) sent.push((await control(emu, 'POST', '/messages', { from: 'lisi', to: ['zhangsan'], text: `m${i}` })).imMessageId);
      const before = emu.feed.status();
      assert.ok(before.pending > 0);
      await waitUntil(() => /ECONNREFUSED/.test(emu.feed.status().lastError ?? ''), 'the feed has met a refused connection');
      const firstBatch = agent.accepted.slice();
      agent = await startFeedReceiver(() => 200, port);
      await emu.feed.idle();
      const all = [...firstBatch, ...agent.accepted];
      const ids = all.map((p) => parseRtxcData(p.body).imMessageId);
      assert.deepEqual(ids, sent);
      assert.deepEqual(all.map((p) => Number(p.headers['x-rtx-seq'])), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.deepEqual(all.map((p) => parseRtxcData(p.body).text), Array.from({ length: 20 }, (_, i) => `m${i}`));
      assert.equal(emu.feed.status().delivered, 20);
    } finally {
      await emu.stop();
      await agent.close();
    }
  });

  it('forwards nothing while no URL is configured (the host script is not running), and starts when one is set', async () => {
    const emu = await startRtxEmulator({ port: 0, hostPort: 0 });
    const agent = await startFeedReceiver();
    try {
      await seed(emu);
      await control(emu, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: 'unseen' });
      assert.equal(emu.feed.status().pending, 0);
      await control(emu, 'PUT', '/feed', { url: agent.url });
      await control(emu, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: 'seen' });
      await agent.waitFor(1);
      assert.equal(parseRtxcData(agent.accepted[0]!.body).text, 'seen');
      assert.equal(agent.accepted.length, 1);
      const status = await control(emu, 'GET', '/feed');
      assert.equal(status.delivered, 1);
      assert.equal(status.recent[0].imMessageId, parseRtxcData(agent.accepted[0]!.body).imMessageId);
    } finally {
      await emu.stop();
      await agent.close();
    }
  });
});
