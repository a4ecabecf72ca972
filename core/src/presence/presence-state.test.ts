import assert from 'node:assert/strict';
import { PresenceState, type PresenceConnection } from './presence-state.ts';
import { parseExternal, parseReport } from './reports.ts';

const conn = (id: string, userId: number, deviceId: string, status: 'online' | 'away' = 'online', since = '2026-01-01T00:00:00.000Z'): PresenceConnection => ({
  id,
  userId,
  sessionId: userId * 10,
  deviceType: deviceId.split('-')[0],
  deviceId,
  status,
  since,
});

describe('presence state', () => {
  it('works out a person from their sockets: a device is online if any socket is, a person if any device is', () => {
    const s = new PresenceState();
    assert.deepEqual(s.user(1), { userId: 1, status: 'offline', devices: [] });
    let changed = s.apply('gw1', [conn('a', 1, 'windows-1'), conn('b', 1, 'windows-1', 'away'), conn('c', 1, 'android-1', 'away')], []);
    assert.deepEqual(changed.map((p) => [p.userId, p.status]), [[1, 'online']]);
    assert.deepEqual(s.user(1).devices.map((d) => `${d.deviceId}:${d.status}`), ['android-1:away', 'windows-1:online']);
    changed = s.apply('gw1', [], ['a']);
    assert.deepEqual(changed.map((p) => p.status), ['away']);
    // A change that changes nothing about the person is not announced.
    assert.deepEqual(s.apply('gw1', [conn('d', 1, 'android-1', 'away')], []), []);
    assert.deepEqual(s.online(), [1]);
    assert.deepEqual(s.online(false), []);
  });

  it('keeps each gateway node apart: a node replaced or dropped takes only its own sockets', () => {
    const s = new PresenceState();
    s.apply('gw1', [conn('x', 1, 'web-1'), conn('y', 2, 'web-2')], []);
    s.apply('gw2', [conn('x', 3, 'web-3')], []);
    assert.deepEqual(s.online(), [1, 2, 3]);
    const replaced = s.replace('gw1', [conn('y', 2, 'web-2'), conn('z', 4, 'web-4')]);
    assert.deepEqual(replaced.map((p) => [p.userId, p.status]).sort(), [[1, 'offline'], [4, 'online']]);
    assert.deepEqual(s.drop('gw2').map((p) => [p.userId, p.status]), [[3, 'offline']]);
    assert.deepEqual(s.online(), [2, 4]);
    assert.deepEqual(s.stats(), { users: 2, online: 2, away: 0, connections: 2, byDeviceType: { web: 2 }, bySource: {}, nodes: 1 });
  });

  it('merges external sources with devices: the best status wins, each source shown as a device-like entry', () => {
    const s = new PresenceState();
    const ext = (userId: number, status: 'online' | 'away' | 'offline', at: number) => ({ userId, status, at, since: new Date(at).toISOString() });
    s.apply('gw1', [conn('a', 1, 'web-1', 'away')], []);
    let changed = s.setExternal('rtx', [ext(1, 'online', 1000), ext(2, 'away', 1000), ext(3, 'offline', 1000)]);
    // 3 was offline and stays so: not a change.
    assert.deepEqual(changed.map((p) => [p.userId, p.status]), [[1, 'online'], [2, 'away']]);
    assert.deepEqual(s.user(1), {
      userId: 1,
      status: 'online',
      devices: [
        { deviceType: 'external', deviceId: 'rtx', source: 'rtx', status: 'online', since: '1970-01-01T00:00:01.000Z' },
        { deviceType: 'web', deviceId: 'web-1', status: 'away', since: '2026-01-01T00:00:00.000Z' },
      ],
    });
    assert.deepEqual(s.user(3), { userId: 3, status: 'offline', devices: [] });
    // Another source adds its own entry; the person's status is the best of all.
    assert.deepEqual(s.setExternal('lync', [ext(2, 'online', 1100)]).map((p) => [p.userId, p.status]), [[2, 'online']]);
    assert.deepEqual(s.user(2).devices.map((d) => `${d.source}:${d.status}`), ['lync:online', 'rtx:away']);
    assert.deepEqual(s.online(), [1, 2]);
    assert.deepEqual(s.online(false), [1, 2]);
    assert.deepEqual(s.stats(), { users: 2, online: 2, away: 0, connections: 1, byDeviceType: { external: 3, web: 1 }, bySource: { rtx: 2, lync: 1 }, nodes: 1 });
    // A new status replaces the source's previous one; repeating it changes nothing and keeps its start.
    assert.deepEqual(s.setExternal('rtx', [ext(1, 'online', 1200)]), []);
    assert.equal(s.user(1).devices[0].since, '1970-01-01T00:00:01.000Z');
    changed = s.setExternal('rtx', [ext(1, 'offline', 1300)]);
    assert.deepEqual(changed.map((p) => [p.userId, p.status, p.devices.length]), [[1, 'away', 1]]);
    // Clearing a source takes all its entries, leaving devices and other sources alone.
    s.setExternal('rtx', [ext(1, 'online', 1400)]);
    changed = s.clearExternal('rtx', 1500);
    assert.deepEqual(changed.map((p) => [p.userId, p.status]).sort(), [[1, 'away'], [2, 'online']]);
    assert.deepEqual(s.user(2).devices.map((d) => d.source), ['lync']);
    assert.deepEqual(s.online(false), [2]);
  });

  it('settles on the newest external entry whatever order they arrive in', () => {
    const s = new PresenceState();
    const ext = (userId: number, status: 'online' | 'away' | 'offline', at: number) => ({ userId, status, at, since: new Date(at).toISOString() });
    s.setExternal('rtx', [ext(1, 'away', 2000)]);
    assert.deepEqual(s.setExternal('rtx', [ext(1, 'online', 1000)]), [], 'an older entry is ignored');
    assert.equal(s.user(1).status, 'away');
    // An offline entry is remembered, so an older online one cannot bring the person back.
    s.setExternal('rtx', [ext(1, 'offline', 3000)]);
    assert.deepEqual(s.setExternal('rtx', [ext(1, 'online', 2500)]), []);
    // Within one call, the last entry for a person wins.
    s.setExternal('rtx', [ext(2, 'online', 4000), ext(2, 'away', 4000)]);
    assert.equal(s.user(2).status, 'away');
    // A clear forgets what came before it, and refuses what is older than it arriving late.
    s.setExternal('rtx', [ext(3, 'online', 6000)]);
    s.clearExternal('rtx', 5000);
    assert.deepEqual(s.online(), [3], 'entries newer than the clear stay');
    assert.deepEqual(s.setExternal('rtx', [ext(4, 'online', 4500)]), []);
    assert.deepEqual(s.externalState(), [{ source: 'rtx', clearedAt: 5000, entries: [ext(3, 'online', 6000)] }]);
    // Handing the state to a fresh instance gives it the same picture.
    const fresh = new PresenceState();
    for (const x of s.externalState()) {
      if (x.clearedAt !== null) fresh.clearExternal(x.source, x.clearedAt);
      fresh.setExternal(x.source, x.entries);
    }
    assert.deepEqual(fresh.user(3), s.user(3));
    assert.deepEqual(fresh.externalState(), s.externalState());
  });

  it('finds nodes that stopped reporting', () => {
    const s = new PresenceState();
    s.seen('old', 1000);
    s.seen('new', 5000);
    assert.deepEqual(s.silentSince(3000), ['old']);
  });

  it('refuses malformed reports whole', () => {
    assert.equal(parseReport(null), null);
    assert.equal(parseReport({ nodeId: 'n', kind: 'delta', upserts: [{ ...conn('a', 1, 'web-1'), status: 'busy' }], removals: [] }), null);
    assert.equal(parseReport({ nodeId: 'n', kind: 'snapshot', snapshotId: 's', part: 2, parts: 2, connections: [] }), null);
    assert.equal(parseReport({ nodeId: 'n', kind: 'heartbeat', count: -1 }), null);
    assert.deepEqual(parseReport({ nodeId: 'n', kind: 'heartbeat', count: 3 }), { nodeId: 'n', kind: 'heartbeat', count: 3 });
    assert.equal(parseReport({ nodeId: 'n', kind: 'delta', upserts: [conn('a', 1, 'web-1')], removals: ['b'] })?.kind, 'delta');
    const entry = { userId: 1, status: 'online', at: 1, since: '1970-01-01T00:00:00.001Z' };
    assert.deepEqual(parseExternal({ origin: 'o', kind: 'set', source: 'rtx', entries: [entry] }), { origin: 'o', kind: 'set', source: 'rtx', entries: [entry] });
    assert.equal(parseExternal({ origin: 'o', kind: 'set', source: 'RTX', entries: [entry] }), null);
    assert.equal(parseExternal({ origin: 'o', kind: 'set', source: 'rtx', entries: [{ ...entry, status: 'busy' }] }), null);
    assert.equal(parseExternal({ origin: 'o', kind: 'clear', source: 'rtx', at: 'now' }), null);
    assert.equal(parseExternal({ kind: 'clear', source: 'rtx', at: 1 }), null);
    assert.deepEqual(parseExternal({ origin: 'o', kind: 'clear', source: 'rtx', at: 1 }), { origin: 'o', kind: 'clear', source: 'rtx', at: 1 });
  });
});
