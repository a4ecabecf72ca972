import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * The envelope cipher of the Youdu-compatible open API, written from the published description (not
 * shared with the server's code, so each checks the other): 16 random bytes ‖ uint32 BE length ‖ message
 * ‖ appId, padded to a multiple of 32 bytes, AES-256-CBC with IV = key[0:16], base64.
 */
export function keyOf(encodingAesKey: string): Buffer {
  const key = Buffer.from(encodingAesKey, 'base64');
  if (key.length !== 32) throw new Error('EncodingAESKey must be the base64 of 32 bytes');
  return key;
}

export function seal(message: string | Buffer, key: Buffer, appId: string): string {
  const body = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  const plain = Buffer.concat([randomBytes(16), len, body, Buffer.from(appId, 'utf8')]);
  const pad = 32 - (plain.length % 32);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]).toString('base64');
}

export function open(encrypted: string, key: Buffer, appId: string): Buffer {
  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  decipher.setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(Buffer.from(encrypted, 'base64')), decipher.final()]);
  const pad = plain[plain.length - 1];
  if (pad < 1 || pad > 32) throw new Error('bad padding');
  const body = plain.subarray(0, plain.length - pad);
  const len = body.readUInt32BE(16);
  if (20 + len > body.length) throw new Error('bad length');
  if (body.subarray(20 + len).toString('utf8') !== appId) throw new Error(`sealed for another app, not ${appId}`);
  return body.subarray(20, 20 + len);
}

export function sign(token: string, timestamp: string, nonce: string, encrypted: string): string {
  return createHash('sha1').update([token, timestamp, nonce, encrypted].sort().join('')).digest('hex');
}
