import assert from 'node:assert/strict';
import { forEachDatabase } from '../../test/support/databases.ts';
import { control } from '../emulator/test-support.ts';
import { addRtxUsers, eventually, startAdminApi, startBridgeRig, type AdminApi, type BridgeRig } from './test-kit.ts';

/**
 * The RTX 集成 page will be a thin web layer over the admin HTTP API, so everything an admin does with the
 * bridge is checked here through that API (koa, /api/admin, an ordinary admin's bearer token) and through
 * the client the `qiao` CLI uses — never by calling the broker directly.
 */
forEachDatabase('rtx bridge: the admin side through the admin HTTP API', ({ url }) => {
  let rig: BridgeRig;
  let api: AdminApi;
  const R = '/api/admin/rtx-bridge';

  before(async function () {
    this.timeout(90_000);
    rig = await startBridgeRig({ databaseUrl: url() });
    await addRtxUsers(rig.rtx, [
      { uid: 'zhangsan', name: '张三' },
      { uid: 'lisi', name: '李四' },
      { uid: '王五', name: '王五' },
    ]);
    api = await startAdminApi(rig);
  });
  after(async function () {
    this.timeout(30_000);
    await rig?.stop();
  });

  it('mounts every RTX 集成 action as an admin route, for signed-in admins only', async () => {
    const routes = (await api.http<string[]>('GET', '/api/admin/routes')).body;
    for (const route of [
      `POST ${R}/connection-code → rtxBridge.connectionCode.create`,
      `GET ${R}/status → rtxBridge.status`,
      `POST ${R}/sync → rtxBridge.sync.run`,
      `GET ${R}/sync-runs → rtxBridge.sync.history`,
      `GET ${R}/failures → rtxBridge.relay.failures`,
      `POST ${R}/failures/retry → rtxBridge.relay.retry`,
      `GET ${R}/accounts → rtxBridge.accounts.list`,
      `PUT ${R}/accounts/:rtxAccount → rtxBridge.accounts.map`,
      `POST ${R}/agents/revoke → rtxBridge.agents.revoke`,
    ]) {
      assert.ok(routes.includes(route), `${route} is mounted (have: ${routes.filter((r) => r.includes('rtx')).join('; ')})`);
    }
    // The client API's actions are not admin actions.
    assert.ok(!routes.some((r) => /credentials|presence\.get/.test(r)));
    const stranger = await api.http('GET', `${R}/status`, { token: null });
    assert.equal(stranger.status, 401);
    assert.equal((await api.http('POST', `${R}/connection-code`, { token: 'not-a-token' })).status, 401);
  });

  it('issues a connection code an agent pairs with, then shows the link', async function () {
    this.timeout(30_000);
    let status = (await api.http('GET', `${R}/status`)).body;
    assert.equal(status.link.connected, false);
    assert.equal(status.pairedAgent, null);
    const issued = await api.http<{ code: string; expiresAt: string; linkUrl: string }>('POST', `${R}/connection-code`);
    assert.equal(issued.status, 200);
    assert.match(issued.body.code, /^QIAO-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    assert.ok(Date.parse(issued.body.expiresAt) > Date.now());
    assert.match(issued.body.linkUrl, /^ws:\/\//);
    await rig.startAgent({ code: issued.body.code, name: 'agent paired by the admin' });
    status = (await api.http('GET', `${R}/status`)).body;
    assert.equal(status.link.connected, true);
    assert.equal(status.link.agentName, 'agent paired by the admin');
    assert.equal(status.pairedAgent.name, 'agent paired by the admin');
    assert.match(status.link.address, /127\.0\.0\.1/);
  });

  it('runs a sync when asked (waiting, or not) and lists the sync history', async function () {
    this.timeout(60_000);
    const run = await api.http('POST', `${R}/sync`, { body: {} });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.ok(['ok', 'unchanged'].includes(run.body.status), JSON.stringify(run.body));
    assert.equal((await rig.call<{ name: string }>('org.users.get', { id: await rig.userId('王五') })).name, '王五');
    const started = await api.http<{ id: number; status: string; trigger: string }>('POST', `${R}/sync`, { body: { wait: false } });
    assert.equal(started.body.status, 'running');
    assert.equal(started.body.trigger, 'admin');
    const latest = await eventually(async () => {
      const [r] = (await api.http<Array<{ id: number; status: string }>>('GET', `${R}/sync-runs?limit=1`)).body;
      assert.notEqual(r!.status, 'running');
      return r!;
    });
    assert.equal(latest.id, started.body.id);
    assert.equal(latest.status, 'unchanged', 'nothing changed in RTX since the last sync');
    const history = (await api.http<Array<{ id: number }>>('GET', `${R}/sync-runs`)).body;
    assert.ok(history.length >= 2);
    assert.deepEqual(history.map((r) => r.id), [...history.map((r) => r.id)].sort((a, b) => b - a), 'newest first');
    const bad = await api.http('GET', `${R}/sync-runs?limit=0`);
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error.field, 'limit');
  });

  it('lists and sets account mappings, and retries relays that failed', async function () {
    this.timeout(60_000);
    // Someone added to RTX after the last sync writes at once: there is nobody in Qiao to send it as yet.
    await addRtxUsers(rig.rtx, [{ uid: 'latecomer', name: '迟到' }]);
    const qiaoAccount = await rig.call<{ id: number }>('org.users.create', { account: 'late.qiao', name: '迟到' });
    await control(rig.rtx, 'POST', '/messages', { from: 'latecomer', to: ['zhangsan'], text: '我来了' });
    const failure = await eventually(async () => {
      const f = (await api.http<{ toQiao: Array<{ id: string; error: string; item: { sender: string } }> }>('GET', `${R}/failures`)).body;
      assert.equal(f.toQiao.length, 1);
      return f.toQiao[0]!;
    });
    assert.match(failure.error, /"latecomer" has no Qiao account yet/);
    assert.equal(failure.item.sender, 'latecomer', 'the whole item is kept for the retry');
    await eventually(async () => {
      const s = (await api.http('GET', `${R}/status`)).body;
      assert.equal(s.relay.failedToQiao, 1);
      assert.equal(s.relay.counters['toQiao.failed'], 1);
    });

    // The admin says who that is in Qiao, then retries.
    const mapped = await api.http('PUT', `${R}/accounts/latecomer`, { body: { qiaoAccount: 'late.qiao' } });
    assert.equal(mapped.status, 200, JSON.stringify(mapped.body));
    assert.deepEqual(mapped.body, { rtxAccount: 'latecomer', qiaoAccount: 'late.qiao' });
    const listed = (await api.http<{ total: number; accounts: Array<Record<string, unknown>> }>('GET', `${R}/accounts?search=late&pageSize=10`)).body;
    assert.equal(listed.total, 1);
    assert.deepEqual(
      { rtx: listed.accounts[0]!.rtxAccount, qiao: listed.accounts[0]!.qiaoAccount, origin: listed.accounts[0]!.origin },
      { rtx: 'latecomer', qiao: 'late.qiao', origin: 'manual' },
    );
    const retried = await api.http('POST', `${R}/failures/retry`);
    assert.equal(retried.status, 200);
    assert.deepEqual(retried.body, { retried: 1, stored: 1, stillFailing: 0, outboundRequeued: 0 });
    const zhangsan = await rig.userId('zhangsan');
    const late = Number(qiaoAccount.id);
    const conv = `s:${Math.min(zhangsan, late)}:${Math.max(zhangsan, late)}`;
    const { messages } = await rig.call<{ messages: Array<{ senderId: number; body: { text: string } }> }>('im.messages.list', { conversationId: conv, userId: zhangsan });
    assert.deepEqual(messages.map((m) => [m.senderId, m.body.text]), [[late, '我来了']]);
    assert.equal((await api.http('GET', `${R}/failures`)).body.toQiao.length, 0);

    // RTX account names may be Chinese: the path carries them percent-encoded.
    const chinese = await api.http('PUT', `${R}/accounts/${encodeURIComponent('王五')}`, { body: { qiaoAccount: 'wangwu' } });
    assert.deepEqual(chinese.body, { rtxAccount: '王五', qiaoAccount: 'wangwu' });
    const clash = await api.http('PUT', `${R}/accounts/lisi`, { body: { qiaoAccount: 'ZhangSan' } });
    assert.equal(clash.status, 409);
    assert.equal(clash.body.error.field, 'qiaoAccount');
    assert.match(clash.body.error.message, /already belongs to the RTX account "zhangsan"/);
    const empty = await api.http('PUT', `${R}/accounts/lisi`, { body: {} });
    assert.equal(empty.status, 422);
    assert.equal(empty.body.error.field, 'qiaoAccount');
    const all = (await api.http<{ total: number; accounts: Array<{ rtxAccount: string; qiaoAccount: string }> }>('GET', `${R}/accounts`)).body;
    assert.deepEqual(
      Object.fromEntries(all.accounts.map((a) => [a.rtxAccount, a.qiaoAccount])),
      { latecomer: 'late.qiao', lisi: 'lisi', zhangsan: 'zhangsan', 王五: 'wangwu' },
    );
    // Every change an admin made is in the operation log, with who made it.
    const log = JSON.stringify(await rig.call('audit.operationLog.query', { action: 'rtxBridge.accounts.map' }));
    assert.match(log, /rtx-admin-/);
  });

  it('shows the relay counters', async () => {
    await control(rig.rtx, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: '计数' });
    await eventually(async () => {
      const { counters } = (await api.http('GET', `${R}/status`)).body.relay;
      assert.equal(counters['toQiao.messages'], 2, 'the retried one and this one');
      assert.equal(counters['toQiao.failed'], 1);
    });
  });

  it('is reachable through the client the qiao CLI uses', async () => {
    const { adminCall } = await import('@qiao/core/cli/client.ts');
    const opts = { url: api.base, token: api.token };
    const status = await adminCall<{ link: { connected: boolean } }>('rtxBridge.status', {}, opts);
    assert.equal(status.link.connected, true);
    const [last] = await adminCall<Array<{ trigger: string }>>('rtxBridge.sync.history', { limit: 1 }, opts);
    assert.equal(last!.trigger, 'admin');
    await assert.rejects(adminCall('rtxBridge.accounts.map', { rtxAccount: 'lisi', qiaoAccount: 'zhangsan' }, opts), (err: Error & { type?: string }) => {
      assert.match(err.message, /already belongs/);
      return true;
    });
  });

  it('revokes the agent, which drops its link', async function () {
    this.timeout(30_000);
    const revoked = await api.http('POST', `${R}/agents/revoke`);
    assert.deepEqual(revoked.body, { revoked: 1 });
    await eventually(async () => assert.equal((await api.http('GET', `${R}/status`)).body.link.connected, false));
    assert.equal((await api.http('GET', `${R}/status`)).body.pairedAgent, null);
  });
});
