import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { QueryTypes } from 'sequelize';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { collectAdminActions } from '../admin-api/admin-actions.ts';
import { appendEvent } from '../eventlog/event-log.ts';
import type { QiaoApp } from '../app.ts';
import { eventually, FIXTURES, grantFeatures, pluginView, startHost, type HostRig } from './test-kit.ts';
import type { BeforeStoredOutcome } from './plugins.service.ts';

const KEYWORD = 'com.qiao.test.keyword';
const STRICT = 'com.qiao.test.strict';
const src = (name: string) => path.join(FIXTURES, name);

async function logMessage(app: QiaoApp, id: number): Promise<void> {
  await app.db!.transaction((t) => appendEvent(app.db!, t, 'message.stored', 'c1', { id, conversationId: 'c1', body: { text: `m${id}` } }));
  await app.broker.broadcast('eventlog.appended', { topic: 'message.stored' });
}

const hook = (app: QiaoApp, text: string) =>
  app.broker.call<BeforeStoredOutcome, object>('plugins.hooks.beforeMessageStored', {
    message: { conversationId: 'c1', senderId: 1, clientMsgId: `x-${Math.random()}`, type: 'text', body: { text } },
  });

forEachDatabase('plugin host', ({ url }) => {
  let rig: HostRig;
  afterEach(async () => {
    await rig?.stop();
  });

  it('reports each plugin status with its reason, and a broken manifest does not stop the core', async () => {
    rig = await startHost(url(), [
      { source: src('keyword'), enabled: true },
      { source: src('bad-json'), enabled: true },
      { source: src('incompatible'), enabled: true },
      { source: src('strict'), enabled: false },
    ]);
    const { plugins, fileError } = await rig.app.broker.call<{ plugins: Array<{ id: string; status: string; reason: string }>; fileError: string | null }>('plugins.list');
    assert.equal(fileError, null);
    const by = (id: string) => plugins.find((p) => p.id === id || p.id.endsWith(id))!;
    assert.equal(by(KEYWORD).status, 'licence-disabled');
    assert.match(by(KEYWORD).reason, /test-keyword/);
    assert.equal(by('bad-json').status, 'invalid');
    assert.match(by('bad-json').reason, /bad-json\/plugin\.json: not valid JSON/);
    assert.equal(by('com.qiao.test.future').status, 'incompatible');
    assert.match(by('com.qiao.test.future').reason, /\^2\.0\.0.*1\.0\.0/);
    assert.equal(by(STRICT).status, 'disabled');
    // The core still serves.
    assert.ok((await rig.app.broker.call<{ company: unknown }>('system.info')).company);
  });

  it('a malformed plugins.json is reported with the file name and the core starts with no plugins', async () => {
    rig = await startHost(url(), []);
    fs.writeFileSync(rig.pluginsFile, '{ "plugins": [ { "source": 42, "enabled": true } ] }');
    const res = await rig.app.broker.call<{ plugins: unknown[]; fileError: string }>('plugins.reload');
    assert.deepEqual(res.plugins, []);
    assert.match(res.fileError, /plugins\.json: plugins\.json\.plugins\.0\.source: must be string/);
  });

  it('a licensed plugin can be enabled, an unlicensed one cannot, and expiry disables it live', async () => {
    rig = await startHost(url(), [{ source: src('keyword'), enabled: false }]);
    await assert.rejects(rig.app.broker.call('plugins.enable', { id: KEYWORD }), (err: Error & { type: string }) => {
      assert.equal(err.type, 'QIAO_LICENCE_FEATURE_MISSING');
      assert.match(err.message, /test-keyword/);
      return true;
    });
    assert.equal((await pluginView(rig.app, KEYWORD)).enabled, false);

    await grantFeatures(rig.app, ['test-keyword']);
    const view = await rig.app.broker.call<{ status: string; state: string; pid: number }, object>('plugins.enable', { id: KEYWORD });
    assert.equal(view.status, 'enabled');
    assert.equal(view.state, 'running');
    assert.ok(view.pid && view.pid !== process.pid, 'runs in its own process');
    assert.deepEqual(await rig.app.broker.call('keyword.settings'), { word: 'forbidden', maxLength: 50 });
    assert.equal(JSON.parse(fs.readFileSync(rig.pluginsFile, 'utf8')).plugins[0].enabled, true, 'the choice is saved');
    // Its own migrations ran under its own name.
    const [row] = await rig.app.db!.sequelize.query<{ n: number }>(`SELECT COUNT(*) AS n FROM qiao_migrations WHERE owner = ?`, {
      replacements: [KEYWORD],
      type: QueryTypes.SELECT,
    });
    assert.equal(Number(row.n), 1);

    // The licence loses the feature (expiry): the plugin goes off at once, the admin's choice is kept.
    await grantFeatures(rig.app, []);
    const off = await eventually(async () => {
      const v = await pluginView(rig.app, KEYWORD);
      assert.equal(v.state, 'stopped');
      return v;
    }, 'plugin stopped');
    assert.equal(off.status, 'licence-disabled');
    assert.equal(off.enabled, true);
    await assert.rejects(rig.app.broker.call('keyword.settings'), /not found|not available/i);

    // A renewed licence brings it back without anyone touching it.
    await grantFeatures(rig.app, ['test-keyword']);
    await eventually(async () => assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running'), 'plugin back');
  });

  it('an invalid settings change is refused with the field named and nothing is written', async () => {
    rig = await startHost(url(), [{ source: src('keyword'), enabled: true, settings: { word: 'secret' } }]);
    await grantFeatures(rig.app, ['test-keyword']);
    await eventually(async () => assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running'), 'running');
    const before = fs.readFileSync(rig.pluginsFile, 'utf8');
    await assert.rejects(rig.app.broker.call('plugins.configure', { id: KEYWORD, settings: { word: 'x', maxLength: 1000 } }), (err: Error & { type: string; data: { field: string } }) => {
      assert.equal(err.type, 'QIAO_PLUGIN_SETTINGS_INVALID');
      assert.equal(err.data.field, 'settings.maxLength');
      assert.match(err.message, /settings\.maxLength: must be <= 100/);
      return true;
    });
    await assert.rejects(rig.app.broker.call('plugins.configure', { id: KEYWORD, settings: { colour: 'red' } }), /settings\.colour/);
    assert.equal(fs.readFileSync(rig.pluginsFile, 'utf8'), before);
    assert.deepEqual(await rig.app.broker.call('keyword.settings'), { word: 'secret', maxLength: 50 });

    // A valid change is saved and reaches the plugin live.
    await rig.app.broker.call('plugins.configure', { id: KEYWORD, settings: { word: 'banana' } });
    await eventually(async () => assert.deepEqual(await rig.app.broker.call('keyword.settings'), { word: 'banana', maxLength: 50 }), 'new settings');
  });

  it('settings made invalid by hand show as settings-invalid', async () => {
    rig = await startHost(url(), [{ source: src('keyword'), enabled: true, settings: { word: '' } }]);
    await grantFeatures(rig.app, ['test-keyword']);
    const v = await pluginView(rig.app, KEYWORD);
    assert.equal(v.status, 'settings-invalid');
    assert.match(v.reason, /settings\.word: must NOT have fewer than 1 characters/);
  });

  it('beforeMessageStored: allow, modify, reject; a hung or throwing fail-open hook lets messages through', async () => {
    rig = await startHost(url(), [{ source: src('keyword'), enabled: true }]);
    await grantFeatures(rig.app, ['test-keyword']);
    await eventually(async () => assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running'), 'running');
    assert.equal((await hook(rig.app, 'hello')).outcome, 'allow');
    const modified = await hook(rig.app, 'shout:hi there');
    assert.equal(modified.outcome, 'allow');
    assert.deepEqual(modified.message.body, { text: 'HI THERE' });
    const rejected = await hook(rig.app, 'this is forbidden');
    assert.equal(rejected.outcome, 'reject');
    assert.equal(rejected.pluginId, KEYWORD);
    assert.match(rejected.reason!, /forbidden/);
    assert.equal((await hook(rig.app, 'throw')).outcome, 'allow');
    assert.equal((await hook(rig.app, 'slow')).outcome, 'allow'); // times out after 2 s, fail-open
  });

  it('a fail-closed hook that cannot answer stops the message with a reason', async () => {
    rig = await startHost(url(), [{ source: src('strict'), enabled: true }]);
    await eventually(async () => assert.equal((await pluginView(rig.app, STRICT)).state, 'running'), 'running');
    assert.equal((await hook(rig.app, 'fine')).outcome, 'allow');
    const slow = await hook(rig.app, 'slow');
    assert.equal(slow.outcome, 'reject');
    assert.match(slow.reason!, /did not answer within 300 ms.*fails closed/);
  });

  it('a crashing plugin is restarted, then error-disabled after 3 failures, and the core keeps serving', async () => {
    rig = await startHost(url(), [{ source: src('keyword'), enabled: true }]);
    await grantFeatures(rig.app, ['test-keyword']);
    for (let crash = 1; crash <= 3; crash++) {
      await eventually(async () => {
        const p = await pluginView(rig.app, KEYWORD);
        assert.equal(p.state, 'running');
        assert.equal(p.restarts, crash - 1);
      }, `running before crash ${crash}`);
      const action = crash === 2 ? 'keyword.throwLater' : 'keyword.crash';
      await rig.app.broker.call(action);
      // The core answers while the plugin is down.
      assert.ok((await rig.app.broker.call<{ company: unknown }>('system.info')).company);
    }
    const dead = await eventually(async () => {
      const p = await pluginView(rig.app, KEYWORD);
      assert.equal(p.status, 'error-disabled');
      return p;
    }, 'error-disabled');
    assert.match(dead.reason, /failed 3 times within 60 min/);
    assert.deepEqual(dead.recentFailures.map((f) => f.reason.replace(/:.*/, '')), ['exited with code 3', 'crashed', 'exited with code 3']);
    assert.equal(dead.state, 'stopped');
    // Hooks of an error-disabled plugin are skipped, so messages flow.
    assert.equal((await hook(rig.app, 'this is forbidden')).outcome, 'allow');
    // An admin re-enables it once fixed.
    await rig.app.broker.call('plugins.enable', { id: KEYWORD });
    assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running');
  });

  it('a hung plugin is detected by heartbeat and killed', async () => {
    rig = await startHost(url(), [{ source: src('keyword'), enabled: true }]);
    await grantFeatures(rig.app, ['test-keyword']);
    await eventually(async () => assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running'), 'running');
    const pid = (await pluginView(rig.app, KEYWORD)).pid;
    await rig.app.broker.call('keyword.hang');
    const v = await eventually(async () => {
      const p = await pluginView(rig.app, KEYWORD);
      assert.equal(p.recentFailures.length, 1);
      return p;
    }, 'hang detected');
    assert.match(v.recentFailures[0].reason, /did not answer heartbeats/);
    const back = await eventually(async () => {
      const p = await pluginView(rig.app, KEYWORD);
      assert.equal(p.state, 'running');
      return p;
    }, 'restarted');
    assert.notEqual(back.pid, pid);
  });

  it('a plugin disabled while messages were committed catches up on all of them, once each', async () => {
    rig = await startHost(url(), [{ source: src('keyword'), enabled: true }]);
    await grantFeatures(rig.app, ['test-keyword']);
    await eventually(async () => assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running'), 'running');
    for (let i = 1; i <= 5; i++) await logMessage(rig.app, i);
    await eventually(async () => assert.deepEqual(await rig.app.broker.call('keyword.seen'), [1, 2, 3, 4, 5]), 'first five');
    await rig.app.broker.call('plugins.disable', { id: KEYWORD });
    for (let i = 6; i <= 25; i++) await logMessage(rig.app, i);
    await rig.app.broker.call('plugins.enable', { id: KEYWORD });
    const all = Array.from({ length: 25 }, (_, i) => i + 1);
    await eventually(async () => assert.deepEqual(await rig.app.broker.call('keyword.seen'), all), 'caught up');
    // A crash in between loses nothing and repeats nothing either.
    await rig.app.broker.call('keyword.crash');
    for (let i = 26; i <= 30; i++) await logMessage(rig.app, i);
    await eventually(async () => assert.deepEqual(await rig.app.broker.call('keyword.seen'), [...all, 26, 27, 28, 29, 30]), 'after crash');
  });

  it('offers its actions on the broker with their param schemas and admin marks', async () => {
    rig = await startHost(url(), [{ source: src('keyword'), enabled: true }]);
    await grantFeatures(rig.app, ['test-keyword']);
    await eventually(async () => assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running'), 'running');
    const { actions } = collectAdminActions(rig.app.broker);
    assert.deepEqual(actions.get('keyword.adminSettings'), { action: 'keyword.adminSettings', admin: true, route: { method: 'GET', path: '/keyword/settings' } });
    assert.equal(actions.has('keyword.settings'), false);
    assert.equal(await rig.app.broker.call('keyword.double', { n: 2 }), 4);
    // Refused at the edge, by the core's broker, before the call reaches the plugin's process.
    await assert.rejects(rig.app.broker.call('keyword.double', { n: 50 }), (err: Error & { type: string }) => err.type === 'VALIDATION_ERROR');
  });

  it('checks every broker call and emit a plugin makes against its manifest permissions', async () => {
    rig = await startHost(url(), [{ source: src('keyword'), enabled: true }]);
    await grantFeatures(rig.app, ['test-keyword']);
    await eventually(async () => assert.equal((await pluginView(rig.app, KEYWORD)).state, 'running'), 'running');
    const info = await rig.app.broker.call<{ company: unknown }, object>('keyword.callCore', { action: 'system.info' });
    assert.ok(info.company);
    await assert.rejects(rig.app.broker.call('keyword.callCore', { action: 'system.admins.list' }), (err: Error & { type: string }) => {
      assert.equal(err.type, 'QIAO_PLUGIN_PERMISSION_DENIED');
      assert.match(err.message, /system\.admins\.list/);
      return true;
    });
    // A plugin passes the caller's meta on, but never an admin identity: that only the admin API sets.
    rig.app.broker.createService({ name: 'test', actions: { whoami: (ctx) => ctx.meta } });
    await rig.app.broker.waitForServices('test');
    const meta = await rig.app.broker.call<Record<string, unknown>, object>('keyword.callCore', {
      action: 'test.whoami',
      meta: { admin: { account: 'root', role: 'super' }, plugin: 'someone.else', traceTag: 't1' },
    });
    assert.deepEqual([meta.plugin, meta.admin, meta.traceTag], [KEYWORD, undefined, 't1']);
    // Events: the permitted one is delivered to the plugin.
    await rig.app.broker.broadcast('test.ping', {});
    await eventually(async () => assert.equal(await rig.app.broker.call('keyword.pings'), 1), 'event delivered');
    // Emits: permitted ones reach the broker, others are dropped.
    const got: string[] = [];
    rig.app.broker.createService({ name: 'listener', events: { 'keyword.alert': () => void got.push('alert'), 'system.secret': () => void got.push('secret') } });
    await rig.app.broker.waitForServices('listener');
    await rig.app.broker.call('keyword.alert');
    await eventually(async () => assert.deepEqual(got, ['alert']), 'alert');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, ['alert']);
  });

  it('installs and uninstalls a plugin live, and refuses a second copy', async () => {
    rig = await startHost(url(), []);
    const installed = await rig.app.broker.call<{ id: string; status: string }, object>('plugins.install', { source: src('strict') });
    assert.equal(installed.id, STRICT);
    assert.equal(installed.status, 'disabled');
    await assert.rejects(rig.app.broker.call('plugins.install', { source: src('strict') }), /already installed/);
    await assert.rejects(rig.app.broker.call('plugins.install', { source: src('bad-json') }), (err: Error & { type: string }) => err.type === 'QIAO_PLUGIN_MANIFEST_INVALID' && /not valid JSON/.test(err.message));
    await rig.app.broker.call('plugins.enable', { id: STRICT });
    assert.equal((await pluginView(rig.app, STRICT)).state, 'running');
    await rig.app.broker.call('plugins.uninstall', { id: STRICT });
    assert.deepEqual((await rig.app.broker.call<{ plugins: unknown[] }>('plugins.list')).plugins, []);
    assert.deepEqual(JSON.parse(fs.readFileSync(rig.pluginsFile, 'utf8')).plugins, []);
    await assert.rejects(rig.app.broker.call('strict.crash'), /not found|not available/i);
  });

  it('installs a packaged (tarball) plugin into the plugin folder, runs it, and uninstalls it', async function () {
    this.timeout(60_000);
    rig = await startHost(url(), []);
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', rig.dir, src('packaged-js')], { encoding: 'utf8' }).trim().split('\n').pop()!;
    const view = await rig.app.broker.call<{ id: string; source: string; status: string }, object>('plugins.install', { source: path.join(rig.dir, packed) });
    assert.equal(view.id, 'com.qiao.test.packaged');
    assert.equal(view.source, 'qiao-test-packaged-plugin');
    assert.ok(fs.existsSync(path.join(rig.dir, 'data', 'plugins', 'node_modules', 'qiao-test-packaged-plugin', 'plugin.json')));
    await rig.app.broker.call('plugins.enable', { id: view.id });
    assert.equal(await rig.app.broker.call('packaged.hello'), 'hello from a tarball');
    await rig.app.broker.call('plugins.uninstall', { id: view.id });
    assert.ok(!fs.existsSync(path.join(rig.dir, 'data', 'plugins', 'node_modules', 'qiao-test-packaged-plugin')));
    await assert.rejects(rig.app.broker.call('plugins.install', { source: path.join(rig.dir, 'nope.tgz') }), (err: Error & { type: string }) => err.type === 'QIAO_PLUGIN_INSTALL_FAILED');
  });
});
