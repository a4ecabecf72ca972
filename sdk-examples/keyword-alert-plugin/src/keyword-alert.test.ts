import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { forEachDatabase, startPluginTestCore, type PluginTestCore } from '@qiao/plugin-api/testing';

const pluginDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A real webhook receiver that refuses the first `failFirst` deliveries. */
function webhookReceiver(failFirst: number) {
  const received: Array<Record<string, unknown>> = [];
  let attempts = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      attempts++;
      if (attempts <= failFirst) {
        res.writeHead(503).end();
        return;
      }
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  return {
    received,
    attempts: () => attempts,
    listen: () => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`))),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

forEachDatabase('example plugin: keyword alert', ({ url }) => {
  let core: PluginTestCore;
  let hook: ReturnType<typeof webhookReceiver>;

  before(async function () {
    this.timeout(60_000);
    hook = webhookReceiver(2);
    const webhookUrl = await hook.listen();
    core = await startPluginTestCore({ pluginDir, databaseUrl: url(), settings: { keywords: ['urgent'], blocked: ['casino'], webhookUrl } });
  });
  after(async () => {
    await core?.stop();
    await hook?.close();
  });

  it('lets ordinary messages through and blocks banned words with a reason', async () => {
    const [alice, bob] = await core.createUsers('alice', 'bob');
    const chat = await core.createConversation([alice, bob]);
    const ok = await core.send(chat, alice, 'hello bob');
    assert.ok(ok.id > 0);
    await assert.rejects(core.send(chat, alice, 'Fancy a CASINO night?'), (err: Error & { type: string }) => {
      assert.equal(err.type, 'QIAO_MESSAGE_REJECTED');
      assert.match(err.message, /the word "casino" is not allowed here/);
      return true;
    });
  });

  it('records one alert per keyword message and delivers it to the webhook, retrying until acknowledged', async () => {
    const [carol, dave] = await core.createUsers('carol', 'dave');
    const chat = await core.createConversation([carol, dave]);
    const msg = await core.send(chat, carol, 'URGENT: the database is down');
    await core.send(chat, dave, 'looking');
    const hits = await core.eventually(async () => {
      const rows = await core.call<Array<{ message_id: number; keyword: string }>>('keywordAlert.hits');
      assert.equal(rows.length, 1);
      return rows;
    });
    assert.equal(Number(hits[0].message_id), msg.id);
    assert.equal(hits[0].keyword, 'urgent');
    await core.eventually(() => assert.equal(hook.received.length, 1));
    assert.equal(hook.received[0].message_id, msg.id);
    assert.equal(hook.attempts(), 3, 'two refused deliveries, then one accepted');
    // The retried message did not record a second hit.
    assert.equal((await core.call<unknown[]>('keywordAlert.hits')).length, 1);
  });

  it('refuses settings that do not fit its schema, naming the field', async () => {
    await assert.rejects(core.call('plugins.configure', { id: core.pluginId, settings: { webhookUrl: 'ftp://example' } }), (err: Error & { data: { field: string } }) => {
      assert.equal(err.data.field, 'settings.webhookUrl');
      return true;
    });
    assert.equal((await core.status()).status, 'enabled');
  });
});
