import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../../test/support/databases.ts';
import { SUPER } from '../../auth/test-kit.ts';
import { startClientApp, until, type ClientApp, type Person } from '../client/test-kit.ts';
import { TestSocket } from './test-socket.ts';

/**
 * Presence as a client may know it: only of people the directory lets them see (anyone else is answered
 * like an id of nobody, over HTTP and on the socket alike), and with external sources (RTX) merged in.
 */
forEachDatabase('presence for clients', ({ url }) => {
  let app: ClientApp;
  let wsUrl: string;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let dave: Person;
  let rule: number;
  const NOBODY = 987_654;
  const offline = (userId: number) => ({ userId, status: 'offline', devices: [] });
  const org = <T>(action: string, params: object) => app.broker.call<T, object>(`org.${action}`, params, { meta: SUPER });
  const presenceOver = async (who: Person, ids: number[]) => {
    const r = await app.http('GET', `/v1/presence?userIds=${ids.join(',')}`, { token: who.token });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.users as Array<{ userId: number; status: string; devices: Array<Record<string, string>> }>;
  };

  before(async function () {
    this.timeout(60_000);
    app = await startClientApp(url());
    wsUrl = `${app.base.replace('http', 'ws')}/v1/ws`;
    [alice, bob, carol, dave] = [await app.user('alice'), await app.user('bob'), await app.user('carol'), await app.user('dave')];
    // Carol is hidden from everyone but bob.
    rule = (await org<{ id: number }>('visibility.create', { kind: 'hide', targets: { users: [carol.id] }, whitelist: { users: [bob.id] } })).id;
  });
  after(async () => app?.stop());

  it('answers GET /v1/presence for a hidden person exactly as for an id of nobody', async () => {
    const carolPc = await TestSocket.open(wsUrl, carol.token);
    const davePc = await TestSocket.open(wsUrl, dave.token);
    await until('presence to see both', async () => {
      const online = (await app.call<{ userIds: number[] }>('presence.online')).userIds;
      return online.includes(carol.id) && online.includes(dave.id);
    });
    const seen = await presenceOver(alice, [carol.id, dave.id, NOBODY]);
    assert.deepEqual(seen[0], offline(carol.id));
    assert.deepEqual(seen[2], offline(NOBODY));
    assert.deepEqual([seen[1].userId, seen[1].status, seen[1].devices.map((d) => d.deviceId)], [dave.id, 'online', ['windows-dave']]);
    // Bob, whom the rule lets see carol, sees her online.
    assert.equal((await presenceOver(bob, [carol.id]))[0].status, 'online');
    carolPc.close();
    davePc.close();
    await until('both offline', async () => (await app.call<{ userIds: number[] }>('presence.online')).userIds.every((u) => u !== carol.id && u !== dave.id));
  });

  it('never pushes a hidden person’s presence to a watcher, and pushes a visible one’s', async () => {
    const watcher = await TestSocket.open(wsUrl, alice.token);
    watcher.send({ type: 'watch', userIds: [carol.id, dave.id, NOBODY], id: 'w' });
    assert.deepEqual((await watcher.take((f) => f.type === 'presence' && f.ref === 'w')).users, [offline(carol.id), offline(dave.id), offline(NOBODY)]);
    const friend = await TestSocket.open(wsUrl, bob.token);
    friend.send({ type: 'watch', userIds: [carol.id], id: 'f' });
    await friend.take((f) => f.ref === 'f');

    const carolPc = await TestSocket.open(wsUrl, carol.token);
    // Bob is told; that is when alice would have been told too, had she been allowed to know.
    await friend.take((f) => f.type === 'presence' && f.users[0].userId === carol.id && f.users[0].status === 'online');
    carolPc.send({ type: 'presence', status: 'away', id: 'a' });
    await friend.take((f) => f.type === 'presence' && f.users[0].status === 'away');
    const davePc = await TestSocket.open(wsUrl, dave.token);
    await watcher.take((f) => f.type === 'presence' && f.users[0].userId === dave.id && f.users[0].status === 'online');
    assert.ok(!watcher.frames.some((f) => f.type === 'presence' && f.users.some((u: { userId: number }) => u.userId === carol.id)), JSON.stringify(watcher.frames));

    // The rule goes: alice's watch now covers carol, and she is sent carol's presence at once.
    await org('visibility.delete', { id: rule });
    const shown = await watcher.take((f) => f.type === 'presence' && f.users.some((u: { userId: number }) => u.userId === carol.id));
    assert.equal(shown.users[0].status, 'away');
    // It comes back: alice is sent carol as an id of nobody, then nothing more about her.
    rule = (await org<{ id: number }>('visibility.create', { kind: 'hide', targets: { users: [carol.id] }, whitelist: { users: [bob.id] } })).id;
    assert.deepEqual((await watcher.take((f) => f.type === 'presence' && f.users.some((u: { userId: number }) => u.userId === carol.id))).users, [offline(carol.id)]);
    carolPc.close();
    await friend.take((f) => f.type === 'presence' && f.users[0].status === 'offline');
    davePc.close();
    await watcher.take((f) => f.type === 'presence' && f.users[0].userId === dave.id && f.users[0].status === 'offline');
    assert.ok(!watcher.frames.some((f) => f.type === 'presence' && f.users.some((u: { userId: number }) => u.userId === carol.id)), JSON.stringify(watcher.frames));
    watcher.close();
    friend.close();
  });

  it('shows what an external source says as a device of its own, pushed to watchers like any change', async () => {
    const watcher = await TestSocket.open(wsUrl, alice.token);
    watcher.send({ type: 'watch', userIds: [dave.id, carol.id], id: 'w' });
    await watcher.take((f) => f.ref === 'w');
    await app.call('presence.external.set', { source: 'rtx', entries: [{ userId: dave.id, status: 'online' }, { userId: carol.id, status: 'online' }] });
    const pushed = await watcher.take((f) => f.type === 'presence' && f.users[0].userId === dave.id && f.users[0].status === 'online');
    const { since, ...device } = pushed.users[0].devices[0];
    assert.deepEqual(device, { deviceType: 'external', deviceId: 'rtx', source: 'rtx', status: 'online' });
    assert.ok(!Number.isNaN(Date.parse(since)));
    // Over HTTP too, merged with the person's own devices; and im's "online only" counts them.
    const davePc = await TestSocket.open(wsUrl, dave.token);
    davePc.send({ type: 'presence', status: 'away' });
    await until('dave’s own device to show away', async () => (await presenceOver(alice, [dave.id]))[0].devices.some((d) => d.deviceId === 'windows-dave' && d.status === 'away'));
    const [merged] = await presenceOver(alice, [dave.id]);
    assert.equal(merged.status, 'online', 'the best of device and source');
    assert.deepEqual(merged.devices.map((d) => `${d.deviceType}/${d.deviceId}:${d.status}`), ['external/rtx:online', 'windows/windows-dave:away']);
    assert.ok((await app.call<{ userIds: number[] }>('presence.online', { includeAway: false })).userIds.includes(dave.id));
    // The source's link goes down: only dave's own device is left.
    await app.call('presence.external.clear', { source: 'rtx' });
    const after = await watcher.take((f) => f.type === 'presence' && f.users[0].userId === dave.id && f.users[0].status === 'away');
    assert.deepEqual(after.users[0].devices.map((d: { deviceId: string }) => d.deviceId), ['windows-dave']);
    // Hidden carol's external status was never pushed to alice, nor is it shown to her.
    assert.ok(!watcher.frames.some((f) => f.type === 'presence' && f.users.some((u: { userId: number }) => u.userId === carol.id)), JSON.stringify(watcher.frames));
    assert.deepEqual((await presenceOver(alice, [carol.id]))[0], offline(carol.id));
    davePc.close();
    watcher.close();
  });
});
