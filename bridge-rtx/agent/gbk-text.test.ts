import assert from 'node:assert/strict';
import { decodeGbk, encodeGbk } from '../emulator/index.ts';
import { EchoFilter } from './echo-filter.ts';
import { LOSSY_NOTE, toGbkSafe } from './gbk-text.ts';

describe('rtx agent: GBK text and echo recognition', () => {
  it('passes Chinese text GBK can hold unchanged, including GBK-only characters such as 镕', () => {
    const text = '你好，朱镕基！Hello 123';
    assert.deepEqual(toGbkSafe(text), { text, lossy: false });
    assert.equal(decodeGbk(encodeGbk(text)), text);
  });

  it('makes 𠮷 and emoji a visible ? with a note, never a silent loss', () => {
    const r = toGbkSafe('𠮷野家 🍜 好吃');
    assert.equal(r.lossy, true);
    assert.equal(r.text, `?野家 ? 好吃${LOSSY_NOTE}`);
    // What RTX will show is exactly what was sent: the replacement survives GBK.
    assert.equal(decodeGbk(encodeGbk(r.text)), r.text);
  });

  it('matches each registered send with one echo, by sender, window and text, ignoring case and CRLF', () => {
    const f = new EchoFilter();
    f.expect('LiSi', '{abc}', 'a\r\nb', 7);
    assert.equal(f.consume('lisi', '{ABC}', 'a\nb'), 7);
    assert.equal(f.consume('lisi', '{ABC}', 'a\nb'), null, 'a second identical message is a real one');
    f.expect('lisi', '{abc}', 'x', 8);
    f.withdraw('lisi', '{abc}', 'x');
    assert.equal(f.size, 0);
  });

  it('forgets registrations older than its time to live', () => {
    const f = new EchoFilter(1000);
    f.expect('a', '{k}', 't', 1, 0);
    assert.equal(f.consume('a', '{k}', 't', 5000), null);
  });
});
