import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ServiceBroker } from 'moleculer';
import WebSocket from 'ws';
import { forEachDatabase } from '../../test/support/databases.ts';
import { buildRtxcData, feedHeaders, newImMessageId, type RtxEmulator } from '../emulator/index.ts';
import { control, sdk } from '../emulator/test-support.ts';
import { LOSSY_NOTE } from '../agent/gbk-text.ts';
import type { RtxAgent } from '../agent/agent.ts';
import { LINK_PATH, PAIR_PATH } from './link-protocol.ts';
import { addRtxUsers, eventually, FEED_TOKEN, RELAY, startBridgeRig, type BridgeRig } from './test-kit.ts';

const LAN = '127.0.0.2';
const sdkProperty = (ips: string[]) => `<?xml version="1.0" encoding="gb2312"?><sdkhttp><IPLimit Enabled="1">${ips.map((ip) => `<IP>${ip}</IP>`).join('')}</IPLimit></sdkhttp>`;

interface Msg {
  id: number;
  senderId: number;
  clientMsgId: string;
  type: string;
  body: { text?: string; segments?: unknown[] };
}

forEachDatabase('rtx bridge: plugin + agent against the RTX emulator', ({ url }) => {
  let rig: BridgeRig;
  let agent: RtxAgent;
  let propFile: string;
  const id: Record<string, number> = {};

  const messages = async (conversationId: string, userId: number) => (await rig.call<{ messages: Msg[] }>('im.messages.list', { conversationId, userId })).messages;
  const inbox = (uid: string) => control<{ notifications: Array<{ title: string; msg: string }>; ims: Array<{ key: string; from: string; text: string; mode: number }> }>(rig.rtx, 'GET', `/users/${uid}/inbox`);
  const single = (a: number, b: number) => `s:${Math.min(a, b)}:${Math.max(a, b)}`;
  let clientIds = 0;
  const send = (conversationId: string, senderId: number, text: string) =>
    rig.call<Msg>('im.send', { conversationId, senderId, clientMsgId: `t-${++clientIds}`, type: 'text', body: { text } });

  before(async function () {
    this.timeout(90_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-sdkprop-'));
    propFile = path.join(dir, 'SDKProperty.xml');
    fs.writeFileSync(propFile, sdkProperty([LAN]));
    rig = await startBridgeRig({ databaseUrl: url(), rtx: { sdkPropertyFile: propFile } });
    await addRtxUsers(rig.rtx, [
      { uid: 'zhangsan', name: '张三', departments: ['公司\\技术部'] },
      { uid: 'lisi', name: '李四', departments: ['公司\\技术部'] },
      { uid: 'wangwu', name: '王五', departments: ['公司\\市场部'] },
      { uid: 'zhaoliu', name: '赵六', departments: ['公司\\市场部', '公司\\技术部'] },
      { uid: 'zhurongji', name: '朱镕基', departments: ['公司'] },
    ]);
    // The agent calls RTX from a LAN address, as it would from its own host: SDKProperty.xml must allow it.
    agent = await rig.startAgent({ sdkLocalAddress: LAN });
  });
  after(async function () {
    this.timeout(30_000);
    await rig?.stop();
    fs.rmSync(path.dirname(propFile), { recursive: true, force: true });
  });

  it('syncs the org chart from RTX; RTX records are then read-only in Qiao, with a message saying so', async function () {
    this.timeout(60_000);
    const run = await rig.sync();
    assert.ok(['ok', 'unchanged'].includes(run.status), JSON.stringify(run));
    for (const uid of ['zhangsan', 'lisi', 'wangwu', 'zhaoliu', 'zhurongji']) id[uid] = await rig.userId(uid);
    const zr = await rig.call<{ name: string; source: string; departments: unknown[] }>('org.users.get', { id: id.zhurongji });
    assert.equal(zr.name, '朱镕基', 'GBK-only 镕 survives the export');
    assert.equal(zr.source, 'rtx');
    const zl = await rig.call<{ departments: Array<{ departmentId: number }> }>('org.users.get', { id: id.zhaoliu });
    assert.equal(zl.departments.length, 2, 'a person in two RTX departments is in both');
    await assert.rejects(rig.call('org.users.update', { id: id.zhangsan, name: 'changed in Qiao' }), (err: Error & { type: string }) => {
      assert.equal(err.type, 'QIAO_FORBIDDEN');
      assert.match(err.message, /managed by RTX/);
      return true;
    });
    assert.deepEqual(await rig.call('system.settings.get', { key: 'org.readOnlySources' }), ['rtx']);
    assert.equal((await rig.call<{ users: unknown[] }>('org.users.list', { search: RELAY.account })).users.length, 0, 'the relay account is the bridge, not a person');
  });

  it('relays an RTX 1:1 message into Qiao with Chinese and 𠮷 intact, once even when the feed repeats it', async () => {
    await control(rig.rtx, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: '你好，李四！𠮷野家见 [合同|http://oa.example.com/c/1]' });
    const conv = single(id.zhangsan, id.lisi);
    const [m] = await eventually(async () => {
      const list = await messages(conv, id.lisi);
      assert.equal(list.length, 1);
      return list;
    });
    assert.equal(m!.senderId, id.zhangsan);
    assert.equal(m!.type, 'rich', 'an RTX [文字|URL] link becomes a link');
    assert.deepEqual(m!.body.segments, [
      { type: 'text', text: '你好，李四！𠮷野家见 ' },
      { type: 'link', text: '合同', url: 'http://oa.example.com/c/1' },
    ]);
    // The forwarder retries until acknowledged, so the same message can arrive twice: it is stored once.
    const imMessageId = newImMessageId();
    const window = (await control<{ conversations: Array<{ key: string; members: string[] }> }>(rig.rtx, 'GET', '/conversations')).conversations[0]!;
    const content = buildRtxcData({ key: window.key, mode: 0, text: '重复的消息', imMessageId, initiator: 'zhangsan' });
    for (let seq = 1; seq <= 2; seq++) {
      const res = await fetch(agent.feedUrl, { method: 'POST', headers: feedHeaders({ seq, sender: 'zhangsan', receivers: ['lisi'], content, imMessageId }, FEED_TOKEN), body: content });
      assert.equal(res.status, 200);
    }
    await eventually(async () => assert.equal((await messages(conv, id.lisi)).length, 2));
    assert.equal(agent.status().stats.duplicatesDropped, 1);
    // A feed post without the token is refused: nothing unauthenticated injects messages.
    const res = await fetch(agent.feedUrl, { method: 'POST', body: content });
    assert.equal(res.status, 401);
  });

  it('lets a Qiao (mobile) user reply to an RTX colleague as themselves, in the same RTX window; 𠮷 is shown as ? with a note', async function () {
    this.timeout(30_000);
    await assert.rejects(rig.call('rtxBridge.credentials.set', { userId: id.lisi, password: 'wrong' }), /Login\.php answered false/);
    assert.deepEqual(await rig.call('rtxBridge.credentials.set', { userId: id.lisi, password: 'lisi-pw' }), { account: 'lisi', stored: true });
    const conv = single(id.zhangsan, id.lisi);
    await send(conv, id.lisi, '收到，张三。今天吃𠮷野家');
    const ims = await eventually(async () => {
      const box = await inbox('zhangsan');
      assert.equal(box.ims.length, 1);
      return box.ims;
    });
    const rtxConv = (await control<{ conversations: Array<{ key: string; members: string[] }> }>(rig.rtx, 'GET', '/conversations')).conversations.find((c) =>
      c.members.includes('zhangsan') && c.members.includes('lisi'),
    )!;
    assert.equal(ims[0]!.from, 'lisi');
    assert.equal(ims[0]!.key, rtxConv.key, 'the reply lands in the window zhangsan wrote in');
    assert.equal(ims[0]!.text, `收到，张三。今天吃?野家${LOSSY_NOTE}`);
    await eventually(async () => {
      const status = await rig.call<{ relay: { counters: Record<string, number> } }>('rtxBridge.status');
      assert.equal(status.relay.counters['toRtx.lossy'], 1);
    });
  });

  it('prevents loops: what the bridge relays into RTX never comes back into Qiao as new', async function () {
    this.timeout(30_000);
    const conv = single(id.zhangsan, id.lisi);
    const before = (await messages(conv, id.lisi)).length;
    const loopsBefore = agent.status().stats.loopsPrevented;
    for (let i = 0; i < 5; i++) await send(conv, id.lisi, `第 ${i} 条`);
    await eventually(async () => assert.equal((await inbox('zhangsan')).ims.length, 6));
    // Every relay was copied by RTX's filter back to the agent, recognised and dropped.
    await eventually(() => assert.equal(agent.status().stats.loopsPrevented, loopsBefore + 5));
    // Then a real RTX user types the very same text: that one is relayed.
    await control(rig.rtx, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: '第 4 条' });
    await eventually(async () => assert.equal((await messages(conv, id.lisi)).length, before + 6));
    const last = (await messages(conv, id.lisi)).at(-1)!;
    assert.equal(last.senderId, id.zhangsan);
  });

  it('relays Qiao-only people through the relay account, and RTX replies in that window come back', async function () {
    this.timeout(30_000);
    const carol = Number((await rig.call<{ id: number }>('org.users.create', { account: 'carol', name: 'Carol 陈' })).id);
    const conv = (await rig.call<{ id: string }>('im.conversations.create', { type: 'single', members: [carol, id.wangwu], createdBy: carol })).id;
    await send(conv, carol, '王五你好');
    const im = await eventually(async () => {
      const box = await inbox('wangwu');
      assert.equal(box.ims.length, 1);
      return box.ims[0]!;
    });
    assert.equal(im.from, RELAY.account);
    assert.equal(im.text, '【Carol 陈】王五你好');
    await control(rig.rtx, 'POST', '/messages', { from: 'wangwu', to: [RELAY.account], key: im.key, text: '你好 Carol' });
    await eventually(async () => {
      const list = await messages(conv, carol);
      assert.equal(list.length, 2);
      assert.equal(list[1]!.senderId, id.wangwu);
      assert.equal(list[1]!.body.text, '你好 Carol');
    });
  });

  it('mirrors an RTX 群 as a Qiao group, both ways', async function () {
    this.timeout(30_000);
    await control(rig.rtx, 'POST', '/groups', { name: '项目群', members: ['zhangsan', 'lisi', 'wangwu'] });
    await control(rig.rtx, 'POST', '/messages', { from: 'zhangsan', group: '项目群', text: '大家好' });
    const group = await eventually(async () => {
      const { groups } = await rig.call<{ groups: Array<{ id: string; name: string; type: string }> }>('im.groups.list', { type: 'group' });
      const g = groups.find((x) => x.name === '项目群');
      assert.ok(g);
      return g;
    });
    const list = await eventually(async () => {
      const l = await messages(group.id, id.wangwu);
      assert.equal(l.length, 1);
      return l;
    });
    assert.equal(list[0]!.body.text, '大家好');
    // lisi answers from Qiao: every member of the RTX 群 gets it, in the 群's window.
    await send(group.id, id.lisi, '收到');
    const rtxGroup = (await control<{ groups: Array<{ key: string; name: string }> }>(rig.rtx, 'GET', '/groups')).groups.find((g) => g.name === '项目群')!;
    for (const uid of ['zhangsan', 'wangwu']) {
      await eventually(async () => {
        const hit = (await inbox(uid)).ims.find((m) => m.text === '收到' && m.from === 'lisi');
        assert.ok(hit, `${uid} got the reply`);
        assert.equal(hit.key, rtxGroup.key);
      });
    }
  });

  it('mirrors discussion groups with people on both sides, both ways', async function () {
    this.timeout(30_000);
    const carol = await rig.userId('carol');
    const conv = (await rig.call<{ id: string }>('im.conversations.create', { type: 'discussion', name: '跨系统讨论', members: [id.lisi, id.zhaoliu, id.zhurongji, carol], createdBy: id.lisi })).id;
    await send(conv, id.lisi, '讨论开始');
    const im = await eventually(async () => {
      const hit = (await inbox('zhaoliu')).ims.find((m) => m.text === '讨论开始');
      assert.ok(hit);
      return hit;
    });
    assert.equal(im.mode, 4, 'a multi-person RTX session');
    assert.ok((await inbox('zhurongji')).ims.some((m) => m.text === '讨论开始'));
    await control(rig.rtx, 'POST', '/messages', { from: 'zhaoliu', to: ['lisi', 'zhurongji'], key: im.key, text: '赵六回复' });
    await eventually(async () => {
      const list = await messages(conv, carol);
      assert.deepEqual(
        list.map((m) => m.body.text),
        ['讨论开始', '赵六回复'],
      );
    });
  });

  it('stops relaying a discussion that grows past 80 RTX people (RTX allows 80), says so in Qiao, and resumes below it', async function () {
    this.timeout(90_000);
    const many = Array.from({ length: 81 }, (_, i) => ({ uid: `crowd${i}`, departments: ['公司\\大群'] }));
    await addRtxUsers(rig.rtx, many);
    const run = await rig.sync();
    assert.equal(run.added, 81, JSON.stringify(run));
    const ids = await Promise.all(many.map((u) => rig.userId(u.uid)));
    const owner = ids[0]!;
    const conv = (await rig.call<{ id: string }>('im.conversations.create', { type: 'discussion', name: '大讨论', members: ids.slice(0, 80), createdBy: owner })).id;
    const failures = async () => (await rig.call<{ toRtx: Array<{ qiaoMessageId: number; status: string; error: string }> }>('rtxBridge.relay.failures')).toRtx;
    const notices = async (userId: number) =>
      (await rig.call<{ items: Array<{ kind: string; data: { title: string; body: { text: string }; sender: unknown } }> }>('im.sync', { userId, since: 0, limit: 1000 })).items
        .filter((i) => i.kind === 'broadcast' && /转发到 RTX/.test(i.data.title))
        .map((i) => i.data);
    // crowd0 keeps no RTX password here, so the relay account sends for them, name first.
    const reached = (uid: string, text: string) => eventually(async () => assert.ok((await inbox(uid)).ims.some((m) => m.text === `【crowd0】${text}`), `${uid} got "${text}"`));

    // 80 people (79 receivers and the relay account sending for crowd0): RTX takes it.
    await send(conv, owner, '八十人');
    await reached('crowd1', '八十人');

    // One more joins in Qiao: 81 RTX people, more than an RTX session holds.
    await rig.call('im.conversations.invite', { userId: owner, conversationId: conv, userIds: [ids[80]] });
    const over = await send(conv, owner, '八十一人');
    const skipped = await eventually(async () => {
      const hit = (await failures()).find((x) => x.qiaoMessageId === over.id);
      assert.ok(hit);
      return hit;
    });
    assert.equal(skipped.status, 'skipped');
    assert.match(skipped.error, /at most 80 people \(an RTX limit\) and this one has 81/);
    // Everyone in the Qiao discussion is told, once, by the bridge.
    const told = await eventually(async () => {
      const n = await notices(ids[40]!);
      assert.equal(n.length, 1);
      return n[0]!;
    });
    assert.deepEqual(told.sender, { kind: 'plugin', id: null, name: 'RTX 桥接' });
    assert.equal(told.title, '消息不再转发到 RTX');
    assert.match(told.body.text, /「大讨论」现有 81 位 RTX 用户，超过了 RTX 会话 80 人的上限/);
    assert.equal((await notices(ids[80]!)).length, 1, 'the newcomer too');
    const again = await send(conv, ids[7]!, '还是八十一人');
    await eventually(async () => assert.ok((await failures()).some((x) => x.qiaoMessageId === again.id && x.status === 'skipped')));
    assert.equal((await notices(ids[40]!)).length, 1, 'told once, not for every message');
    assert.ok(!(await inbox('crowd1')).ims.some((m) => /八十一人/.test(m.text)), 'nothing of it reached RTX');

    // Back to 80: relayed again, and said so.
    await rig.call('im.conversations.remove', { userId: owner, conversationId: conv, userIds: [ids[80]] });
    await send(conv, owner, '又是八十人');
    await reached('crowd1', '又是八十人');
    const resumed = await eventually(async () => {
      const n = await notices(ids[40]!);
      assert.equal(n.length, 2);
      return n[1]!;
    });
    assert.equal(resumed.title, '消息恢复转发到 RTX');
    assert.match(resumed.body.text, /「大讨论」的 RTX 用户已降到 80 位/);
  });

  it('brings OA notifications and RTX department / all-staff broadcasts into Qiao, and still into RTX', async function () {
    this.timeout(30_000);
    const proxy = { url: agent.sdkProxyUrl } as RtxEmulator;
    const broadcasts = async () => (await rig.call<{ broadcasts: Array<{ audience: any; title: string; body: any; type: string; popupSeconds: number | null; sender: unknown }> }>('im.broadcasts.list', {})).broadcasts;
    let res = await sdk(proxy, 'SendNotify.cgi', { query: { receiver: 'zhangsan;lisi', title: 'OA 审批', msg: '请审批[报销单|http://oa.example.com/e/9]', delaytime: 10000 } });
    assert.match(res.text, /操作成功/);
    assert.ok((await inbox('zhangsan')).notifications.some((n) => n.title === 'OA 审批'), 'RTX got it as before');
    const oa = await eventually(async () => {
      const b = (await broadcasts()).find((x) => x.title === 'OA 审批');
      assert.ok(b);
      return b;
    });
    assert.deepEqual(oa.audience, { userIds: [id.zhangsan, id.lisi] });
    assert.equal(oa.type, 'system');
    assert.deepEqual(oa.body, { title: 'OA 审批', text: '请审批报销单', links: [{ title: '报销单', url: 'http://oa.example.com/e/9' }] });
    assert.equal(oa.popupSeconds, 10);
    // What lisi's Qiao client syncs: the notice comes from "RTX 通知" (the bridge), not from "system".
    const synced = await rig.call<{ items: Array<{ kind: string; data: { title: string; sender: unknown } }> }>('im.sync', { userId: id.lisi, since: 0, limit: 1000 });
    const seen = synced.items.find((i) => i.kind === 'broadcast' && i.data.title === 'OA 审批');
    assert.deepEqual(seen?.data.sender, { kind: 'plugin', id: null, name: 'RTX 通知' });

    res = await sdk(proxy, 'SendNotify.cgi', { form: { receiver: 'all', msg: '全员通知：周五停电' } });
    assert.match(res.text, /操作成功/);
    res = await sdk(proxy, 'sendnotifybydepart.php', { query: { receiverdepart: '公司\\市场部', msg: '市场部开会', title: '部门广播', online: 0 } });
    assert.match(res.text, /操作成功/);
    const marketing = (await rig.call<{ departments: Array<{ id: number; name: string }> }>('org.departments.list')).departments.find((d) => d.name === '市场部')!;
    await eventually(async () => {
      const list = await broadcasts();
      const all = list.find((b) => b.body.text === '全员通知：周五停电');
      assert.ok(all);
      assert.deepEqual(all.audience, { all: true });
      const dept = list.find((b) => b.title === '部门广播');
      assert.ok(dept);
      assert.deepEqual(dept.audience, { departmentIds: [marketing.id], includeSubDepartments: true });
      assert.deepEqual([all.sender, dept.sender], [{ kind: 'plugin', id: null, name: 'RTX 通知' }, { kind: 'plugin', id: null, name: 'RTX 通知' }]);
    });
    // A 群 the bridge has seen: its members (as Qiao knows them) get it. One it has not seen: kept as a failure.
    res = await sdk(proxy, 'sendnotifybygroup.php', { query: { receivergroup: '项目群', msg: '群通知', title: '群', online: 0 } });
    assert.match(res.text, /操作成功/);
    await eventually(async () => {
      const g = (await broadcasts()).find((b) => b.title === '群');
      assert.ok(g);
      assert.deepEqual([...g.audience.userIds].sort(), [id.zhangsan, id.lisi, id.wangwu].sort());
    });
    await control(rig.rtx, 'POST', '/groups', { name: '没人说过话的群', members: ['zhangsan', 'wangwu'] });
    res = await sdk(proxy, 'sendnotifybygroup.php', { query: { receivergroup: '没人说过话的群', msg: 'x', online: 0 } });
    assert.match(res.text, /操作成功/, 'RTX itself accepted it');
    await eventually(async () => {
      const f = await rig.call<{ toQiao: Array<{ error: string }> }>('rtxBridge.relay.failures');
      assert.ok(f.toQiao.some((x) => /没人说过话的群.*has not been seen by the bridge yet/.test(x.error)));
    });
    // Pages the bridge has no business with pass through unchanged.
    assert.equal((await sdk(proxy, 'GetMobile.cgi', { query: { receiver: 'zhangsan' } })).text, (await sdk(rig.rtx, 'GetMobile.cgi', { query: { receiver: 'zhangsan' } })).text);
    // What RTX refuses is not copied: the caller sees RTX's own answer.
    res = await sdk(proxy, 'sendnotifybydepart.php', { query: { receiverdepart: '公司\\不存在', msg: 'x' } });
    assert.doesNotMatch(res.text, /操作成功/);
    await eventually(async () => {
      const status = await rig.call<{ relay: { counters: Record<string, number> } }>('rtxBridge.status');
      assert.equal(status.relay.counters['toQiao.notifications'], 4);
      assert.equal(status.relay.counters['toQiao.broadcasts'], 2);
      assert.equal(status.relay.counters['toQiao.failed'], 1);
    });
  });

  it('shows RTX presence in Qiao, and Qiao presence to RTX callers of getstatus.php', async function () {
    this.timeout(30_000);
    await control(rig.rtx, 'PUT', '/users/zhangsan/presence', { status: 1 });
    await control(rig.rtx, 'PUT', '/users/wangwu/presence', { status: 2 });
    await eventually(async () => {
      const { states } = await rig.call<{ states: Record<string, { status: number } | null> }>('rtxBridge.presence.get', { accounts: ['zhangsan', 'wangwu', 'lisi'] });
      assert.equal(states.zhangsan?.status, 1);
      assert.equal(states.wangwu?.status, 2);
      assert.equal(states.lisi?.status, 0);
    });
    // lisi connects a Qiao client: the gateway reports the socket to the core's presence service, as here.
    const broker = rig.core.app.broker as unknown as ServiceBroker;
    const socket = { id: 'test-socket-1', userId: id.lisi, sessionId: 1, deviceType: 'android', deviceId: 'phone-1', status: 'online', since: new Date().toISOString() };
    await broker.broadcast('presence.report', { nodeId: 'test-gateway', kind: 'delta', upserts: [socket], removals: [] });
    try {
      const proxy = { url: agent.sdkProxyUrl } as RtxEmulator;
      assert.equal((await sdk(rig.rtx, 'getstatus.php', { query: { username: 'lisi' } })).text, '0', 'RTX itself has lisi offline');
      await eventually(async () => assert.equal((await sdk(proxy, 'getstatus.php', { query: { username: 'lisi' } })).text, '1'));
      assert.equal((await sdk(proxy, 'getstatus.php', { query: { username: 'wangwu' } })).text, '2', 'RTX presence otherwise');
    } finally {
      await broker.broadcast('presence.report', { nodeId: 'test-gateway', kind: 'delta', upserts: [], removals: [socket.id] });
    }
  });

  it('holds messages while RTX refuses the agent by IP (SDKProperty.xml), and delivers them once allowed', async function () {
    this.timeout(30_000);
    fs.writeFileSync(propFile, sdkProperty(['10.1.1.1']));
    rig.rtx.reloadSdkProperty();
    const conv = single(id.zhangsan, id.lisi);
    const before = (await inbox('zhangsan')).ims.length;
    await send(conv, id.lisi, 'IP 受限时发的');
    await eventually(async () => {
      const s = await rig.call<{ link: { rtx: { sdk: string; detail: string } } }>('rtxBridge.status');
      assert.equal(s.link.rtx.sdk, 'ip-limited');
      assert.match(s.link.rtx.detail, /IP 受限/);
    });
    assert.equal((await inbox('zhangsan')).ims.length, before);
    fs.writeFileSync(propFile, sdkProperty([LAN]));
    rig.rtx.reloadSdkProperty();
    await eventually(async () => assert.equal((await inbox('zhangsan')).ims.at(-1)?.text, 'IP 受限时发的'));
  });

  it('applies an org delta from RTX — added, changed, moved, removed — and never wipes', async function () {
    this.timeout(60_000);
    assert.equal((await rig.sync()).status, 'unchanged');
    await addRtxUsers(rig.rtx, [{ uid: 'newbie', name: '新人', departments: ['公司\\研发部'] }]);
    await control(rig.rtx, 'PATCH', '/users/wangwu', { name: '王五（改）', mobile: '13800000000' });
    await control(rig.rtx, 'PATCH', '/users/zhangsan', { departments: ['公司\\市场部'] });
    await control(rig.rtx, 'DELETE', '/users/zhurongji');
    const run = await rig.sync();
    assert.equal(run.status, 'ok', JSON.stringify(run));
    assert.deepEqual([run.added, run.changed, run.moved, run.removed, run.departmentsAdded], [1, 1, 1, 1, 1]);
    const newbie = await rig.call<{ name: string; departments: unknown[] }>('org.users.get', { id: await rig.userId('newbie') });
    assert.equal(newbie.name, '新人');
    const ww = await rig.call<{ name: string; mobile: string }>('org.users.get', { id: id.wangwu });
    assert.deepEqual([ww.name, ww.mobile], ['王五（改）', '13800000000']);
    const depts = (await rig.call<{ departments: Array<{ id: number; name: string }> }>('org.departments.list')).departments;
    const zs = await rig.call<{ departments: Array<{ departmentId: number }> }>('org.users.get', { id: id.zhangsan });
    assert.deepEqual(
      zs.departments.map((d) => depts.find((x) => x.id === d.departmentId)?.name),
      ['市场部'],
    );
    const zr = await rig.call<{ status: string }>('org.users.get', { id: id.zhurongji });
    assert.equal(zr.status, 'resigned', 'removed in RTX: resigned in Qiao, history kept');

    // RTX comes back empty (a broken export, a wrong server): refused, nothing removed.
    const { users } = await control<{ users: Array<{ uid: string }> }>(rig.rtx, 'GET', '/users');
    const saved = await control(rig.rtx, 'GET', '/org.xml').catch(() => null);
    void saved;
    for (const u of users) if (u.uid !== RELAY.account) await control(rig.rtx, 'DELETE', `/users/${encodeURIComponent(u.uid)}`);
    const refused = await rig.sync();
    assert.equal(refused.status, 'refused');
    assert.match(refused.error, /refusing/);
    assert.equal((await rig.call<{ status: string }>('org.users.get', { id: id.wangwu })).status, 'active');
    // Put them back: the next sync has nothing to do for them.
    await addRtxUsers(rig.rtx, users.filter((u) => u.uid !== RELAY.account).map((u) => ({ uid: u.uid })));
  });

  it('shows link status, sync history and relay counters to the admin', async () => {
    const s = await rig.call<any>('rtxBridge.status');
    assert.equal(s.link.connected, true);
    assert.equal(s.link.rtx.sdk, 'up');
    assert.equal(s.link.rtx.host, 'up', 'the RTX-host interface answers its health call');
    assert.equal(s.pairedAgent.name, 'test agent');
    assert.ok(s.relay.counters['toQiao.messages'] >= 5);
    assert.ok(s.relay.counters['toRtx.delivered'] >= 8);
    assert.equal(s.relay.counters['toRtx.skipped'], 2, 'the two messages of the discussion with 81 RTX people');
    assert.equal(s.rtxMaxConversationMembers, 80);
    const history = await rig.call<Array<{ status: string; trigger: string }>>('rtxBridge.sync.history');
    assert.ok(history.length >= 4);
    assert.deepEqual(
      history.slice(0, 2).map((r) => r.status),
      ['refused', 'ok'],
    );
    const started = await rig.call<{ id: number; status: string }>('rtxBridge.sync.run', { wait: false });
    assert.equal(started.status, 'running');
    await eventually(async () => assert.notEqual((await rig.call<Array<{ id: number; status: string }>>('rtxBridge.sync.history', { limit: 1 }))[0]!.status, 'running'));
    assert.equal(
      (await rig.call<Array<{ id: number }>>('rtxBridge.sync.history', { limit: 1 }))[0]!.id,
      started.id,
    );
    const accounts = await rig.call<{ total: number; accounts: Array<{ rtxAccount: string; qiaoAccount: string }> }>('rtxBridge.accounts.list', { search: 'zhang' });
    assert.deepEqual(
      accounts.accounts.map((a) => [a.rtxAccount, a.qiaoAccount]),
      [['zhangsan', 'zhangsan']],
    );
  });

  it('pairs only with a valid, unused code; a new pairing revokes the old agent, whose credential then stops working', async function () {
    this.timeout(30_000);
    const base = `http://127.0.0.1:${rig.port}`;
    const pair = (code: string) => fetch(`${base}${PAIR_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, name: 'x' }) });
    assert.equal((await pair('QIAO-AAAA-BBBB-CCCC-DDDD')).status, 401);
    const upgrade = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${rig.port}${LINK_PATH}`, { headers });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => undefined);
      });
    assert.equal(await upgrade({}), 401, 'no credential, no socket');
    const stored = JSON.parse(fs.readFileSync(path.join(rig.stateDir, 'qiao-link.json'), 'utf8')) as { agentId: string; credential: string };
    assert.equal(await upgrade({ authorization: `Bearer ${stored.agentId}.${'x'.repeat(43)}` }), 401, 'a wrong secret is refused');

    const { code } = await rig.call<{ code: string }>('rtxBridge.connectionCode.create');
    const first = await pair(code);
    assert.equal(first.status, 200);
    assert.equal((await pair(code)).status, 401, 'a code works once');
    await eventually(() => assert.equal(agent.status().link.state, 'unauthorised'));
    assert.equal(await upgrade({ authorization: `Bearer ${stored.agentId}.${stored.credential}` }), 401, 'the old credential is revoked');
    const fresh = (await first.json()) as { agentId: string; credential: string };
    assert.equal(await upgrade({ authorization: `Bearer ${fresh.agentId}.${fresh.credential}` }), 101);
  });
});
