import assert from 'node:assert/strict';
import iconv from 'iconv-lite';
import { decodeGbk, encodeGbk, fitsGbk, gbkQueryString, percentEncodeGbk } from './gbk.ts';
import { getOrPost, parsePhpQuery, queryParams } from './php-params.ts';
import { formatRtxLink, parseRtxLinks } from './rtx-text.ts';

describe('rtx emulator: GBK and PHP parameter handling', () => {
  it('round-trips Chinese text, including GBK-only name characters outside GB2312', () => {
    for (const s of ['中文', '朱镕基', '王堃', '陶喆', '张玥', '操作成功!', 'a+b=c&d']) {
      assert.equal(decodeGbk(encodeGbk(s)), s, s);
      assert.equal(fitsGbk(s), true, s);
    }
    assert.deepEqual([...encodeGbk('镕')], [0xe9, 0x46]);
  });

  it('turns characters GBK cannot hold (𠮷, emoji) into "?" rather than dropping them', () => {
    assert.equal(fitsGbk('𠮷野家'), false);
    assert.equal(decodeGbk(encodeGbk('𠮷野家')), '?野家');
    assert.equal(decodeGbk(encodeGbk('好😀')), '好?');
  });

  it('percent-encodes GBK bytes, not UTF-8', () => {
    assert.equal(percentEncodeGbk('中文'), '%D6%D0%CE%C4');
    assert.equal(percentEncodeGbk('a b&c'), 'a%20b%26c');
    assert.equal(gbkQueryString({ receiver: 'zhangsan', msg: '你好', skip: undefined }), 'receiver=zhangsan&msg=%C4%E3%BA%C3');
  });

  it('parses query strings as PHP does: + is a space, bad escapes stay, the last duplicate wins', () => {
    const p = parsePhpQuery(Buffer.from('msg=a+b%20c&bad=%zz%4&x=1&x=2&novalue&=orphan&arr[]=1&a.b=dot'));
    assert.equal(p.get('msg'), 'a b c');
    assert.equal(p.get('bad'), '%zz%4');
    assert.equal(p.get('x'), '2');
    assert.equal(p.get('novalue'), '');
    assert.equal(p.has(''), false);
    assert.equal(p.has('arr'), false);
    assert.equal(p.get('a_b'), 'dot');
  });

  it('decodes values as GBK, so UTF-8 sent by mistake becomes the mojibake RTX shows', () => {
    const utf8 = Buffer.from('你好', 'utf8');
    const q = `/SendNotify.cgi?msg=${[...utf8].map((b) => `%${b.toString(16)}`).join('')}`;
    assert.equal(queryParams(q).get('msg'), '浣犲ソ');
    assert.equal(queryParams(q).get('msg'), iconv.decode(utf8, 'gbk'));
  });

  it('reads POST only when every checked GET field is empty', () => {
    const get = parsePhpQuery(Buffer.from('msg=from-get'));
    const post = parsePhpQuery(Buffer.from('msg=from-post&receiver=lisi'));
    assert.deepEqual(getOrPost(['receiver', 'msg'], get, post), { receiver: '', msg: 'from-get' });
    assert.deepEqual(getOrPost(['receiver', 'msg'], new Map(), post), { receiver: 'lisi', msg: 'from-post' });
    // A field outside the checked list does not stop the fall-back (SendIM.cgi's $receiver typo).
    const onlyReceivers = parsePhpQuery(Buffer.from('receivers=a'));
    assert.deepEqual(getOrPost(['receivers', 'msg'], onlyReceivers, post, ['msg']), { receivers: '', msg: 'from-post' });
  });

  it('parses and formats RTX links [文字|URL]', () => {
    assert.deepEqual(parseRtxLinks('请审批[合同|http://oa/1]谢谢'), [
      { type: 'text', text: '请审批' },
      { type: 'link', text: '合同', url: 'http://oa/1' },
      { type: 'text', text: '谢谢' },
    ]);
    assert.equal(formatRtxLink('合同', 'http://oa/1'), '[合同|http://oa/1]');
    assert.equal(formatRtxLink('a|b', 'http://oa/1'), null);
    assert.equal(formatRtxLink('ok', 'http://oa/x y'), null);
  });
});
