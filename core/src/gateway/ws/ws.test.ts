import assert from 'node:assert/strict';
import http from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { WebSocket as WsClient } from 'ws';
import { forEachDatabase } from '../../../../test/support/databases.ts';
import { SUPER } from '../../auth/test-kit.ts';
import clientApi from '../client/index.ts';
import { startClientApp, until, type ClientApp, type Person } from '../client/test-kit.ts';
import { TestSocket } from './test-socket.ts';

forEachDatabase('client WebSocket', ({ url }) => {
  let app: ClientApp;
  let wsUrl: string;
  let alice: Person;
  let bob: Person;
  let chat: string;
  const open = (token?: string) => TestSocket.open(wsUrl, token);

  before(async function () {
    this.timeout(60_000);
    app = await startClientApp(url());
    wsUrl = `${app.base.replace('http', 'ws')}/v1/ws`;
    [alice, bob] = [await app.user('alice'), await app.user('bob')];
    chat = (await alice.client.conversations.create({ type: 'single', members: [bob.id] })).id;
  });
  after(async () => app?.stop());

  it('authenticates with the first frame or the upgrade request, and refuses forged tokens', async () => {
    const s = await open();
    s.send({ type: 'auth', token: bob.token, id: 7 });
    const ready = await s.take((f) => f.type === 'ready');
    assert.deepEqual([ready.userId, ready.account, ready.sessionId, ready.deviceId, ready.ref], [bob.id, 'bob', bob.sessionId, 'windows-bob', 7]);
    assert.equal(ready.head, await bob.client.inbox.head());
    s.send({ type: 'auth', token: bob.token });
    assert.equal((await s.take((f) => f.type === 'error')).message, 'this socket is authenticated already');
    s.close();

    const q = await TestSocket.open(`${wsUrl}?token=${encodeURIComponent(bob.token)}`);
    assert.equal((await q.take((f) => f.type === 'ready')).userId, bob.id);
    q.close();

    const forged = await open();
    forged.send({ type: 'auth', token: 'A'.repeat(43) });
    const refusal = await forged.take((f) => f.type === 'error');
    assert.deepEqual([refusal.code, refusal.field], ['QIAO_UNAUTHENTICATED', 'token']);
    assert.equal((await forged.closed).code, 4401);

    // A bad token on the upgrade request is refused before any socket exists.
    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get(`${app.base}/v1/ws?token=forged`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
      req.on('upgrade', () => reject(new Error('upgraded with a forged token')));
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.body).error.field, 'token');
  });

  it('answers malformed frames with an error frame naming the field, and keeps the socket', async () => {
    const s = await open();
    const cases: Array<[string | Uint8Array, string, string]> = [
      ['{bad json', 'QIAO_BAD_REQUEST', 'frame'],
      ['[1,2]', 'QIAO_BAD_REQUEST', 'frame'],
      ['"auth"', 'QIAO_BAD_REQUEST', 'frame'],
      [new Uint8Array([1, 2, 3]), 'QIAO_BAD_REQUEST', 'frame'],
      ['{"type":"dance"}', 'QIAO_VALIDATION', 'type'],
      ['{"type":"watch","userIds":[1]}', 'QIAO_UNAUTHENTICATED', 'type'],
      ['{"type":"auth"}', 'QIAO_VALIDATION', 'token'],
    ];
    for (const [frame, code, field] of cases) {
      s.send(frame);
      const e = await s.take((f) => f.type === 'error');
      assert.deepEqual([e.code, e.field], [code, field], JSON.stringify(e));
    }
    s.send({ type: 'auth', token: alice.token });
    await s.take((f) => f.type === 'ready');
    for (const [frame, field] of [
      [{ type: 'ping', extra: 1, id: 'p1' }, 'extra'],
      [{ type: 'presence', status: 'busy' }, 'status'],
      [{ type: 'watch', userIds: Array.from({ length: 501 }, (_, i) => i + 1) }, 'userIds'],
      [{ type: 'watch', userIds: [1, -2] }, 'userIds[1]'],
      [{ type: 'ping', id: { x: 1 } }, 'id'],
    ] as const) {
      s.send(frame);
      const e = await s.take((f) => f.type === 'error');
      assert.equal(e.field, field, JSON.stringify(e));
    }
    s.send({ type: 'ping', id: 'still-there' });
    assert.equal((await s.take((f) => f.type === 'pong')).ref, 'still-there');
    s.close();
  });

  it('refuses an oversize frame with an error, and closes on one too large to read (1009)', async () => {
    const s = await open(alice.token);
    s.send(JSON.stringify({ type: 'ping', id: 'x'.repeat(20_000) }));
    const e = await s.take((f) => f.type === 'error');
    assert.equal(e.code, 'QIAO_PAYLOAD_TOO_LARGE');
    s.send({ type: 'ping' });
    await s.take((f) => f.type === 'pong');
    s.send('x'.repeat(2 * 1024 * 1024));
    assert.equal((await s.closed).code, 1009);
  });

  it('rate-limits a flood with a clear error frame and closes the socket when it goes on', async () => {
    const s = await open(alice.token);
    for (let i = 0; i < 400; i++) s.send({ type: 'ping', id: i });
    const limited = await s.take((f) => f.type === 'error' && f.code === 'QIAO_RATE_LIMITED');
    assert.match(limited.message, /too many frames: at most 30 at once and 10 a second/);
    assert.equal(typeof limited.ref, 'number', 'the refusal names the frame it refused, so its sender need not wait');
    assert.ok(!s.frames.some((f) => f.type === 'pong' && f.ref === limited.ref));
    const closed = await s.closed;
    assert.deepEqual([closed.code, closed.reason], [1008, 'rate limit exceeded repeatedly']);
    const pongs = s.frames.filter((f) => f.type === 'pong').length;
    assert.ok(pongs >= 25 && pongs < 60, `${pongs} frames were answered`);
    // Another socket of the same person is not affected.
    const other = await open(alice.token);
    other.send({ type: 'ping' });
    await other.take((f) => f.type === 'pong');
    other.close();
  });

  it('pushes wake-ups only, never the record, to every device of the person', async () => {
    const phone = await app.user('bob', 'android');
    const [pc, mobile] = [await open(bob.token), await open(phone.token)];
    const m = await alice.client.messages.send(chat, { type: 'text', body: { text: 'secret' } });
    const head = await bob.client.inbox.head();
    for (const s of [pc, mobile]) {
      const push = await s.take((f) => f.type === 'sync' && f.head === head);
      assert.deepEqual(Object.keys(push).sort(), ['head', 'type']);
    }
    assert.ok(![...pc.frames, ...mobile.frames].some((f) => JSON.stringify(f).includes('secret')));
    // The record is in the inbox, for each device alike.
    const items = (await bob.client.inbox.read(head - 1)).items;
    assert.equal((items[0].data as { id: number }).id, m.id);
    pc.close();
    mobile.close();
  });

  it('closes the sockets of a session that ends, saying why, and delivers a wipe order', async () => {
    const laptop = await app.user('bob', 'mac');
    const s = await open(laptop.token);
    const keep = await open(bob.token);
    await app.broker.call('auth.sessions.wipe', { sessionId: laptop.sessionId }, { meta: SUPER });
    await s.take((f) => f.type === 'wipe');
    const wiped = await app.http('GET', '/v1/me', { token: laptop.token });
    assert.equal(wiped.headers.get('x-qiao-wipe'), '1');
    await app.broker.call('auth.sessions.revoke', { sessionId: laptop.sessionId }, { meta: SUPER });
    assert.equal((await s.take((f) => f.type === 'revoked')).reason, 'forced-offline');
    const closed = await s.closed;
    assert.equal(closed.code, 4401);
    assert.match(closed.reason, /session ended: forced-offline/);
    // Bob's other session is untouched.
    keep.send({ type: 'ping' });
    await keep.take((f) => f.type === 'pong');
    // Logging out over HTTP ends the socket of that session too.
    const tablet = await app.user('bob', 'ios');
    const t = await open(tablet.token);
    await tablet.client.auth.logout();
    assert.equal((await t.take((f) => f.type === 'revoked')).reason, 'logout');
    assert.equal((await t.closed).code, 4401);
    keep.close();
  });

  it('keeps presence per device: online, away, offline, pushed to watchers and asked by im', async () => {
    const watcher = await open(alice.token);
    watcher.send({ type: 'watch', userIds: [bob.id], id: 'w' });
    assert.deepEqual((await watcher.take((f) => f.type === 'presence' && f.ref === 'w')).users, [{ userId: bob.id, status: 'offline', devices: [] }]);
    const phone = await app.user('bob', 'android');
    const pc = await open(bob.token);
    const mobile = await open(phone.token);
    const seen = async (status: string, devices: string[]) => {
      const f = await watcher.take((x) => x.type === 'presence' && x.users[0].status === status && x.users[0].devices.map((d: { deviceId: string; status: string }) => `${d.deviceId}:${d.status}`).join() === devices.join());
      return f.users[0];
    };
    await seen('online', ['android-bob:online', 'windows-bob:online']);
    mobile.send({ type: 'presence', status: 'away', id: 'a' });
    await mobile.take((f) => f.type === 'ack' && f.ref === 'a');
    await seen('online', ['android-bob:away', 'windows-bob:online']);
    pc.send({ type: 'presence', status: 'away' });
    await seen('away', ['android-bob:away', 'windows-bob:away']);
    assert.deepEqual((await app.call<{ userIds: number[] }>('presence.online')).userIds.includes(bob.id), true);
    assert.deepEqual((await app.call<{ userIds: number[] }>('presence.online', { includeAway: false })).userIds.includes(bob.id), false);
    const [viaHttp] = await alice.client.presence.get([bob.id]);
    assert.equal(viaHttp.status, 'away');
    pc.close();
    mobile.close();
    await seen('offline', []);
    assert.equal((await app.call<{ userIds: number[] }>('presence.online')).userIds.includes(bob.id), false);
    // im's "online only" broadcasts ask presence.
    const b = await app.broker.call<{ recipientCount: number }, object>('im.broadcasts.send', { audience: { all: true }, onlineOnly: true, type: 'text', body: { text: 'who is here?' } }, { meta: SUPER });
    assert.equal(b.recipientCount, 1, 'alice only: her watcher socket is open');
    watcher.close();
  });

  describe('with tight limits (a second gateway on the same broker)', () => {
    let gw: FastifyInstance;
    let tightUrl: string;
    before(async () => {
      gw = Fastify();
      gw.decorate('broker', app.broker);
      gw.register(clientApi, { sockets: { heartbeatMs: 150, authTimeoutMs: 300 } });
      await gw.listen({ port: 0, host: '127.0.0.1' });
      tightUrl = `ws://127.0.0.1:${(gw.server.address() as { port: number }).port}/v1/ws`;
    });
    after(async () => gw?.close());

    it('closes a socket that never authenticates', async () => {
      const s = await TestSocket.open(tightUrl);
      assert.equal((await s.take((f) => f.type === 'error')).field, 'token');
      assert.equal((await s.closed).code, 4408);
    });

    it('drops a peer that stops answering pings, and keeps one that answers', async () => {
      const silent = new WsClient(`${tightUrl}?token=${encodeURIComponent(alice.token)}`, { autoPong: false });
      const alive = new WsClient(`${tightUrl}?token=${encodeURIComponent(alice.token)}`);
      const closedAt = new Promise<number>((resolve) => silent.on('close', (code) => resolve(code)));
      await Promise.all([silent, alive].map((w) => new Promise((r) => w.once('open', r))));
      assert.equal(await closedAt, 1006, 'terminated without a close frame');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(alive.readyState, WsClient.OPEN);
      alive.close();
    });

    it('closes its sockets with 1001 when the gateway stops', async () => {
      const s = await TestSocket.open(tightUrl, alice.token);
      const other = Fastify();
      other.decorate('broker', app.broker);
      other.register(clientApi, { sockets: {} });
      await other.listen({ port: 0, host: '127.0.0.1' });
      const o = await TestSocket.open(`ws://127.0.0.1:${(other.server.address() as { port: number }).port}/v1/ws`, alice.token);
      const stats = () => app.admin<{ connections: number }>('presence.stats');
      const before = (await until('presence to count the new socket', async () => ((await stats()).connections >= 2 ? stats() : null)))!;
      await other.close();
      const closed = await o.closed;
      assert.deepEqual([closed.code, closed.reason], [1001, 'server shutting down']);
      await until('presence to forget the stopped gateway’s socket', async () => (await stats()).connections === before.connections - 1);
      s.close();
    });
  });
});
