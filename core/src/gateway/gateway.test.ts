import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { startQiao, type QiaoApp } from '../app.ts';
import { loadConfig, PLUGIN_API_VERSION } from '../config.ts';

async function get(base: string, p: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(base + p, init);
  return { status: res.status, body: await res.json() };
}

forEachDatabase('gateway', ({ url, dialect }) => {
  let app: QiaoApp;
  let dataDir: string;
  let base: string;

  before(async function () {
    this.timeout(30_000);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-gateway-'));
    app = await startQiao(
      loadConfig(process.env, { dataDir, databaseUrl: url(), logLevel: false, gateway: { host: '127.0.0.1', port: 0 }, services: ['system', 'gateway'] }),
    );
    base = (await app.broker.call<{ url: string }, object>('gateway.address', {})).url;
  });

  after(async function () {
    this.timeout(30_000);
    await app?.stop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('reports the node and the storage dialect on /healthz', async () => {
    const res = await get(base, '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ok');
    assert.equal(res.body.node, app.broker.nodeID);
    assert.equal(res.body.storage.dialect, dialect);
  });

  it('describes the API on /v1', async () => {
    const res = await get(base, '/v1');
    assert.equal(res.status, 200);
    assert.equal(res.body.api, 'v1');
    assert.equal(res.body.pluginApi, PLUGIN_API_VERSION);
    assert.match(res.body.version, /^\d+\.\d+\.\d+/);
  });

  it('answers unknown routes and bad bodies with a Qiao error', async () => {
    const missing = await get(base, '/nowhere?x=1');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { error: { code: 'QIAO_NOT_FOUND', message: 'no route GET /nowhere' } });
    const bad = await get(base, '/v1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' });
    assert.ok(bad.status === 400 || bad.status === 404, String(bad.status));
    assert.match(bad.body.error.code, /^QIAO_/);
  });

  it('answers 503 on /healthz once storage is unreachable', async () => {
    await app.db!.close();
    const res = await get(base, '/healthz');
    assert.equal(res.status, 503);
    assert.equal(res.body.status, 'unavailable');
    assert.equal(res.body.storage.ok, false);
    assert.ok(res.body.storage.reason);
  });
});

describe('gateway without storage services', () => {
  let app: QiaoApp;
  let dataDir: string;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-gateway-'));
    app = await startQiao(loadConfig(process.env, { dataDir, logLevel: false, gateway: { host: '127.0.0.1', port: 0 }, services: ['gateway'] }));
  });

  after(async () => {
    await app?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts, serves /v1, and says on /healthz that no storage is reachable', async () => {
    assert.equal(app.db, null);
    const { url } = await app.broker.call<{ url: string }, object>('gateway.address', {});
    assert.equal((await get(url, '/v1')).status, 200);
    const health = await get(url, '/healthz');
    assert.equal(health.status, 503);
    assert.match(health.body.storage.reason, /no system service/);
  });

  it('refuses to start a second gateway on a port in use, naming the port', async () => {
    const { port } = await app.broker.call<{ port: number }, object>('gateway.address', {});
    await assert.rejects(
      startQiao(loadConfig(process.env, { dataDir, logLevel: false, gateway: { host: '127.0.0.1', port }, services: ['gateway'] })),
      (err: Error & { type?: string }) => err.type === 'QIAO_UNAVAILABLE' && err.message.includes(String(port)),
    );
  });
});
