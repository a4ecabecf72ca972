import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type moleculer from 'moleculer';
import cron from 'node-cron';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { startQiao, type QiaoApp } from '../app.ts';
import { loadConfig, type ConfigOverrides } from '../config.ts';
import type { LicenceStatus } from './effective-licence.ts';
import { generateKeyPair, issueLicence, type IssueFields, type LicenceDocument } from './licence-document.ts';
import { createLicenceRig } from './licence-rig.ts';

const DAY = 86_400_000;

interface EventWatch {
  events: LicenceStatus[];
  /** Resolves with the first `licence.changed` (already seen or still to come) that matches. */
  next(match: (s: LicenceStatus) => boolean): Promise<LicenceStatus>;
}

let watchers = 0;
function watchLicence(broker: moleculer.ServiceBroker): EventWatch {
  const events: LicenceStatus[] = [];
  const waiting: { match: (s: LicenceStatus) => boolean; resolve: (s: LicenceStatus) => void }[] = [];
  broker.createService({
    name: `licence-watch-${++watchers}`,
    events: {
      'licence.changed'(ctx: moleculer.Context<LicenceStatus>) {
        events.push(ctx.params);
        for (const w of [...waiting]) {
          if (w.match(ctx.params)) {
            waiting.splice(waiting.indexOf(w), 1);
            w.resolve(ctx.params);
          }
        }
      },
    },
  });
  return {
    events,
    next(match) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiting.push({ match, resolve }));
    },
  };
}

/** Replaces the service's clock: expiry is tested by moving time, not by waiting for it. */
function setClock(app: QiaoApp, now: () => Date): void {
  (app.broker.getLocalService('licence') as unknown as { now: () => Date }).now = now;
}

function licenceError(pattern: RegExp, type = 'QIAO_LICENCE_INVALID') {
  return (err: Error & { type?: string }) => {
    assert.equal(err.type, type);
    assert.match(err.message, pattern);
    return true;
  };
}

forEachDatabase('licence service', ({ url }) => {
  let dir: string;
  let vendor: ReturnType<typeof generateKeyPair>;
  let pubFile: string;
  let app: QiaoApp | null = null;
  let runs = 0;

  const issue = (fields: Partial<IssueFields> = {}, privateKeyPem = vendor.privateKeyPem): LicenceDocument =>
    issueLicence(
      {
        company: 'Acme Trading',
        seats: 500,
        expiresAt: new Date(Date.now() + 365 * DAY),
        features: ['rtx-bridge', 'message-audit', 'com.acme.autoreply'],
        ...fields,
      },
      privateKeyPem,
    );

  async function start(overrides: ConfigOverrides = {}, dataDir = path.join(dir, `run-${++runs}`)): Promise<QiaoApp> {
    app = await startQiao(
      loadConfig(process.env, {
        dataDir,
        databaseUrl: url(),
        logLevel: false,
        gateway: { port: 0 },
        admin: { port: 0 },
        pluginsFile: path.join(dir, 'plugins.json'),
        services: ['system', 'licence'],
        licenceTrustedKeyFiles: [pubFile],
        ...overrides,
      }),
    );
    return app;
  }

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-licence-'));
    vendor = generateKeyPair();
    pubFile = path.join(dir, 'rig.pub.pem');
    fs.writeFileSync(pubFile, vendor.publicKeyPem);
  });

  afterEach(async () => {
    await app?.stop();
    app = null;
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs a trial with no licence file: 50 seats, 14 days from the install date, no features', async () => {
    const a = await start();
    const installedAt = await a.broker.call<string, { key: string }>('system.settings.get', { key: 'installed_at' });
    const s = await a.broker.call<LicenceStatus>('licence.status');
    assert.equal(s.status, 'trial');
    assert.equal(s.source, 'trial');
    assert.equal(s.seats, 50);
    assert.deepEqual(s.features, []);
    assert.equal(s.issuedAt, new Date(installedAt).toISOString());
    assert.equal(new Date(s.expiresAt).getTime() - new Date(s.issuedAt).getTime(), 14 * DAY);
    assert.equal(s.daysLeft, 14);
    assert.equal(s.company, 'My Company');
    assert.equal(s.reason, undefined);
    assert.equal(await a.broker.call('licence.hasFeature', { feature: 'rtx-bridge' }), false);

    // The trial ends 14 days after install; the seats stay, so nobody is locked out.
    setClock(a, () => new Date(new Date(installedAt).getTime() + 14 * DAY + 1000));
    const over = await a.broker.call<LicenceStatus>('licence.check');
    assert.equal(over.status, 'expired');
    assert.equal(over.source, 'trial');
    assert.equal(over.seats, 50);
    assert.match(over.reason!, /14-day trial ended on/);
  });

  it('counts authorised users as the seats used', async () => {
    const a = await start();
    const now = new Date();
    const users: [string, boolean][] = [['zhang.san', true], ['li.si', true], ['wang.wu', true], ['zhao.liu', false], ['qian.qi', false]];
    for (const [account, authorised] of users) {
      await a.db!.sequelize.query('INSERT INTO users (account, name, status, authorised, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)', {
        replacements: [account, account, 'active', authorised, now, now],
      });
    }
    assert.deepEqual(await a.broker.call('licence.seats'), { seats: 50, used: 3, available: 47 });
    assert.equal((await a.broker.call<LicenceStatus>('licence.status')).seatsUsed, 3);
    await a.db!.sequelize.query('UPDATE users SET authorised = ? WHERE account = ?', { replacements: [true, 'zhao.liu'] });
    assert.deepEqual(await a.broker.call('licence.seats'), { seats: 50, used: 4, available: 46 });
  });

  it('installs a licence through the action: valid at once, written to the licence file, licence.changed emitted', async () => {
    const a = await start();
    const watch = watchLicence(a.broker);
    const doc = issue();
    const result = await a.broker.call<LicenceStatus, object>('licence.install', { document: doc });
    assert.equal(result.status, 'valid');
    assert.equal(result.source, 'file');
    assert.equal(result.seats, 500);
    assert.deepEqual(result.features, ['com.acme.autoreply', 'message-audit', 'rtx-bridge']);
    const event = await watch.next((s) => s.status === 'valid');
    assert.equal(event.company, 'Acme Trading');
    assert.deepEqual(event.features, result.features);

    const written = JSON.parse(fs.readFileSync(a.config.licenceFile, 'utf8')) as LicenceDocument;
    assert.deepEqual(written, doc);
    assert.deepEqual(fs.readdirSync(path.dirname(a.config.licenceFile)).filter((f) => f.endsWith('.tmp')), []);
    assert.equal(await a.broker.call('licence.hasFeature', { feature: 'message-audit' }), true);
    assert.equal(await a.broker.call('licence.hasFeature', { feature: 'sms-gateway' }), false);
    const seats = await a.broker.call<{ seats: number; used: number; available: number }>('licence.seats');
    assert.equal(seats.seats, 500);
    assert.equal(seats.available, 500 - seats.used);

    // The file is the licence: a restarted core comes back on it.
    const dataDir = a.config.dataDir;
    await a.stop();
    app = null;
    const b = await start({}, dataDir);
    const again = await b.broker.call<LicenceStatus>('licence.status');
    assert.equal(again.status, 'valid');
    assert.equal(again.seats, 500);
  });

  it('installs a licence given as the file text', async () => {
    const a = await start();
    const doc = issue({ seats: 120, features: ['sms-gateway'] });
    const result = await a.broker.call<LicenceStatus, object>('licence.install', { document: JSON.stringify(doc, null, 2) });
    assert.equal(result.status, 'valid');
    assert.equal(result.seats, 120);
    assert.deepEqual(result.features, ['sms-gateway']);
  });

  it('refuses a bad licence on install, names the problem, and keeps the current licence', async () => {
    const a = await start();
    const good = issue({ id: 'lic-current' });
    await a.broker.call('licence.install', { document: good });
    const before = fs.readFileSync(a.config.licenceFile, 'utf8');
    const watch = watchLicence(a.broker);

    const tampered = issue({ id: 'lic-tampered', seats: 10 });
    tampered.licence.seats = 10_000;
    await assert.rejects(a.broker.call('licence.install', { document: tampered }), licenceError(/signature does not match .*; the current licence stays/));

    const stranger = generateKeyPair();
    await assert.rejects(a.broker.call('licence.install', { document: issue({}, stranger.privateKeyPem) }), licenceError(/signed by an untrusted key/));
    await assert.rejects(a.broker.call('licence.install', { document: '{"licence": ' }), licenceError(/not valid JSON/));
    const missing = issue() as unknown as { licence: Record<string, unknown> };
    delete missing.licence.company;
    await assert.rejects(a.broker.call('licence.install', { document: missing }), licenceError(/missing field "licence\.company"/));
    const expired = issue({ issuedAt: '2020-01-01', expiresAt: '2021-01-01' });
    await assert.rejects(a.broker.call('licence.install', { document: expired }), licenceError(/expired on 2021-01-01T23:59:59\.999Z/, 'QIAO_LICENCE_EXPIRED'));
    await assert.rejects(a.broker.call('licence.install', { document: 42 }), (err: Error & { type?: string }) => err.type === 'VALIDATION_ERROR');

    const s = await a.broker.call<LicenceStatus>('licence.status');
    assert.equal(s.status, 'valid');
    assert.equal(s.seats, 500);
    assert.equal(fs.readFileSync(a.config.licenceFile, 'utf8'), before);
    assert.equal(watch.events.length, 0);
  });

  it('refuses a licence bound to another installation', async () => {
    const a = await start();
    const company = await a.broker.call<{ buin: number }, { key: string }>('system.settings.get', { key: 'company' });
    const other = company.buin === 999_999 ? 100_000 : 999_999;
    await assert.rejects(
      a.broker.call('licence.install', { document: issue({ buin: other }) }),
      licenceError(new RegExp(`is for company number ${other}, this installation is ${company.buin}`)),
    );
    const ours = await a.broker.call<LicenceStatus, object>('licence.install', { document: issue({ buin: company.buin }) });
    assert.equal(ours.status, 'valid');
  });

  it('flips a licence that expires while running to expired: features off, seats kept, licence.changed emitted', async () => {
    const a = await start();
    const expiresAt = new Date(Date.now() + 3600_000);
    await a.broker.call('licence.install', { document: issue({ expiresAt, seats: 300 }) });
    const watch = watchLicence(a.broker);
    assert.equal(await a.broker.call('licence.hasFeature', { feature: 'rtx-bridge' }), true);

    setClock(a, () => new Date(expiresAt.getTime() + 1));
    const s = await a.broker.call<LicenceStatus>('licence.check');
    assert.equal(s.status, 'expired');
    assert.deepEqual(s.features, []);
    assert.equal(s.seats, 300);
    assert.equal(s.daysLeft, 0);
    assert.match(s.reason!, new RegExp(`expired on ${expiresAt.toISOString().replace(/\./g, '\\.')}`));
    const event = await watch.next((e) => e.status === 'expired');
    assert.deepEqual(event.features, []);
    assert.equal(event.seats, 300);
    assert.equal(await a.broker.call('licence.hasFeature', { feature: 'rtx-bridge' }), false);
    assert.equal((await a.broker.call<{ seats: number }>('licence.seats')).seats, 300);

    // Checking again changes nothing, so nothing more is announced.
    await a.broker.call('licence.check');
    assert.equal(watch.events.filter((e) => e.status === 'expired').length, 1);

    // A renewed licence brings the features back live.
    setClock(a, () => new Date());
    const renewed = await a.broker.call<LicenceStatus, object>('licence.install', { document: issue({ seats: 300 }) });
    assert.equal(renewed.status, 'valid');
    assert.ok((await watch.next((e) => e.status === 'valid' && e.features.length === 3)));
  });

  it('serves test harnesses through the licence rig: a real signed licence, and time travel past its expiry', async () => {
    const rig = createLicenceRig(path.join(dir, 'rig'));
    const a = await start({ licenceTrustedKeyFiles: [rig.trustedKeyFile] });
    const installed = await rig.install(a, { features: ['message-audit'], expiresAt: '2098-12-31' });
    assert.equal(installed.status, 'valid');
    assert.deepEqual(installed.features, ['message-audit']);
    const later = await rig.travelTo(a, new Date('2099-01-01T00:00:00Z'));
    assert.equal(later.status, 'expired');
    assert.deepEqual(later.features, []);
    assert.equal((await rig.travelTo(a, null)).status, 'valid');
  });

  it('picks up a replaced licence file and a real expiry through its scheduled check, without a restart', async function () {
    this.timeout(30_000);
    const a = await start({ licenceCheckCron: '* * * * * *' });
    const watch = watchLicence(a.broker);
    // Written behind the service's back, as `qiao licence install` does when the server is not reachable.
    const soon = new Date(Date.now() + 2500);
    fs.mkdirSync(path.dirname(a.config.licenceFile), { recursive: true });
    fs.writeFileSync(`${a.config.licenceFile}.tmp`, JSON.stringify(issue({ seats: 77, expiresAt: soon })));
    fs.renameSync(`${a.config.licenceFile}.tmp`, a.config.licenceFile);

    const valid = await watch.next((e) => e.status === 'valid' && e.seats === 77);
    assert.equal(valid.features.length, 3);
    const expired = await watch.next((e) => e.status === 'expired');
    assert.deepEqual(expired.features, []);
    assert.equal(expired.seats, 77);
  });

  it('starts with a bad licence file: the core runs, status invalid naming the file, trial terms', async () => {
    const dataDir = path.join(dir, 'bad-json');
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'licence.json');
    fs.writeFileSync(file, '{"licence": {"id": "x", "seats": 9');
    const a = await start({}, dataDir);
    const s = await a.broker.call<LicenceStatus>('licence.status');
    assert.equal(s.status, 'invalid');
    assert.equal(s.source, 'trial');
    assert.ok(s.reason!.startsWith(`${file}: not valid JSON`), s.reason);
    assert.equal(s.seats, 50);
    assert.deepEqual(s.features, []);
    // The rest of the core is serving.
    assert.ok(await a.broker.call('system.info'));

    // Fixing the file is picked up by the next check.
    fs.writeFileSync(file, JSON.stringify(issue()));
    assert.equal((await a.broker.call<LicenceStatus>('licence.check')).status, 'valid');
  });

  it('starts with a tampered licence file: status invalid, the reason says the signature does not match', async () => {
    const dataDir = path.join(dir, 'tampered');
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'licence.json');
    const doc = issue();
    doc.licence.seats = 5000;
    fs.writeFileSync(file, JSON.stringify(doc));
    const a = await start({}, dataDir);
    const s = await a.broker.call<LicenceStatus>('licence.status');
    assert.equal(s.status, 'invalid');
    assert.equal(s.reason, `${file}: signature does not match (tampered or signed by another key)`);
    assert.equal(s.seats, 50);
    assert.equal(await a.broker.call('licence.hasFeature', { feature: 'rtx-bridge' }), false);
  });

  it('logs one line naming the file and the problem for a bad licence file, not one per check', async () => {
    const dataDir = path.join(dir, 'logged');
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'licence.json');
    const doc = issue();
    doc.licence.features.push('enterprise-cluster');
    fs.writeFileSync(file, JSON.stringify(doc));
    // A real process with real logging: start the core, re-check three times, print the status, stop.
    const script = `
      import { startQiao } from ${JSON.stringify(new URL('../app.ts', import.meta.url).href)};
      import { loadConfig } from ${JSON.stringify(new URL('../config.ts', import.meta.url).href)};
      const app = await startQiao(loadConfig(process.env, { services: ['system', 'licence'], logLevel: 'warn' }));
      for (let i = 0; i < 3; i++) await app.broker.call('licence.check');
      console.log('STATUS ' + JSON.stringify(await app.broker.call('licence.status')));
      await app.stop();
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, DATABASE_URL: url(), QIAO_DATA_DIR: dataDir, QIAO_LICENCE_TRUSTED_KEYS: pubFile, QIAO_PLUGINS_FILE: path.join(dir, 'plugins.json') },
    });
    assert.equal(r.status, 0, r.stderr);
    const output = `${r.stdout}\n${r.stderr}`;
    const lines = output.split('\n').filter((l) => l.includes('licence: '));
    assert.equal(lines.length, 1, output);
    assert.ok(lines[0].endsWith(`licence: ${file}: signature does not match (tampered or signed by another key)`), lines[0]);
    const status = JSON.parse(/STATUS (.*)/.exec(r.stdout)![1]) as LicenceStatus;
    assert.equal(status.status, 'invalid');
  });

  it('starts with an expired licence file: status expired, features off, seats as licensed', async () => {
    const dataDir = path.join(dir, 'expired');
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'licence.json'), JSON.stringify(issue({ seats: 800, issuedAt: '2024-01-01', expiresAt: '2025-01-01' })));
    const a = await start({}, dataDir);
    const s = await a.broker.call<LicenceStatus>('licence.status');
    assert.equal(s.status, 'expired');
    assert.equal(s.source, 'file');
    assert.equal(s.seats, 800);
    assert.deepEqual(s.features, []);
    assert.match(s.reason!, /expired on 2025-01-01T23:59:59\.999Z/);
  });

  it('starts with a bad cron expression on the default schedule, and stops its job when stopped', async () => {
    const a = await start({ licenceCheckCron: 'every minute please' });
    const name = `licence-check-${a.config.nodeId}`;
    assert.ok([...cron.getTasks().values()].some((t) => t.name === name));
    assert.equal((await a.broker.call<LicenceStatus>('licence.status')).status, 'trial');
    await a.stop();
    app = null;
    assert.ok(![...cron.getTasks().values()].some((t) => t.name === name));
  });
});
