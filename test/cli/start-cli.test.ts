import assert from 'node:assert/strict';
import { selectServices } from '../../core/src/services.ts';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { forEachDatabase } from '../support/databases.ts';
import { cliEnv, RunningQiao, runQiao } from './cli-harness.ts';

forEachDatabase('qiao start (CLI)', ({ url, dialect }) => {
  let env: NodeJS.ProcessEnv;
  let dataDir: string;
  let databaseUrl: string;
  const running: RunningQiao[] = [];

  before(async () => {
    databaseUrl = url();
    if (dialect === 'postgres') {
      // The test server trusts local connections, so a password in the URL is accepted and ignored: it is
      // here to prove the banner never prints it.
      const u = new URL(databaseUrl);
      u.password = 's3cret-pw';
      databaseUrl = u.toString();
    }
    ({ env, dataDir } = await cliEnv(databaseUrl));
  });

  afterEach(async () => {
    for (const q of running.splice(0)) await q.stop('SIGKILL');
  });

  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  function start(args: string[] = [], extra: NodeJS.ProcessEnv = {}): RunningQiao {
    const q = new RunningQiao(args, { ...env, ...extra });
    running.push(q);
    return q;
  }

  it('prints a banner with the one-time super-admin password on first start, serves, and stops cleanly on SIGTERM', async function () {
    this.timeout(90_000);
    const q = start();
    await q.ready();
    const out = q.stdout;
    assert.match(out, /Qiao \(桥\) \d+\.\d+\.\d+ is running/);
    assert.match(out, /company\s+My Company \(buin \d{6}\)/);
    assert.ok(out.includes(`gateway      http://127.0.0.1:${env.QIAO_GATEWAY_PORT}`), out);
    assert.ok(out.includes(`admin        http://127.0.0.1:${env.QIAO_ADMIN_PORT}`), out);
    assert.match(out, /transporter\s+none \(single process\)/);
    if (dialect === 'sqlite') assert.ok(out.includes(`storage      SQLite ${databaseUrl.slice('sqlite:'.length)}`), out);
    else {
      assert.match(out, /storage\s+PostgreSQL postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\/qiao_t_/);
      assert.ok(!out.includes('s3cret-pw'), 'the database password is masked');
    }
    const m = /super-admin account "admin", one-time password: (\S+)/.exec(out);
    assert.ok(m, out);
    assert.match(out, /change it after first login/);

    const health = await fetch(`http://127.0.0.1:${env.QIAO_GATEWAY_PORT}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { storage: { dialect: string } }).storage.dialect, dialect);
    const login = await fetch(`http://127.0.0.1:${env.QIAO_ADMIN_PORT}/api/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ account: 'admin', password: m[1] }),
    });
    assert.equal(login.status, 200);
    assert.ok(fs.existsSync(path.join(dataDir, 'cli.token')));

    assert.equal(await q.stop('SIGTERM'), 0, q.stderr);
    assert.ok(!fs.existsSync(path.join(dataDir, 'cli.token')), 'the CLI token goes with the server');
  });

  it('does not print a password on later starts; SIGINT stops it too', async function () {
    this.timeout(90_000);
    const q = start();
    await q.ready();
    assert.doesNotMatch(q.stdout, /one-time password/);
    assert.doesNotMatch(q.stdout, /First start/);
    assert.equal(await q.stop('SIGINT'), 0, q.stderr);
  });

  it('runs only the services asked for (--services, QIAO_SERVICES)', async function () {
    this.timeout(90_000);
    const q = start(['--services', 'gateway']);
    await q.ready();
    assert.match(q.stdout, /services\s+gateway\n/);
    assert.doesNotMatch(q.stdout, /admin {8}http/);
    const health = await fetch(`http://127.0.0.1:${env.QIAO_GATEWAY_PORT}/healthz`);
    assert.equal(health.status, 503, 'no storage service in this process');
    assert.equal(await q.stop(), 0);

    const e = start([], { QIAO_SERVICES: 'core,admin' });
    await e.ready();
    const expected = selectServices(['core', 'admin']).map((d) => d.name).join(', ');
    assert.match(e.stdout, new RegExp(`services\\s+${expected}\\n`));
    assert.doesNotMatch(e.stdout, /gateway/);
    assert.equal(await e.stop(), 0);
  });

  it('refuses a port already in use with one clear line and exit code 1', async function () {
    this.timeout(90_000);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(Number(env.QIAO_GATEWAY_PORT), '127.0.0.1', resolve));
    try {
      const r = await runQiao(['start'], { ...env, QIAO_LOG_LEVEL: 'off' });
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), `qiao: cannot start: gateway port ${env.QIAO_GATEWAY_PORT} on 127.0.0.1 is already in use (set QIAO_GATEWAY_PORT)`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const bad = await runQiao(['start', '--services', 'nonsense'], { ...env, QIAO_LOG_LEVEL: 'off' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr.trim(), /^qiao: cannot start: unknown service "nonsense"/);
  });
});
