import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Journal } from './journal.ts';

describe('rtx agent: journal on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-journal-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('numbers entries in order and keeps them and the acknowledged offset across a reopen', async () => {
    const j = new Journal<string>(dir);
    assert.deepEqual(
      (await j.append(['a', 'b', 'c'])).map((e) => e.n),
      [1, 2, 3],
    );
    await j.ack(2);
    await j.close();
    const again = new Journal<string>(dir);
    assert.equal(again.last, 3);
    assert.equal(again.acked, 2);
    assert.deepEqual(
      again.unacked().map((e) => e.value),
      ['c'],
    );
    assert.equal((await again.append(['d']))[0]!.n, 4);
    await assert.rejects(again.ack(9), /ends at 4/);
    await again.close();
  });

  it('cuts off a line torn by a crash mid-write: it was never reported written', async () => {
    const j = new Journal<{ x: number }>(dir);
    await j.append([{ x: 1 }, { x: 2 }]);
    await j.close();
    fs.appendFileSync(path.join(dir, 'entries.log'), '{"n":3,"at":"2026-01-01T00:00:00Z","val');
    const again = new Journal<{ x: number }>(dir);
    assert.equal(again.last, 2);
    assert.equal((await again.append([{ x: 3 }]))[0]!.n, 3);
    await again.close();
    const third = new Journal<{ x: number }>(dir);
    assert.deepEqual(
      third.unacked().map((e) => e.value.x),
      [1, 2, 3],
    );
    await third.close();
  });

  it('compacts once everything is acknowledged, keeping the newest entries and the numbering', async () => {
    const j = new Journal<string>(dir, { compactBytes: 2000, keep: 3 });
    for (let i = 0; i < 50; i++) await j.append([`entry ${i}`]);
    await j.ack(50);
    assert.ok(fs.statSync(path.join(dir, 'entries.log')).size < 2000, 'the log was rewritten');
    assert.deepEqual(
      j.retained().map((e) => e.n),
      [48, 49, 50],
    );
    await j.close();
    const again = new Journal<string>(dir);
    assert.equal(again.last, 50);
    assert.equal(again.acked, 50);
    assert.equal((await again.append(['next']))[0]!.n, 51);
    assert.equal(again.get(49)?.value, 'entry 48');
    await again.close();
  });

  it('reopens a compacted journal that kept nothing with the numbering intact', async () => {
    const j = new Journal<string>(dir, { compactBytes: 10, keep: 0 });
    await j.append(['a', 'b']);
    await j.ack(2);
    await j.close();
    const again = new Journal<string>(dir);
    assert.equal(again.last, 2);
    assert.equal((await again.append(['c']))[0]!.n, 3);
    await again.close();
  });
});
