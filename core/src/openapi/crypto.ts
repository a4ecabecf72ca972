import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { cgiError } from './errcodes.ts';

/**
 * Youdu's envelope cipher (docs/api/c01_00002.md, 加解密说明): plaintext = 16 random bytes ‖ uint32 BE
 * length of msg ‖ msg ‖ appId, padded PKCS#7-style to a multiple of 32 bytes (1–32 pad bytes, each the
 * count), AES-256-CBC with IV = key[0:16], base64.
 */
const BLOCK = 32;
/** Printable prefix like the vendor SDKs' (some receivers log the plaintext). */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function aesKey(encodingAesKey: string): Buffer {
  const key = Buffer.from(encodingAesKey, 'base64');
  if (key.length !== 32) throw new Error('an EncodingAESKey is the base64 of 32 bytes');
  return key;
}

export function randomPrefix(): Buffer {
  return Buffer.from([...randomBytes(16)].map((b) => ALPHABET.charCodeAt(b % ALPHABET.length)));
}

export function pad32(plain: Buffer): Buffer {
  const n = BLOCK - (plain.length % BLOCK);
  return Buffer.concat([plain, Buffer.alloc(n, n)]);
}

export function encrypt(message: Buffer | string, key: Buffer, appId: string, prefix: Buffer = randomPrefix()): string {
  if (prefix.length !== 16) throw new Error('the random prefix is 16 bytes');
  const msg = Buffer.isBuffer(message) ? message : Buffer.from(message, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(msg.length);
  const plain = pad32(Buffer.concat([prefix, length, msg, Buffer.from(appId, 'utf8')]));
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(plain), cipher.final()]).toString('base64');
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Decrypts and checks an `encrypt` value. Only the first cipher block depends on the IV, and it holds
 * nothing but the random prefix, so senders that use a random IV (the Python SDK does) decrypt the same.
 * Every malformation is ERRCODE_INVALID_ENCRYPT; a well-formed message sealed for another app is
 * ERRCODE_INVALID_APPID.
 */
export function decrypt(encrypted: string, key: Buffer, appId: string, field = 'encrypt'): Buffer {
  const text = encrypted.replace(/\s+/g, '');
  if (!text || !BASE64.test(text)) throw cgiError('ERRCODE_INVALID_ENCRYPT', `${field} is not base64`);
  const raw = Buffer.from(text, 'base64');
  if (raw.length === 0 || raw.length % BLOCK !== 0) throw cgiError('ERRCODE_INVALID_ENCRYPT', `${field} does not decrypt: ${raw.length} bytes is not a multiple of ${BLOCK}`);
  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  decipher.setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(raw), decipher.final()]);
  const n = plain[plain.length - 1];
  if (n < 1 || n > BLOCK || plain.subarray(plain.length - n).some((b) => b !== n)) {
    throw cgiError('ERRCODE_INVALID_ENCRYPT', `${field} does not decrypt with this app's EncodingAESKey (bad padding)`);
  }
  const body = plain.subarray(0, plain.length - n);
  if (body.length < 20) throw cgiError('ERRCODE_INVALID_ENCRYPT', `${field} is too short`);
  const length = body.readUInt32BE(16);
  if (20 + length > body.length) throw cgiError('ERRCODE_INVALID_ENCRYPT', `${field} does not decrypt with this app's EncodingAESKey (length out of range)`);
  const sealedFor = body.subarray(20 + length);
  const expected = Buffer.from(appId, 'utf8');
  if (sealedFor.length !== expected.length || !timingSafeEqual(sealedFor, expected)) {
    throw cgiError('ERRCODE_INVALID_APPID', `${field} was sealed for appId "${sealedFor.toString('utf8').slice(0, 64)}", not "${appId}"`);
  }
  return Buffer.from(body.subarray(20, 20 + length));
}

/**
 * True when the sender used its random prefix as the IV too (the vendor's Python SDK does): the first
 * cipher block is then E(key, 0) whatever the prefix, so equal messages give equal ciphertexts and a
 * repeat cannot be told from a replay by the ciphertext.
 */
export function prefixWasIv(encrypted: string, key: Buffer): boolean {
  const raw = Buffer.from(encrypted, 'base64');
  if (raw.length < 16) return false;
  const d = createDecipheriv('aes-256-ecb', key, null);
  d.setAutoPadding(false);
  return Buffer.concat([d.update(raw.subarray(0, 16)), d.final()]).every((b) => b === 0);
}

/** msg_signature: lower-case hex SHA-1 of token, timestamp, nonce and encrypt, sorted and concatenated. */
export function signature(token: string, timestamp: string, nonce: string, encrypted: string): string {
  return createHash('sha1').update([token, timestamp, nonce, encrypted].sort().join('')).digest('hex');
}
