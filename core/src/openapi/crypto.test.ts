import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { aesKey, decrypt, encrypt, pad32, prefixWasIv, signature } from './crypto.ts';
import { CgiError, ERRCODE } from './errcodes.ts';

const KEY = aesKey('AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=');
const APP = 'yd0123456789ABCDEF';

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CgiError, String(err));
    return err.errcode;
  }
  assert.fail('expected a CgiError');
}

describe('open API crypto', () => {
  it('matches the issue test vector byte for byte', () => {
    const out = encrypt('1700000000', KEY, APP, Buffer.from('0123456789abcdef'));
    assert.equal(out, '4j/AuRx71kQlxVlzbpsMWHh2+eLplXwgN2nil/N5HvZUOewZYzjOw1gY/CHLSoRZptZcfyrDJ0xx7nvkMNQxFg==');
    assert.equal(decrypt(out, KEY, APP).toString(), '1700000000');
  });

  it('pads to multiples of 32 with 1 to 32 bytes, a full block when already aligned', () => {
    for (let n = 0; n <= 70; n++) {
      const p = pad32(Buffer.alloc(n, 7));
      assert.equal(p.length % 32, 0);
      const count = p.length - n;
      assert.ok(count >= 1 && count <= 32, `n=${n} count=${count}`);
      assert.ok(p.subarray(n).every((b) => b === count));
    }
    // 16 prefix + 4 length + msg + 18 appId = 32 exactly when msg is empty... then a whole pad block follows.
    const aligned = encrypt(Buffer.alloc(0), KEY, 'yd0123456789ABCDEFGHIJKL', Buffer.from('0123456789abcdef'));
    assert.equal(Buffer.from(aligned, 'base64').length, 64);
    assert.equal(decrypt(aligned, KEY, 'yd0123456789ABCDEFGHIJKL').length, 0);
    for (const n of [1, 11, 12, 13, 43, 44, 45, 1000]) {
      const msg = randomBytes(n);
      assert.deepEqual(decrypt(encrypt(msg, KEY, APP), KEY, APP), msg);
    }
  });

  it('decrypts without depending on the first 16 bytes (senders with a random IV)', () => {
    const msg = Buffer.from('{"hello":"世界"}');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(msg.length);
    const plain = pad32(Buffer.concat([randomBytes(16), length, msg, Buffer.from(APP)]));
    const c = createCipheriv('aes-256-cbc', KEY, randomBytes(16));
    c.setAutoPadding(false);
    const sealed = Buffer.concat([c.update(plain), c.final()]).toString('base64');
    assert.equal(decrypt(sealed, KEY, APP).toString(), '{"hello":"世界"}');
  });

  it('recognises senders that use their random prefix as the IV (their equal messages seal equally)', () => {
    const seal = (msg: string) => {
      const m = Buffer.from(msg);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(m.length);
      const prefix = randomBytes(16);
      const c = createCipheriv('aes-256-cbc', KEY, prefix);
      c.setAutoPadding(false);
      return Buffer.concat([c.update(pad32(Buffer.concat([prefix, length, m, Buffer.from(APP)]))), c.final()]).toString('base64');
    };
    assert.equal(seal('same'), seal('same'));
    assert.equal(prefixWasIv(seal('same'), KEY), true);
    assert.equal(decrypt(seal('same'), KEY, APP).toString(), 'same');
    assert.equal(prefixWasIv(encrypt('same', KEY, APP), KEY), false);
  });

  it('refuses tampered ciphertext, wrong keys and garbage with 100006', () => {
    const good = encrypt('{"a":1}', KEY, APP);
    const raw = Buffer.from(good, 'base64');
    raw[raw.length - 3] ^= 0x40;
    assert.equal(code(() => decrypt(raw.toString('base64'), KEY, APP)), ERRCODE.ERRCODE_INVALID_ENCRYPT);
    assert.equal(code(() => decrypt(good, randomBytes(32), APP)), ERRCODE.ERRCODE_INVALID_ENCRYPT);
    assert.equal(code(() => decrypt('not base64 !', KEY, APP)), ERRCODE.ERRCODE_INVALID_ENCRYPT);
    assert.equal(code(() => decrypt(Buffer.alloc(31).toString('base64'), KEY, APP)), ERRCODE.ERRCODE_INVALID_ENCRYPT);
    assert.equal(code(() => decrypt(good.slice(0, 44), KEY, APP)), ERRCODE.ERRCODE_INVALID_ENCRYPT);
  });

  it('refuses a message sealed for another appId (the suffix) with 100005', () => {
    const other = encrypt('{"a":1}', KEY, 'ydFFFFFFFFFFFFFFFF');
    assert.equal(code(() => decrypt(other, KEY, APP)), ERRCODE.ERRCODE_INVALID_APPID);
    const shorter = encrypt('{"a":1}', KEY, 'yd0123');
    assert.equal(code(() => decrypt(shorter, KEY, APP)), ERRCODE.ERRCODE_INVALID_APPID);
  });

  it('signs callbacks with the SHA-1 of the sorted token, timestamp, nonce and encrypt', () => {
    const expected = createHash('sha1').update(['tok', '1700000000', 'n0nce', 'ENC'].sort().join('')).digest('hex');
    assert.equal(signature('tok', '1700000000', 'n0nce', 'ENC'), expected);
    assert.match(expected, /^[0-9a-f]{40}$/);
  });
});
