import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, issueLicence, publicKeyFromPem, verifyLicence, type LicenceDocument } from './licence-document.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const QIAO = path.join(ROOT, 'core', 'bin', 'qiao.ts');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `qiao` command in a child process, as an admin or a vendor would. */
function qiao(args: string[], env: Record<string, string> = {}): Run {
  const base = { ...process.env };
  // Only what a test passes decides which extra keys are trusted and where the data lives.
  delete base.QIAO_LICENCE_TRUSTED_KEYS;
  delete base.QIAO_DATA_DIR;
  delete base.QIAO_LICENCE_FILE;
  const r = spawnSync(process.execPath, [QIAO, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...base, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A refusal: exit code 1 and exactly one line on stderr, no stack trace. */
function oneLineError(r: Run, pattern: RegExp): void {
  assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
}

describe('qiao licence CLI', function () {
  this.timeout(60_000);
  let dir: string;
  let keyFile: string;
  let pubFile: string;
  let trust: Record<string, string>;

  // Each test stands alone: the rig key and the licences the inspect/install tests read are made here.
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-licence-cli-'));
    const rig = generateKeyPair();
    keyFile = path.join(dir, 'rig.key.pem');
    pubFile = path.join(dir, 'rig.pub.pem');
    fs.writeFileSync(keyFile, rig.privateKeyPem, { mode: 0o600 });
    fs.writeFileSync(pubFile, rig.publicKeyPem);
    trust = { QIAO_LICENCE_TRUSTED_KEYS: pubFile };
    const write = (name: string, doc: LicenceDocument) => fs.writeFileSync(path.join(dir, name), `${JSON.stringify(doc, null, 2)}\n`);
    write('acme.json', issueLicence({ id: 'lic-acme-1', company: 'Acme', seats: 40, issuedAt: '2026-01-01', expiresAt: '2099-06-30' }, rig.privateKeyPem));
    write('old.json', issueLicence({ company: 'Old', seats: 5, issuedAt: '2024-01-01', expiresAt: '2025-01-01', features: ['ldap-sync'] }, rig.privateKeyPem));
    const good = JSON.parse(fs.readFileSync(path.join(dir, 'acme.json'), 'utf8')) as LicenceDocument;
    fs.writeFileSync(path.join(dir, 'tampered.json'), JSON.stringify({ ...good, licence: { ...good.licence, seats: 4000 } }, null, 2));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keygen writes a private key (mode 0600) and a public key, and never overwrites them', () => {
    const r = qiao(['licence', 'keygen', '--out', path.join(dir, 'keys'), '--name', 'acme-2026']);
    assert.equal(r.status, 0, r.stderr);
    const keyFile = path.join(dir, 'keys', 'acme-2026.key.pem');
    const pubFile = path.join(dir, 'keys', 'acme-2026.pub.pem');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(keyFile, 'utf8'), /BEGIN PRIVATE KEY/);
    const pub = publicKeyFromPem(fs.readFileSync(pubFile, 'utf8'), pubFile);
    assert.match(r.stdout, new RegExp(`key id:\\s+${pub.keyId}`));

    oneLineError(qiao(['licence', 'keygen', '--out', path.join(dir, 'keys'), '--name', 'acme-2026']), /^qiao: QIAO_CONFLICT: .*acme-2026\.key\.pem already exists/);

    // The new key signs licences that a core trusting its public key accepts.
    const out = path.join(dir, 'keygen-check.json');
    assert.equal(qiao(['licence', 'issue', '--key', keyFile, '--company', 'K', '--seats', '1', '--expires', '2099-01-01', '--out', out]).status, 0);
    assert.equal(qiao(['licence', 'inspect', out], { QIAO_LICENCE_TRUSTED_KEYS: pubFile }).status, 0);
  });

  it('issue prints a signed licence to stdout, and writes it with --out', () => {
    const r = qiao(['licence', 'issue', '--key', keyFile, '--company', 'Acme 有限公司', '--seats', '250', '--expires', '2099-12-31', '--features', 'rtx-bridge, message-audit,com.acme.autoreply', '--buin', '123456']);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as LicenceDocument;
    assert.equal(doc.licence.company, 'Acme 有限公司');
    assert.equal(doc.licence.seats, 250);
    assert.equal(doc.licence.buin, 123456);
    assert.equal(doc.licence.expiresAt, '2099-12-31T23:59:59.999Z');
    assert.deepEqual(doc.licence.features, ['rtx-bridge', 'message-audit', 'com.acme.autoreply']);
    const v = verifyLicence(doc, [publicKeyFromPem(fs.readFileSync(pubFile, 'utf8'), pubFile)]);
    assert.equal(v.licence.seats, 250);

    const out = path.join(dir, 'issued.json');
    const w = qiao(['licence', 'issue', '--key', keyFile, '--company', 'Acme', '--seats', '40', '--expires', '2099-06-30', '--issued', '2026-01-01', '--id', 'lic-issued-1', '--out', out]);
    assert.equal(w.status, 0, w.stderr);
    assert.match(w.stdout, /wrote licence lic-issued-1 for Acme to /);
    const written = JSON.parse(fs.readFileSync(out, 'utf8')) as LicenceDocument;
    assert.equal(written.licence.id, 'lic-issued-1');
    assert.equal(written.licence.issuedAt, '2026-01-01T00:00:00.000Z');
    assert.deepEqual(written.licence.features, []);
  });

  it('issue refuses bad input with one line naming the option', () => {
    const base = ['licence', 'issue', '--key', keyFile, '--company', 'Acme', '--expires', '2099-01-01'];
    oneLineError(qiao([...base, '--seats', 'lots']), /^qiao: QIAO_VALIDATION: --seats must be a positive whole number, got "lots" \(field: seats\)$/);
    oneLineError(qiao([...base, '--seats', '0']), /--seats must be a positive whole number/);
    oneLineError(qiao([...base, '--seats', '5', '--features', 'RTX Bridge']), /^qiao: QIAO_VALIDATION: licence\.features\[0\] is not a valid feature key/);
    oneLineError(qiao([...base.slice(0, -1), '2099-02-30', '--seats', '5']), /"expiresAt" is not a real date: "2099-02-30"/);
    oneLineError(qiao([...base, '--seats', '5', '--issued', '2100-01-01']), /is not after licence\.issuedAt/);
    oneLineError(qiao(['licence', 'issue', '--key', pubFile, '--company', 'A', '--seats', '5', '--expires', '2099-01-01']), /the signing key is not a PEM private key/);
    oneLineError(qiao(['licence', 'issue', '--key', path.join(dir, 'nope.pem'), '--company', 'A', '--seats', '5', '--expires', '2099-01-01']), /nope\.pem: private key file does not exist/);
  });

  it('inspect verifies against the trusted keys and prints what the licence grants', () => {
    const file = path.join(dir, 'acme.json');
    const r = qiao(['licence', 'inspect', file], trust);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^status\s+valid, \d+ day\(s\) left$/m);
    assert.match(r.stdout, /^licence\s+lic-acme-1$/m);
    assert.match(r.stdout, /^company\s+Acme$/m);
    assert.match(r.stdout, /^seats\s+40$/m);
    assert.match(r.stdout, /^expires\s+2099-06-30T23:59:59\.999Z$/m);
    assert.match(r.stdout, /^features\s+\(none: core features only\)$/m);
    assert.match(r.stdout, /^signed by\s+rig \(key [0-9a-f]{16}, /m);

    const json = qiao(['licence', 'inspect', file, '--json'], trust);
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { status: string; licence: { seats: number } };
    assert.equal(parsed.status, 'valid');
    assert.equal(parsed.licence.seats, 40);
  });

  it('inspect shows an expired licence as expired, not as invalid', () => {
    const file = path.join(dir, 'old.json');
    const r = qiao(['licence', 'inspect', file], trust);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^status\s+expired since 2025-01-01T23:59:59\.999Z/m);
    assert.match(r.stdout, /^features\s+ldap-sync$/m);
  });

  it('inspect refuses a tampered, untrusted, malformed or missing licence with one line naming the file', () => {
    const good = JSON.parse(fs.readFileSync(path.join(dir, 'acme.json'), 'utf8')) as LicenceDocument;
    const tampered = path.join(dir, 'tampered.json');
    oneLineError(qiao(['licence', 'inspect', tampered], trust), new RegExp(`^qiao: QIAO_LICENCE_INVALID: ${tampered.replace(/[.]/g, '\\.')}: signature does not match \\(tampered or signed by another key\\)$`));

    // Without the rig key, only the shipped vendor key is trusted.
    oneLineError(qiao(['licence', 'inspect', path.join(dir, 'acme.json')]), /^qiao: QIAO_LICENCE_INVALID: .*acme\.json: signed by an untrusted key \(keyId [0-9a-f]{16} is not among/);

    const broken = path.join(dir, 'broken.json');
    fs.writeFileSync(broken, '{"licence": {');
    oneLineError(qiao(['licence', 'inspect', broken], trust), /^qiao: QIAO_LICENCE_INVALID: .*broken\.json: not valid JSON \(/);

    const missingField = path.join(dir, 'missing-field.json');
    const { seats: _seats, ...withoutSeats } = good.licence;
    fs.writeFileSync(missingField, JSON.stringify({ licence: withoutSeats, signature: good.signature }));
    oneLineError(qiao(['licence', 'inspect', missingField], trust), /missing-field\.json: missing field "licence\.seats"$/);

    oneLineError(qiao(['licence', 'inspect', path.join(dir, 'absent.json')], trust), /^qiao: QIAO_NOT_FOUND: .*absent\.json: licence file does not exist$/);
  });

  it('install verifies the licence and puts it in place for the server; refuses a bad or expired one', () => {
    const dataDir = path.join(dir, 'data');
    const r = qiao(['licence', 'install', path.join(dir, 'acme.json')], { ...trust, QIAO_DATA_DIR: dataDir });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /installed licence lic-acme-1 for Acme \(40 seats/);
    const installed = path.join(dataDir, 'licence.json');
    assert.equal(fs.readFileSync(installed, 'utf8'), fs.readFileSync(path.join(dir, 'acme.json'), 'utf8'));

    oneLineError(qiao(['licence', 'install', path.join(dir, 'tampered.json')], { ...trust, QIAO_DATA_DIR: dataDir }), /tampered\.json: signature does not match/);
    oneLineError(qiao(['licence', 'install', path.join(dir, 'old.json')], { ...trust, QIAO_DATA_DIR: dataDir }), /^qiao: QIAO_LICENCE_EXPIRED: .*old\.json: licence .* expired on 2025-01-01T23:59:59\.999Z; the current licence stays$/);
    // The licence in place is still the good one.
    assert.equal((JSON.parse(fs.readFileSync(installed, 'utf8')) as LicenceDocument).licence.id, 'lic-acme-1');
  });
});
