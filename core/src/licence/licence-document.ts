import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import canonicalize from 'canonicalize';
import { qiaoError } from '../errors.ts';

/**
 * The licence file format, signing and verification. Pure: no broker, no storage. A licence is
 *
 *   { "licence": { id, company, buin?, seats, issuedAt, expiresAt, features, keyId? }, "signature": "<base64>" }
 *
 * where the signature is Ed25519 over the RFC 8785 canonical JSON of the `licence` object, so the file may be
 * re-indented or its keys reordered without breaking it, while any change of a value does.
 */

/** Feature keys the first-party plugins check for; vendors add their own (reverse-DNS, e.g. `com.acme.autoreply`). */
export const KNOWN_FEATURES = ['rtx-bridge', 'message-audit', 'sms-gateway', 'mail-notifier', 'ldap-sync', 'enterprise-cluster'] as const;

export const FEATURE_KEY_PATTERN = '^[a-z0-9][a-z0-9.-]*$';

/** The vendor public keys shipped with the core; every `*.pub.pem` here is trusted. */
export const VENDOR_KEYS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'keys');

export interface LicenceFields {
  id: string;
  company: string;
  /** The company number of the one installation this licence is for; absent = any installation. */
  buin?: number;
  seats: number;
  issuedAt: string;
  expiresAt: string;
  features: string[];
  /** Fingerprint of the signing key (see `keyIdOf`), so the verifier knows which trusted key to use. */
  keyId?: string;
}

export interface LicenceDocument {
  licence: LicenceFields;
  signature: string;
}

export interface TrustedKey {
  keyId: string;
  /** Where the key came from (its file), for messages. */
  source: string;
  /** A short human name: the file name without `.pub.pem`. */
  name: string;
  key: KeyObject;
}

export interface VerifiedLicence {
  licence: LicenceFields;
  issuedAt: Date;
  expiresAt: Date;
  signedBy: TrustedKey;
}

export interface IssueFields {
  id?: string;
  company: string;
  buin?: number;
  seats: number;
  /** Defaults to now. A `YYYY-MM-DD` date means the start of that day (UTC). */
  issuedAt?: string | Date;
  /** A `YYYY-MM-DD` date means the end of that day (UTC). */
  expiresAt: string | Date;
  features?: string[];
}

const DATE_PATTERN = '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2}))?$';
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

export const LICENCE_SCHEMA = {
  type: 'object',
  required: ['licence', 'signature'],
  additionalProperties: false,
  properties: {
    licence: {
      type: 'object',
      required: ['id', 'company', 'seats', 'issuedAt', 'expiresAt', 'features'],
      additionalProperties: false,
      properties: {
        id: { type: 'string', minLength: 1, maxLength: 200 },
        company: { type: 'string', minLength: 1, maxLength: 200 },
        buin: { type: 'integer', minimum: 1 },
        seats: { type: 'integer', minimum: 1, maximum: 10_000_000 },
        issuedAt: { type: 'string', pattern: DATE_PATTERN },
        expiresAt: { type: 'string', pattern: DATE_PATTERN },
        features: {
          type: 'array',
          maxItems: 1000,
          uniqueItems: true,
          items: { type: 'string', maxLength: 200, pattern: FEATURE_KEY_PATTERN },
        },
        keyId: { type: 'string', minLength: 1, maxLength: 200 },
      },
    },
    signature: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: true });
const validateShape = ajv.compile<LicenceDocument>(LICENCE_SCHEMA);

function invalid(message: string, field?: string): Error {
  return qiaoError('QIAO_LICENCE_INVALID', message, field ? { field } : undefined);
}

/** One ajv error as a sentence that names the field (`licence.seats must be an integer`). */
function describeSchemaError(e: ErrorObject): { message: string; field: string } {
  const segments = e.instancePath.split('/').filter(Boolean).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  let field = segments.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
  const at = (name: string) => (field ? `${field}.${name}` : name);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      field = at(String(params.missingProperty));
      return { field, message: `missing field "${field}"` };
    case 'additionalProperties':
      field = at(String(params.additionalProperty));
      return { field, message: `unknown field "${field}"` };
    case 'type': {
      const t = String(params.type);
      const article = /^[aeiou]/.test(t) ? 'an' : 'a';
      return { field: field || 'document', message: `${field ? `field "${field}"` : 'the document'} must be ${article} ${t}` };
    }
    case 'pattern':
      if (/^licence\.features\[\d+\]$/.test(field)) {
        return { field, message: `${field} is not a valid feature key (lower-case letters, digits, "." and "-", e.g. "message-audit" or "com.acme.autoreply")` };
      }
      return { field, message: `field "${field}" must be an ISO 8601 date (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)` };
    case 'uniqueItems':
      return { field, message: `field "${field}" lists a feature twice` };
    default:
      return { field: field || 'document', message: `field "${field || 'document'}" ${e.message ?? 'is invalid'}` };
  }
}

/** `YYYY-MM-DD` or RFC 3339; a bare date means the start (`issuedAt`) or the end (`expiresAt`) of that UTC day. */
export function parseLicenceDate(value: string, end: 'start' | 'end', field: string): Date {
  const iso = DATE_ONLY.test(value) ? `${value}T${end === 'start' ? '00:00:00.000' : '23:59:59.999'}Z` : value;
  const d = new Date(iso);
  // Date accepts 2026-02-31 by rolling over; a licence date that is not a real day is a typo, not a date.
  if (Number.isNaN(d.getTime()) || (DATE_ONLY.test(value) && d.toISOString().slice(0, 10) !== value)) {
    throw invalid(`field "${field}" is not a real date: "${value}"`, field);
  }
  return d;
}

/** Accepts the file's text or an already-parsed object; checks the shape, not the signature. */
export function parseLicenceDocument(input: unknown): LicenceDocument {
  let doc = input;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    const text = String(input).replace(/^\uFEFF/, '');
    if (!text.trim()) throw invalid('the file is empty, expected a licence JSON document');
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw invalid(`not valid JSON (${(err as Error).message})`);
    }
  }
  if (!validateShape(doc)) {
    const { message, field } = describeSchemaError(validateShape.errors![0]);
    throw invalid(message, field);
  }
  return doc;
}

/** A stable short id for a public key: the first 16 hex digits of SHA-256 over its SPKI DER form. */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function generateKeyPair(): { privateKeyPem: string; publicKeyPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

function signedBytes(licence: LicenceFields): Buffer {
  // canonicalize only returns undefined for undefined input; the schema guarantees an object.
  return Buffer.from(canonicalize(licence) as string, 'utf8');
}

/** Builds and signs a licence. Throws QIAO_VALIDATION naming the field for bad input. */
export function issueLicence(fields: IssueFields, privateKeyPem: string): LicenceDocument {
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (err) {
    throw qiaoError('QIAO_VALIDATION', `the signing key is not a PEM private key (${(err as Error).message})`, { field: 'key' });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw qiaoError('QIAO_VALIDATION', `the signing key must be Ed25519, got ${key.asymmetricKeyType}`, { field: 'key' });
  }
  const toIso = (v: string | Date, end: 'start' | 'end', field: string) => {
    if (v instanceof Date) return v.toISOString();
    try {
      return parseLicenceDate(v, end, field).toISOString();
    } catch (err) {
      throw qiaoError('QIAO_VALIDATION', (err as Error).message, { field });
    }
  };
  const licence: LicenceFields = {
    id: fields.id ?? `lic-${randomUUID()}`,
    company: fields.company,
    ...(fields.buin !== undefined ? { buin: fields.buin } : {}),
    seats: fields.seats,
    issuedAt: toIso(fields.issuedAt ?? new Date(), 'start', 'issuedAt'),
    expiresAt: toIso(fields.expiresAt, 'end', 'expiresAt'),
    features: [...(fields.features ?? [])],
    keyId: keyIdOf(key),
  };
  const document: LicenceDocument = { licence, signature: 'unsigned' };
  // Validate before signing so a vendor never ships a licence the core would refuse.
  try {
    parseLicenceDocument(document);
    checkDates(licence);
  } catch (err) {
    throw qiaoError('QIAO_VALIDATION', (err as Error).message, { field: (err as { data?: { field?: string } }).data?.field?.replace(/^licence\./, '') });
  }
  document.signature = sign(null, signedBytes(licence), key).toString('base64');
  return document;
}

function checkDates(licence: LicenceFields): { issuedAt: Date; expiresAt: Date } {
  const issuedAt = parseLicenceDate(licence.issuedAt, 'start', 'licence.issuedAt');
  const expiresAt = parseLicenceDate(licence.expiresAt, 'end', 'licence.expiresAt');
  if (expiresAt.getTime() <= issuedAt.getTime()) {
    throw invalid(`licence.expiresAt (${licence.expiresAt}) is not after licence.issuedAt (${licence.issuedAt})`, 'licence.expiresAt');
  }
  return { issuedAt, expiresAt };
}

/**
 * Checks shape, dates and signature against the trusted keys. Expiry is not checked here: an expired
 * licence is still a genuine one, and what expiry does is the licence service's business.
 */
export function verifyLicence(input: unknown, trustedKeys: TrustedKey[]): VerifiedLicence {
  const doc = parseLicenceDocument(input);
  const { licence } = doc;
  const { issuedAt, expiresAt } = checkDates(licence);
  const signature = Buffer.from(doc.signature, 'base64');
  if (signature.length !== 64 || signature.toString('base64') !== doc.signature) {
    throw invalid('field "signature" is not a base64 Ed25519 signature (64 bytes)', 'signature');
  }
  if (trustedKeys.length === 0) throw invalid('no trusted licence keys are configured (core/keys/*.pub.pem is empty)');
  let candidates = trustedKeys;
  if (licence.keyId !== undefined) {
    candidates = trustedKeys.filter((k) => k.keyId === licence.keyId);
    if (candidates.length === 0) {
      throw invalid(`signed by an untrusted key (keyId ${licence.keyId} is not among the ${trustedKeys.length} trusted key(s))`, 'licence.keyId');
    }
  }
  const bytes = signedBytes(licence);
  const signedBy = candidates.find((k) => verify(null, bytes, k.key, signature));
  if (!signedBy) {
    throw invalid(
      licence.keyId !== undefined
        ? 'signature does not match (tampered or signed by another key)'
        : 'signature does not match any trusted key (tampered or signed by an untrusted key)',
      'signature',
    );
  }
  return { licence, issuedAt, expiresAt, signedBy };
}

/** Parses one PEM public key; throws a plain Error naming the problem. */
export function publicKeyFromPem(pem: string, source: string): TrustedKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new Error(`${source}: not a PEM public key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${source}: not an Ed25519 key (${key.asymmetricKeyType})`);
  return { keyId: keyIdOf(key), source, name: path.basename(source).replace(/\.pub\.pem$|\.pem$/, ''), key };
}

/**
 * The vendor keys in core/keys plus `extraFiles` (config.licenceTrustedKeyFiles). A key file that cannot be
 * read is reported in `problems` rather than thrown, so one bad file does not take the others down.
 */
export function loadTrustedKeys(extraFiles: string[] = [], vendorDir: string = VENDOR_KEYS_DIR): { keys: TrustedKey[]; problems: string[] } {
  const files: string[] = [];
  if (fs.existsSync(vendorDir)) {
    for (const f of fs.readdirSync(vendorDir).sort()) if (f.endsWith('.pub.pem')) files.push(path.join(vendorDir, f));
  }
  files.push(...extraFiles);
  const keys: TrustedKey[] = [];
  const problems: string[] = [];
  for (const file of files) {
    try {
      const k = publicKeyFromPem(fs.readFileSync(file, 'utf8'), file);
      if (!keys.some((existing) => existing.keyId === k.keyId)) keys.push(k);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      problems.push(e.code === 'ENOENT' ? `${file}: trusted key file does not exist` : e.message);
    }
  }
  return { keys, problems };
}

export type LicenceState = 'valid' | 'expired';

const DAY_MS = 86_400_000;

/** Whole days left, rounded up, never negative: a licence with 2 hours left has 1 day left. */
export function daysLeft(expiresAt: Date, now: Date): number {
  return Math.max(0, Math.ceil((expiresAt.getTime() - now.getTime()) / DAY_MS));
}

export function stateAt(verified: { expiresAt: Date }, now: Date): LicenceState {
  return now.getTime() >= verified.expiresAt.getTime() ? 'expired' : 'valid';
}
