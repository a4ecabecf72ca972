import assert from 'node:assert/strict';
import { PRESENCE_BATCH, PresenceFeed, type PresenceEntry } from './presence-feed.ts';

describe('rtx bridge: RTX presence into Qiao presence', () => {
  let calls: Array<{ action: string; params: { source: string; entries?: PresenceEntry[] } }>;
  let rtx: Map<string, number> | null;
  let failing: string | null;
  const ids: Record<string, number | null> = { zhangsan: 1, lisi: 2, wangwu: 3, zhang: 1, outsider: null };
  let logged: string[];

  const feed = () =>
    new PresenceFeed({
      call: async <T,>(action: string, params?: Record<string, unknown>) => {
        if (failing === action) throw Object.assign(new Error(`${action} is not available`), { code: 503 });
        calls.push({ action, params: params as never });
        return undefined as T;
      },
      current: () => rtx,
      qiaoId: async (account) => ids[account] ?? null,
      log: (_level, m) => logged.push(m),
    });
  const sets = () => calls.filter((c) => c.action === 'presence.external.set').map((c) => c.params.entries!);
  const sorted = (e: PresenceEntry[]) => [...e].sort((a, b) => a.userId - b.userId);

  beforeEach(() => {
    calls = [];
    rtx = null;
    failing = null;
    logged = [];
  });

  it('starts from nobody, then sends only the people whose RTX status changed', async () => {
    const f = feed();
    rtx = new Map([['zhangsan', 1], ['lisi', 0], ['wangwu', 2], ['outsider', 1]]);
    await f.update();
    // A crashed predecessor may have left people shown: cleared first.
    assert.deepEqual(calls[0], { action: 'presence.external.clear', params: { source: 'rtx' } });
    assert.deepEqual(sorted(sets()[0]!), [{ userId: 1, status: 'online' }, { userId: 3, status: 'away' }], 'offline and unknown people are not sent');
    assert.equal(calls[1]!.params.source, 'rtx');
    assert.equal(f.shown, 2);

    calls = [];
    await f.update();
    assert.equal(calls.length, 0, 'nothing changed, nothing sent');

    rtx.set('zhangsan', 2).set('lisi', 1).set('wangwu', 0);
    await f.update();
    assert.deepEqual(calls.map((c) => c.action), ['presence.external.set'], 'one batch');
    assert.deepEqual(sorted(sets()[0]!), [{ userId: 1, status: 'away' }, { userId: 2, status: 'online' }, { userId: 3, status: 'offline' }]);
  });

  it('sends everyone again when the presence service asks for a resync (it restarted and knows nothing)', async () => {
    const f = feed();
    rtx = new Map([['zhangsan', 1], ['wangwu', 2]]);
    await f.update();
    calls = [];
    await f.update();
    assert.equal(calls.length, 0);
    await f.resend();
    assert.deepEqual(calls.map((c) => c.action), ['presence.external.set'], 'no clear: the service holds nothing');
    assert.deepEqual(sorted(sets()[0]!), [{ userId: 1, status: 'online' }, { userId: 3, status: 'away' }]);
  });

  it('shows the better status when two RTX accounts are mapped to one person', async () => {
    const f = feed();
    rtx = new Map([['zhangsan', 2], ['zhang', 1]]);
    await f.update();
    assert.deepEqual(sets()[0], [{ userId: 1, status: 'online' }]);
  });

  it('clears everything from RTX once RTX presence is unknown (link down), and sends everyone again after', async () => {
    const f = feed();
    rtx = new Map([['zhangsan', 1], ['lisi', 1]]);
    await f.update();
    calls = [];
    rtx = null;
    await f.update();
    assert.deepEqual(calls, [{ action: 'presence.external.clear', params: { source: 'rtx' } }]);
    assert.equal(f.shown, 0);
    calls = [];
    await f.update();
    assert.equal(calls.length, 0, 'cleared once');
    rtx = new Map([['zhangsan', 1]]);
    await f.update();
    assert.deepEqual(calls.map((c) => c.action), ['presence.external.set']);
    assert.deepEqual(sets()[0], [{ userId: 1, status: 'online' }]);
  });

  it('retries after the presence service was away, clearing first when a clear failed', async () => {
    const f = feed();
    rtx = new Map([['zhangsan', 1]]);
    failing = 'presence.external.clear';
    await f.update();
    assert.equal(calls.length, 0);
    assert.match(f.lastError!, /not available/);
    assert.equal(logged.length, 1);
    await f.update();
    assert.equal(logged.length, 1, 'the same problem is logged once');
    failing = null;
    await f.update();
    assert.deepEqual(calls.map((c) => c.action), ['presence.external.clear', 'presence.external.set']);
    assert.equal(f.lastError, null);

    calls = [];
    rtx.set('lisi', 1);
    failing = 'presence.external.set';
    await f.update();
    failing = null;
    await f.update();
    assert.deepEqual(sets(), [[{ userId: 2, status: 'online' }]], 'what failed is sent on the next round, and only that');
  });

  it('sends at most 10,000 people per call', async () => {
    const many = new Map<string, number>();
    for (let i = 1; i <= PRESENCE_BATCH + 5; i++) {
      ids[`p${i}`] = 1000 + i;
      many.set(`p${i}`, 1);
    }
    const f = feed();
    rtx = many;
    await f.update();
    assert.deepEqual(sets().map((b) => b.length), [PRESENCE_BATCH, 5]);
    assert.equal(f.shown, PRESENCE_BATCH + 5);
  });

  it('leaves out of "online in Qiao" the people Qiao shows only because the bridge said so', async () => {
    const devices: Record<number, Array<{ deviceType: string; source?: string }>> = {
      1: [{ deviceType: 'external', source: 'rtx' }],
      2: [{ deviceType: 'android' }, { deviceType: 'external', source: 'rtx' }],
      3: [{ deviceType: 'external', source: 'rtx' }, { deviceType: 'external', source: 'other-im' }],
    };
    const asked: number[][] = [];
    const f = new PresenceFeed({
      call: async <T,>(action: string, params?: Record<string, unknown>) => {
        if (action === 'presence.get') {
          const ids = params!.userIds as number[];
          asked.push(ids);
          return { users: ids.map((userId) => ({ userId, devices: devices[userId] ?? [] })) } as T;
        }
        return undefined as T;
      },
      current: () => new Map([['zhangsan', 1], ['lisi', 1], ['wangwu', 1]]),
      qiaoId: async (account) => ids[account] ?? null,
      log: () => undefined,
    });
    await f.update();
    // 1 online only through RTX; 2 also on a Qiao phone; 3 also through another system; 9 not from RTX at all.
    assert.deepEqual(await f.withoutOwnReports([1, 2, 3, 9]), [2, 3, 9]);
    assert.deepEqual(asked, [[1, 2, 3]], 'only people the bridge shows are looked up');
    assert.deepEqual(await f.withoutOwnReports([9]), [9]);
    assert.equal(asked.length, 1);
  });

  it('forgets everything when the plugin stops', async () => {
    const f = feed();
    rtx = new Map([['zhangsan', 1]]);
    await f.update();
    calls = [];
    await f.clear();
    assert.deepEqual(calls, [{ action: 'presence.external.clear', params: { source: 'rtx' } }]);
    assert.equal(f.shown, 0);
  });
});
