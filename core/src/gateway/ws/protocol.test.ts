import assert from 'node:assert/strict';
import { parseFrame } from './protocol.ts';
import { TokenBucket } from './token-bucket.ts';

describe('client socket frames', () => {
  it('accepts the four frame types and names the field of every refusal', () => {
    assert.deepEqual(parseFrame('{"type":"auth","token":"t","id":1}'), { frame: { type: 'auth', token: 't', id: 1 } });
    assert.deepEqual(parseFrame('{"type":"watch","userIds":[3,3,4]}'), { frame: { type: 'watch', userIds: [3, 4] } });
    const refusals: Array<[string, string]> = [
      ['nope', 'frame'],
      ['null', 'frame'],
      ['{}', 'type'],
      ['{"type":"auth","token":""}', 'token'],
      ['{"type":"auth","token":"t","password":"x"}', 'password'],
      ['{"type":"presence","status":"invisible"}', 'status'],
      ['{"type":"watch","userIds":"1,2"}', 'userIds'],
      ['{"type":"watch","userIds":[1.5]}', 'userIds[0]'],
      [`{"type":"ping","id":"${'x'.repeat(65)}"}`, 'id'],
    ];
    for (const [text, field] of refusals) {
      const r = parseFrame(text);
      assert.ok('error' in r, text);
      assert.equal(r.error.field, field, text);
    }
  });

  it('lets a burst through, then the refill rate', () => {
    let now = 0;
    const b = new TokenBucket(3, 2, () => now);
    assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
    now = 499;
    assert.equal(b.take(), false);
    now = 500;
    assert.equal(b.take(), true);
    now = 100_000;
    assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false], 'never more than the capacity');
  });
});
