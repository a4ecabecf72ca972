// End to end through the real licence and im services: what a plugin's failures and the licence do to messaging.
import assert from 'node:assert/strict';
import path from 'node:path';
import { QueryTypes } from 'sequelize';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { insertUser } from '../im/test-helpers.ts';
import { createLicenceRig, type LicenceRig } from '../licence/licence-rig.ts';
import { eventually, FIXTURES, pluginView, startHost, type HostRig } from './test-kit.ts';

const KEYWORD = 'com.qiao.test.keyword';

forEachDatabase('plugin faults and licence, end to end', ({ url }) => {
  let rig: HostRig;
  let licence: LicenceRig;
  let conversationId: string;
  let sender: number;

  beforeEach(async () => {
    const keysDir = path.join(process.env.TMPDIR ?? '/tmp', `qiao-keys-${process.pid}-${Date.now()}`);
    licence = createLicenceRig(keysDir);
    rig = await startHost(url(), [{ source: path.join(FIXTURES, 'keyword'), enabled: true }], { licenceTrustedKeyFiles: [licence.trustedKeyFile] });
    await licence.install(rig.app, { features: ['test-keyword'] });
    await eventually(async () => assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running'), 'plugin running');
    sender = await insertUser(rig.app.db!);
    const other = await insertUser(rig.app.db!);
    conversationId = (await rig.app.broker.call<{ id: string }, object>('im.conversations.create', { type: 'single', members: [sender, other], createdBy: sender })).id;
  });
  afterEach(async () => {
    await rig?.stop();
  });

  const send = (n: number, text = `message ${n}`) =>
    rig.app.broker.call<{ id: number }, object>('im.send', { conversationId, senderId: sender, clientMsgId: `c-${n}`, type: 'text', body: { text } });

  it('keeps accepting and storing messages while a plugin crashes over and over', async () => {
    const sent: number[] = [];
    for (let n = 1; n <= 60; n++) {
      if (n % 20 === 5) await rig.app.broker.call('keyword.crash').catch(() => undefined);
      const stored = await send(n);
      sent.push(stored.id);
    }
    const [{ count }] = await rig.app.db!.sequelize.query<{ count: number }>('SELECT COUNT(*) AS count FROM messages WHERE conversation_id = ?', {
      replacements: [conversationId],
      type: QueryTypes.SELECT,
    });
    assert.equal(Number(count), 60);
    assert.equal(new Set(sent).size, 60);
    // The plugin itself saw every one of them in the end, once each, despite its crashes.
    const view = await eventually(async () => {
      const v = await pluginView(rig.app, KEYWORD);
      assert.ok(v.restarts >= 1);
      return v;
    }, 'restarts counted');
    if (view.status === 'enabled') {
      await eventually(async () => assert.deepEqual(await rig.app.broker.call('keyword.seen'), sent), 'plugin caught up', 30_000);
    }
  });

  it('a licence that expires turns its plugins off live, and its hooks stop applying', async () => {
    await assert.rejects(send(1, 'this is forbidden'), /forbidden/);
    const expired = await licence.travelTo(rig.app, new Date(Date.now() + 2 * 365 * 86_400_000));
    assert.equal(expired.status, 'expired');
    const off = await eventually(async () => {
      const v = await pluginView(rig.app, KEYWORD);
      assert.equal(v.state, 'stopped');
      return v;
    }, 'plugin stopped');
    assert.equal(off.status, 'licence-disabled');
    // With the plugin off, its rule no longer applies (it was the plugin's rule, not the core's).
    assert.ok((await send(2, 'this is forbidden')).id > 0);
    await licence.travelTo(rig.app, null);
    await eventually(async () => assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running'), 'plugin back on');
  });
});
