import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  generateKeyPair,
  issueLicence,
  KNOWN_FEATURES,
  loadTrustedKeys,
  publicKeyFromPem,
  stateAt,
  verifyLicence,
  VENDOR_KEYS_DIR,
  type LicenceDocument,
  type TrustedKey,
} from './licence-document.ts';
import { effectiveLicence, TRIAL_DAYS, TRIAL_SEATS } from './effective-licence.ts';

const vendor = generateKeyPair();
const trusted: TrustedKey[] = [publicKeyFromPem(vendor.publicKeyPem, 'test-vendor.pub.pem')];

function issue(overrides: Partial<Parameters<typeof issueLicence>[0]> = {}): LicenceDocument {
  return issueLicence(
    {
      company: 'Acme Trading 有限公司',
      seats: 500,
      issuedAt: '2026-01-01',
      expiresAt: '2027-01-31',
      features: ['rtx-bridge', 'message-audit', 'com.acme.autoreply'],
      ...overrides,
    },
    vendor.privateKeyPem,
  );
}

/** Asserts a QIAO_LICENCE_INVALID whose message matches `pattern`. */
function refuses(input: unknown, pattern: RegExp, keys: TrustedKey[] = trusted): void {
  assert.throws(
    () => verifyLicence(input, keys),
    (err: Error & { type?: string }) => {
      assert.equal(err.type, 'QIAO_LICENCE_INVALID');
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('licence document', () => {
  it('signs and verifies a licence, keeping every field', () => {
    const doc = issue({ buin: 123456 });
    const v = verifyLicence(doc, trusted);
    assert.equal(v.licence.company, 'Acme Trading 有限公司');
    assert.equal(v.licence.seats, 500);
    assert.equal(v.licence.buin, 123456);
    assert.deepEqual(v.licence.features, ['rtx-bridge', 'message-audit', 'com.acme.autoreply']);
    assert.equal(v.licence.keyId, vendor.keyId);
    assert.equal(v.signedBy.keyId, vendor.keyId);
    // Bare dates: the licence runs from the start of the first day to the end of the last (UTC).
    assert.equal(v.issuedAt.toISOString(), '2026-01-01T00:00:00.000Z');
    assert.equal(v.expiresAt.toISOString(), '2027-01-31T23:59:59.999Z');
    assert.equal(Buffer.from(doc.signature, 'base64').length, 64);
  });

  it('verifies the file text, also when re-indented with its keys reordered (canonical JSON is signed)', () => {
    const doc = issue();
    assert.equal(verifyLicence(JSON.stringify(doc, null, 2), trusted).licence.seats, 500);
    const l = doc.licence;
    const reordered = `{"signature":${JSON.stringify(doc.signature)},"licence":${JSON.stringify({
      features: l.features,
      expiresAt: l.expiresAt,
      seats: l.seats,
      keyId: l.keyId,
      issuedAt: l.issuedAt,
      company: l.company,
      id: l.id,
    })}}`;
    assert.equal(verifyLicence(reordered, trusted).licence.id, l.id);
  });

  it('refuses a tampered field: seats raised after signing', () => {
    const doc = issue();
    doc.licence.seats = 5000;
    refuses(doc, /^signature does not match \(tampered or signed by another key\)$/);
  });

  it('refuses other tampering: an added feature, a later expiry, a removed keyId', () => {
    const a = issue();
    a.licence.features.push('sms-gateway');
    refuses(a, /signature does not match/);
    const b = issue();
    b.licence.expiresAt = '2099-01-01T00:00:00.000Z';
    refuses(b, /signature does not match/);
    const c = issue();
    delete c.licence.keyId;
    refuses(c, /signature does not match any trusted key \(tampered or signed by an untrusted key\)/);
  });

  it('refuses a licence signed by a key the core does not trust', () => {
    const other = generateKeyPair();
    const doc = issueLicence({ company: 'X', seats: 10, expiresAt: '2030-01-01' }, other.privateKeyPem);
    refuses(doc, new RegExp(`^signed by an untrusted key \\(keyId ${other.keyId} is not among the 1 trusted key\\(s\\)\\)$`));
    // The same licence verifies once its key is trusted: key rotation is adding a key.
    const both = [...trusted, publicKeyFromPem(other.publicKeyPem, 'other.pub.pem')];
    assert.equal(verifyLicence(doc, both).signedBy.source, 'other.pub.pem');
  });

  it('refuses an untrusted signature forged onto the vendor keyId', () => {
    const other = generateKeyPair();
    const doc = issueLicence({ company: 'X', seats: 10, expiresAt: '2030-01-01' }, other.privateKeyPem);
    doc.licence.keyId = vendor.keyId;
    refuses(doc, /signature does not match/);
  });

  it('refuses malformed JSON, an empty file and non-objects, saying so', () => {
    refuses('{"licence": {"id": "x",', /^not valid JSON \(/);
    refuses('', /the file is empty/);
    refuses('[1,2]', /the document must be an object/);
    refuses('"text"', /the document must be an object/);
  });

  it('names a missing field', () => {
    for (const field of ['id', 'company', 'seats', 'issuedAt', 'expiresAt', 'features'] as const) {
      const doc = issue() as unknown as { licence: Record<string, unknown> };
      delete doc.licence[field];
      refuses(doc, new RegExp(`^missing field "licence\\.${field}"$`));
    }
    const { licence } = issue();
    refuses({ licence }, /^missing field "signature"$/);
  });

  it('names an ill-typed or unknown field', () => {
    const a = issue() as unknown as { licence: Record<string, unknown> };
    a.licence.seats = '500';
    refuses(a, /^field "licence\.seats" must be an integer$/);
    const b = issue() as unknown as { licence: Record<string, unknown> };
    b.licence.features = 'rtx-bridge';
    refuses(b, /^field "licence\.features" must be an array$/);
    const c = issue() as unknown as { licence: Record<string, unknown> };
    c.licence.expiresAt = 'next year';
    refuses(c, /^field "licence\.expiresAt" must be an ISO 8601 date/);
    const d = issue() as unknown as { licence: Record<string, unknown> };
    d.licence.seat = 5;
    refuses(d, /^unknown field "licence\.seat"$/);
    const e = issue() as unknown as { licence: Record<string, unknown> };
    e.licence.features = ['rtx-bridge', 'Message Audit'];
    refuses(e, /^licence\.features\[1\] is not a valid feature key/);
    const f = issue();
    f.signature = 'not base64!';
    refuses(f, /^field "signature" is not a base64 Ed25519 signature \(64 bytes\)$/);
  });

  it('refuses expiresAt before issuedAt, and dates that do not exist', () => {
    // Signed as such, so only the date rule can be what refuses it.
    assert.throws(() => issue({ issuedAt: '2027-02-01', expiresAt: '2027-01-31' }), /expiresAt .* is not after licence\.issuedAt/);
    const doc = issue();
    doc.licence.issuedAt = '2028-01-01';
    refuses(doc, /^licence\.expiresAt \(2027-01-31T23:59:59\.999Z\) is not after licence\.issuedAt \(2028-01-01\)$/);
    const bad = issue();
    bad.licence.expiresAt = '2027-02-30';
    refuses(bad, /^field "licence\.expiresAt" is not a real date: "2027-02-30"$/);
  });

  it('accepts the known feature keys and vendor keys, and refuses bad ones at issue time', () => {
    const doc = issue({ features: [...KNOWN_FEATURES, 'com.acme.autoreply', 'x1'] });
    assert.equal(verifyLicence(doc, trusted).licence.features.length, KNOWN_FEATURES.length + 2);
    assert.throws(() => issue({ features: ['Rtx_Bridge'] }), (err: Error & { type?: string }) => err.type === 'QIAO_VALIDATION' && /features\[0\]/.test(err.message));
    assert.throws(() => issue({ seats: 0 }), (err: Error & { type?: string }) => err.type === 'QIAO_VALIDATION');
  });

  it('refuses a non-Ed25519 signing key at issue time', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.throws(() => issueLicence({ company: 'X', seats: 1, expiresAt: '2030-01-01' }, rsa), /must be Ed25519, got rsa/);
  });

  it('tells expired from valid without calling it invalid', () => {
    const v = verifyLicence(issue(), trusted);
    assert.equal(stateAt(v, new Date('2027-01-31T12:00:00Z')), 'valid');
    assert.equal(stateAt(v, new Date('2027-02-01T00:00:00Z')), 'expired');
  });

  it('ships one trusted vendor Ed25519 public key and no private key', () => {
    const files = fs.readdirSync(VENDOR_KEYS_DIR);
    assert.ok(files.includes('qiao-vendor-2026.pub.pem'));
    assert.deepEqual(files.filter((f) => !f.endsWith('.pub.pem')), []);
    for (const f of files) assert.doesNotMatch(fs.readFileSync(path.join(VENDOR_KEYS_DIR, f), 'utf8'), /PRIVATE KEY/);
    const { keys, problems } = loadTrustedKeys([]);
    assert.deepEqual(problems, []);
    assert.ok(keys.some((k) => k.name === 'qiao-vendor-2026'));
  });

  it('adds configured trusted key files and reports the unusable ones without dropping the rest', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-keys-'));
    try {
      const good = path.join(dir, 'rig.pub.pem');
      fs.writeFileSync(good, vendor.publicKeyPem);
      const garbage = path.join(dir, 'garbage.pem');
      fs.writeFileSync(garbage, 'hello');
      const { keys, problems } = loadTrustedKeys([good, garbage, path.join(dir, 'missing.pem')]);
      assert.ok(keys.some((k) => k.keyId === vendor.keyId && k.name === 'rig'));
      assert.equal(problems.length, 2);
      assert.match(problems[0], /garbage\.pem: not a PEM public key/);
      assert.match(problems[1], /missing\.pem: trusted key file does not exist/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('effective licence rules', () => {
  const installedAt = new Date('2026-03-01T08:00:00Z');
  const company = { name: 'Acme', buin: 123456 };
  const base = { file: '/srv/qiao/licence.json', installedAt, company, fallbackCompanyName: 'My Company' };

  it('runs a 14-day, 50-seat trial with core features only when there is no licence', () => {
    const e = effectiveLicence({ ...base, outcome: { kind: 'none' }, now: new Date('2026-03-02T08:00:00Z') });
    assert.equal(e.status, 'trial');
    assert.equal(e.source, 'trial');
    assert.equal(e.seats, TRIAL_SEATS);
    assert.equal(TRIAL_SEATS, 50);
    assert.deepEqual(e.features, []);
    assert.equal(e.issuedAt, installedAt.toISOString());
    assert.equal(new Date(e.expiresAt).getTime() - installedAt.getTime(), TRIAL_DAYS * 86_400_000);
    assert.equal(TRIAL_DAYS, 14);
    assert.equal(e.daysLeft, 13);
    assert.equal(e.company, 'Acme');
    const after = effectiveLicence({ ...base, outcome: { kind: 'none' }, now: new Date('2026-03-15T08:00:00Z') });
    assert.equal(after.status, 'expired');
    assert.equal(after.seats, 50);
    assert.match(after.reason!, /14-day trial ended on 2026-03-15T08:00:00\.000Z/);
  });

  it('falls back to the trial terms for an unusable file, with the file named in the reason', () => {
    const e = effectiveLicence({ ...base, outcome: { kind: 'invalid', problem: 'not valid JSON (x)' }, now: new Date('2026-03-02T08:00:00Z') });
    assert.equal(e.status, 'invalid');
    assert.equal(e.reason, '/srv/qiao/licence.json: not valid JSON (x)');
    assert.equal(e.seats, 50);
    assert.deepEqual(e.features, []);
  });

  it('turns features off but keeps seats when the licence expires; refuses another installation', () => {
    const verified = verifyLicence(issue({ buin: 123456 }), trusted);
    const during = effectiveLicence({ ...base, outcome: { kind: 'verified', verified }, now: new Date('2026-06-01T00:00:00Z') });
    assert.equal(during.status, 'valid');
    assert.deepEqual(during.features, ['com.acme.autoreply', 'message-audit', 'rtx-bridge']);
    assert.equal(during.company, 'Acme Trading 有限公司');
    const after = effectiveLicence({ ...base, outcome: { kind: 'verified', verified }, now: new Date('2027-02-01T00:00:00Z') });
    assert.equal(after.status, 'expired');
    assert.deepEqual(after.features, []);
    assert.equal(after.seats, 500);
    assert.equal(after.daysLeft, 0);
    assert.match(after.reason!, /expired on 2027-01-31T23:59:59\.999Z/);
    const elsewhere = effectiveLicence({ ...base, company: { name: 'Acme', buin: 654321 }, outcome: { kind: 'verified', verified }, now: new Date('2026-06-01T00:00:00Z') });
    assert.equal(elsewhere.status, 'invalid');
    assert.match(elsewhere.reason!, /is for company number 123456, this installation is 654321/);
  });
});
