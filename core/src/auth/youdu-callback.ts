import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { qiaoError } from '../errors.ts';

/**
 * The Youdu third-party authentication callback, wire-compatible with Youdu's open API (第三方认证): the
 * server POSTs `{ toBuin, toApp, encrypt }` to the configured URL with `msg_signature`, `timestamp` and
 * `nonce` in the query; `encrypt` is AES-256-CBC (IV = first 16 key bytes, PKCS#7 padding to 32-byte
 * blocks) of random(16) + length(4, big-endian) + message + appId, base64; the message is
 * `{ fromUser, createTime, packageId, msgType: "auth", passwd }`. The third party answers
 * `{ errcode, errmsg }`: 0 authenticated, 300002 wrong password, 300001 no such account, -1 its own error.
 */

export const ERRCODE_OK = 0;
export const ERRCODE_INTERNALERR = -1;
export const ERRCODE_ACCOUNT_NOTEXIST = 300001;
export const ERRCODE_ACCOUNT_AUTHFAILED = 300002;

const BLOCK = 32;
const MAX_ANSWER_BYTES = 64 * 1024;

export function aesKeyOf(encodingAesKey: string): Buffer {
  const key = Buffer.from(encodingAesKey, 'base64');
  if (key.length !== 32) throw qiaoError('QIAO_VALIDATION', 'externalAuth.encodingAesKey must be the base64 of 32 bytes (43 or 44 characters)', { field: 'externalAuth.encodingAesKey' });
  return key;
}

function randomText(n: number): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Buffer.from([...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join(''), 'ascii');
}

export function youduEncrypt(message: string | Buffer, key: Buffer, appId: string): string {
  const msg = Buffer.isBuffer(message) ? message : Buffer.from(message, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(msg.length);
  const plain = Buffer.concat([randomText(16), length, msg, Buffer.from(appId, 'utf8')]);
  const pad = BLOCK - (plain.length % BLOCK);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]).toString('base64');
}

export function youduDecrypt(encrypted: string, key: Buffer): { message: Buffer; appId: string } {
  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  decipher.setAutoPadding(false);
  const raw = Buffer.concat([decipher.update(Buffer.from(encrypted, 'base64')), decipher.final()]);
  const pad = raw[raw.length - 1];
  const body = raw.subarray(0, raw.length - (pad >= 1 && pad <= BLOCK ? pad : 0));
  if (body.length < 20) throw new Error('encrypted message is too short');
  const length = body.readUInt32BE(16);
  if (20 + length > body.length) throw new Error('encrypted message length is out of range');
  return { message: body.subarray(20, 20 + length), appId: body.subarray(20 + length).toString('utf8') };
}

/** sha1 of the four values sorted as strings and concatenated, hex. */
export function youduSignature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  return createHash('sha1').update([token, timestamp, nonce, encrypt].sort().join('')).digest('hex');
}

export interface CallbackTarget {
  url: string;
  token: string;
  appId: string;
  encodingAesKey: string;
  buin: number;
  timeoutMs: number;
}

export type ExternalVerdict = 'ok' | 'bad-password' | 'no-account';

/** Asks the third party whether `password` is right for `account`; throws QIAO_AUTH_EXTERNAL_UNAVAILABLE when it cannot tell. */
export async function verifyExternal(target: CallbackTarget, account: string, password: string, now: Date): Promise<ExternalVerdict> {
  const key = aesKeyOf(target.encodingAesKey);
  const createTime = Math.floor(now.getTime() / 1000);
  const message = JSON.stringify({ fromUser: account, createTime, packageId: randomBytes(8).toString('hex'), msgType: 'auth', passwd: password });
  const encrypt = youduEncrypt(message, key, target.appId);
  const timestamp = String(createTime);
  const nonce = randomBytes(8).toString('hex');
  const url = new URL(target.url);
  url.searchParams.set('msg_signature', youduSignature(target.token, timestamp, nonce, encrypt));
  url.searchParams.set('timestamp', timestamp);
  url.searchParams.set('nonce', nonce);
  const where = `third-party authentication at ${target.url}`;
  let status: number;
  let text: string;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ toBuin: target.buin, toApp: target.appId, encrypt }),
      signal: AbortSignal.timeout(target.timeoutMs),
      redirect: 'error',
    });
    status = res.status;
    const body = Buffer.from(await res.arrayBuffer());
    text = body.subarray(0, MAX_ANSWER_BYTES).toString('utf8');
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? `did not answer within ${target.timeoutMs} ms` : `cannot be reached (${e.cause?.code ?? e.message})`;
    throw qiaoError('QIAO_AUTH_EXTERNAL_UNAVAILABLE', `${where} ${why}`);
  }
  if (status < 200 || status >= 300) throw qiaoError('QIAO_AUTH_EXTERNAL_UNAVAILABLE', `${where} answered HTTP ${status}`);
  let answer: { errcode?: unknown; errmsg?: unknown };
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    throw qiaoError('QIAO_AUTH_EXTERNAL_UNAVAILABLE', `${where} answered something that is not JSON`);
  }
  const code = Number(answer?.errcode);
  if (code === ERRCODE_OK) return 'ok';
  if (code === ERRCODE_ACCOUNT_AUTHFAILED) return 'bad-password';
  if (code === ERRCODE_ACCOUNT_NOTEXIST) return 'no-account';
  throw qiaoError('QIAO_AUTH_EXTERNAL_UNAVAILABLE', `${where} answered errcode ${String(answer?.errcode)}: ${String(answer?.errmsg ?? '').slice(0, 200)}`);
}
