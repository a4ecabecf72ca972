import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../../core/src/plugin-host/test-kit.ts';
import { forEachDatabase } from '../support/databases.ts';
import { cliEnv, RunningQiao, runQiao } from './cli-harness.ts';

const STRICT = 'com.qiao.test.strict';

forEachDatabase('qiao plugin (CLI)', ({ url }) => {
  let env: NodeJS.ProcessEnv;
  let dataDir: string;
  let pluginsFile: string;

  before(async () => {
    ({ env, dataDir } = await cliEnv(url()));
    pluginsFile = env.QIAO_PLUGINS_FILE!;
  });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('installs and lists with the server stopped, straight into plugins.json', async function () {
    this.timeout(60_000);
    const install = await runQiao(['plugin', 'install', path.join(FIXTURES, 'strict')], env);
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stdout, new RegExp(`${STRICT} 0\\.1\\.0 — disabled`));
    const list = await runQiao(['plugin', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+VERSION\s+STATUS\s+PROCESS\s+REASON/m);
    assert.match(list.stdout, new RegExp(`^${STRICT.replaceAll('.', '\\.')}\\s+0\\.1\\.0\\s+disabled\\s+stopped\\s+disabled by an admin`, 'm'));
    const saved = JSON.parse(fs.readFileSync(pluginsFile, 'utf8')) as { plugins: Array<{ source: string; enabled: boolean }> };
    assert.equal(saved.plugins.length, 1);
    assert.equal(saved.plugins[0].enabled, false);
  });

  it('enables and disables live against a running server, and reports bad input in one line', async function () {
    this.timeout(90_000);
    const q = new RunningQiao([], env);
    try {
      await q.ready();
      const on = await runQiao(['plugin', 'enable', STRICT], env);
      assert.equal(on.code, 0, on.stderr);
      assert.match(on.stdout, /— enabled \(running as configured\); process running pid \d+/);
      const json = JSON.parse((await runQiao(['plugin', 'list', '--json'], env)).stdout) as { plugins: Array<{ id: string; state: string; pid: number }> };
      assert.equal(json.plugins[0].state, 'running');
      // The plugin runs as a child of the server, not of the CLI.
      assert.notEqual(json.plugins[0].pid, q.child.pid);

      const unknown = await runQiao(['plugin', 'enable', 'com.nobody.here'], env);
      assert.equal(unknown.code, 1);
      assert.equal(unknown.stderr.trim(), 'qiao: QIAO_PLUGIN_NOT_FOUND: plugin "com.nobody.here" is not installed (field: id)');
      const badSet = await runQiao(['plugin', 'configure', STRICT, '--set', 'novalue'], env);
      assert.equal(badSet.code, 1);
      assert.match(badSet.stderr, /^qiao: QIAO_BAD_REQUEST: --set "novalue" must look like key=value/);

      const off = await runQiao(['plugin', 'disable', STRICT], env);
      assert.equal(off.code, 0, off.stderr);
      assert.match(off.stdout, /— disabled \(disabled by an admin\); process stopped/);
      const uninstall = await runQiao(['plugin', 'uninstall', STRICT], env);
      assert.equal(uninstall.code, 0, uninstall.stderr);
      assert.match((await runQiao(['plugin', 'list'], env)).stdout, /no plugins installed/);
    } finally {
      assert.equal(await q.stop(), 0);
    }
  });
});
