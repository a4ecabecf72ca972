import assert from 'node:assert/strict';
import { PresenceState, type PresenceConnection } from './presence-state.ts';
import { parseReport } from './reports.ts';

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
    assert.deepEqual(s.stats(), { users: 2, online: 2, away: 0, connections: 2, byDeviceType: { web: 2 }, nodes: 1 });
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
  });
});
