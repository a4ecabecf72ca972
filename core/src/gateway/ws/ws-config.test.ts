import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QiaoClient } from '@qiao/client';
import { forEachDatabase } from '../../../../test/support/databases.ts';
import { startQiao, type QiaoApp } from '../../app.ts';
import { PASSWORD, SUPER } from '../../auth/test-kit.ts';
import { loadConfig, WS_DEFAULTS } from '../../config.ts';
import { CLIENT_SERVICES } from '../client/test-kit.ts';
import { TestSocket } from './test-socket.ts';

describe('WebSocket limits from the environment', () => {
  it('defaults to the documented values', () => {
    assert.deepEqual(loadConfig({}).ws, WS_DEFAULTS);
    assert.deepEqual(
      [WS_DEFAULTS.burst, WS_DEFAULTS.perSecond, WS_DEFAULTS.maxFrameBytes, WS_DEFAULTS.hardMaxFrameBytes, WS_DEFAULTS.watchLimit, WS_DEFAULTS.heartbeatMs],
      [30, 10, 16_384, 1_048_576, 500, 30_000],
    );
  });

  it('reads each QIAO_WS_… variable', () => {
    const ws = loadConfig({
      QIAO_WS_HEARTBEAT_MS: '15000',
      QIAO_WS_AUTH_TIMEOUT_MS: '5000',
      QIAO_WS_MAX_FRAME_BYTES: '4096',
      QIAO_WS_HARD_MAX_FRAME_BYTES: '65536',
      QIAO_WS_RATE_BURST: '5',
      QIAO_WS_RATE_PER_SECOND: '2',
      QIAO_WS_ABUSE_REFUSALS: '20',
      QIAO_WS_ABUSE_WINDOW_MS: '5000',
      QIAO_WS_TOKEN_RECHECK_MS: '60000',
      QIAO_WS_WAKE_CONCURRENCY: '4',
      QIAO_WS_WATCH_LIMIT: '1000',
    }).ws;
    assert.deepEqual(ws, {
      heartbeatMs: 15_000,
      authTimeoutMs: 5000,
      maxFrameBytes: 4096,
      hardMaxFrameBytes: 65_536,
      burst: 5,
      perSecond: 2,
      abuseRefusals: 20,
      abuseWindowMs: 5000,
      recheckMs: 60_000,
      wakeConcurrency: 4,
      watchLimit: 1000,
    });
    // Overrides (tests, embedding) win over the environment.
    assert.equal(loadConfig({ QIAO_WS_RATE_BURST: '5' }, { ws: { burst: 7 } }).ws.burst, 7);
  });

  it('stops startup on a bad value, naming the variable', () => {
    for (const [name, value] of [
      ['QIAO_WS_RATE_BURST', 'lots'],
      ['QIAO_WS_RATE_BURST', '0'],
      ['QIAO_WS_RATE_PER_SECOND', '2.5'],
      ['QIAO_WS_RATE_PER_SECOND', '-1'],
      ['QIAO_WS_HEARTBEAT_MS', '10'],
      ['QIAO_WS_WATCH_LIMIT', '1001'],
      ['QIAO_WS_MAX_FRAME_BYTES', '1e6'],
    ]) {
      assert.throws(() => loadConfig({ [name]: value }), (err: Error) => err.message.includes(name) && err.message.includes(`"${value}"`), `${name}=${value}`);
    }
    assert.throws(() => loadConfig({ QIAO_WS_MAX_FRAME_BYTES: '2048', QIAO_WS_HARD_MAX_FRAME_BYTES: '1024' }), /QIAO_WS_MAX_FRAME_BYTES \(2048\) must not exceed QIAO_WS_HARD_MAX_FRAME_BYTES \(1024\)/);
  });
});

forEachDatabase('WebSocket limits taking effect', ({ url }) => {
  let app: QiaoApp;
  let dataDir: string;
  let wsUrl: string;
  let token: string;

  before(async function () {
    this.timeout(60_000);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-ws-config-'));
    const env = { ...process.env, QIAO_WS_RATE_BURST: '3', QIAO_WS_RATE_PER_SECOND: '1', QIAO_WS_MAX_FRAME_BYTES: '512', QIAO_WS_WATCH_LIMIT: '2' };
    app = await startQiao(
      loadConfig(env, {
        dataDir,
        databaseUrl: url(),
        logLevel: false,
        transporter: null,
        gateway: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: 0 },
        pluginsFile: path.join(dataDir, 'plugins.json'),
        services: CLIENT_SERVICES,
      }),
    );
    const base = (await app.broker.call<{ url: string }>('gateway.address')).url;
    wsUrl = `${base.replace('http', 'ws')}/v1/ws`;
    const { id } = await app.broker.call<{ id: number }, object>('org.users.create', { account: 'erin', name: 'Erin' }, { meta: SUPER });
    await app.broker.call('auth.users.setPassword', { userId: id, password: PASSWORD, mustChange: false }, { meta: SUPER });
    token = (await QiaoClient.login({ baseUrl: base }, { account: 'erin', password: PASSWORD, deviceType: 'web', deviceId: 'w-erin' })).token!;
  });
  after(async () => {
    await app?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('announces the configured limits and enforces them: rate, frame size, watch list', async () => {
    const s = await TestSocket.open(wsUrl);
    s.send({ type: 'auth', token });
    const ready = await s.take((f) => f.type === 'ready');
    assert.deepEqual(ready.limits, { maxFrameBytes: 512, burst: 3, perSecond: 1, watchLimit: 2 });
    // Fewer frames than the default burst of 30 are enough to be limited now.
    for (let i = 0; i < 6; i++) s.send({ type: 'ping', id: i });
    const limited = await s.take((f) => f.type === 'error' && f.code === 'QIAO_RATE_LIMITED');
    assert.match(limited.message, /too many frames: at most 3 at once and 1 a second/);
    // The auth frame took one token; at most the burst of 3 is answered, however slow this machine is.
    const pongs = s.frames.filter((f) => f.type === 'pong').length;
    assert.ok(pongs >= 2 && pongs <= 3, `${pongs} pings answered`);
    s.close();

    const t = await TestSocket.open(wsUrl, token);
    t.send(JSON.stringify({ type: 'ping', id: 'x'.repeat(600) }));
    assert.match((await t.take((f) => f.type === 'error')).message, /at most 512 bytes/);
    t.send({ type: 'watch', userIds: [1, 2, 3] });
    const e = await t.take((f) => f.type === 'error');
    assert.deepEqual([e.field, e.message], ['userIds', 'userIds: holds at most 2 user ids, got 3']);
    t.close();
  });
});
