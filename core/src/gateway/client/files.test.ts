import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import { forEachDatabase } from '../../../../test/support/databases.ts';
import { BROKER_CHUNK, brokerStream } from './files.ts';
import { startClientApp, until, type ClientApp, type Person } from './test-kit.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

forEachDatabase('client API: files over HTTP', ({ url }) => {
  let app: ClientApp;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let group: string;
  /** 1.3 MB: more than two broker chunks, so uploads and downloads cross chunk boundaries. */
  const content = randomBytes(2 * BROKER_CHUNK + 300_000);
  let fileId: string;

  const get = (path: string, token: string, headers: Record<string, string> = {}) => fetch(app.base + path, { headers: { authorization: `Bearer ${token}`, ...headers } });
  const begin = (token: string, body: object) => app.http('POST', '/v1/files/uploads', { token, body });

  before(async function () {
    this.timeout(60_000);
    app = await startClientApp(url());
    [alice, bob, carol] = [await app.user('alice'), await app.user('bob'), await app.user('carol')];
    group = (await alice.client.conversations.create({ type: 'discussion', members: [bob.id], name: 'Files' })).id;
  });
  after(async () => app?.stop());

  it('uploads in pieces with the SDK, shares the file in a group, and the group downloads it byte for byte', async () => {
    const progress: number[] = [];
    const file = await alice.client.files.upload(content, { name: '季度报告.pdf', kind: 'file', mime: 'application/pdf', conversationId: group, chunkBytes: 400_000, onProgress: (r) => progress.push(r) });
    fileId = file.id;
    assert.equal(file.size, content.length);
    assert.equal(file.sha256, sha(content));
    assert.deepEqual(progress, [400_000, 800_000, 1_200_000, content.length]);
    await alice.client.messages.send(group, { type: 'file', body: { fileId } });
    const res = await get(`/v1/files/${fileId}/content`, bob.token);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(res.headers.get('etag'), `"${sha(content)}"`);
    assert.equal(res.headers.get('content-length'), String(content.length));
    assert.equal(res.headers.get('content-type'), 'application/pdf');
    assert.equal(res.headers.get('content-disposition'), `attachment; filename="____.pdf"; filename*=UTF-8''${encodeURIComponent('季度报告.pdf')}`);
    assert.equal(sha(new Uint8Array(await res.arrayBuffer())), sha(content));
    assert.equal((await bob.client.files.stat(fileId)).name, '季度报告.pdf');
  });

  it('serves byte ranges, so a broken download resumes where it stopped', async () => {
    const part = await get(`/v1/files/${fileId}/content`, bob.token, { range: 'bytes=100-199' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 100-199/${content.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), content.subarray(100, 200));
    const tail = await get(`/v1/files/${fileId}/content`, bob.token, { range: 'bytes=-10' });
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), content.subarray(content.length - 10));
    // A download that broke after 700,000 bytes goes on from there.
    const resumed = await get(`/v1/files/${fileId}/content`, bob.token, { range: 'bytes=700000-', 'if-range': `"${sha(content)}"` });
    assert.equal(resumed.status, 206);
    assert.equal(resumed.headers.get('content-length'), String(content.length - 700_000));
    assert.deepEqual(Buffer.concat([content.subarray(0, 700_000), Buffer.from(await resumed.arrayBuffer())]), content);
    // If-Range with another version's tag: the whole file, not a mix of two.
    const changed = await get(`/v1/files/${fileId}/content`, bob.token, { range: 'bytes=700000-', 'if-range': '"0000"' });
    assert.equal(changed.status, 200);
    await changed.arrayBuffer();
    const past = await get(`/v1/files/${fileId}/content`, bob.token, { range: `bytes=${content.length}-` });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${content.length}`);
    const body = (await past.json()) as { error: { code: string; field: string } };
    assert.deepEqual([body.error.code, body.error.field], ['QIAO_RANGE_NOT_SATISFIABLE', 'range']);
    // The SDK resumes by itself from an offset.
    assert.deepEqual(Buffer.from(await bob.client.files.download(fileId, { offset: 1_000_000 })), content.subarray(1_000_000));
    assert.deepEqual(Buffer.from(await bob.client.files.download(fileId)), content);
  });

  it('reads through the broker in pieces when the file store is on another host', async () => {
    const stream = brokerStream({ broker: app.broker } as FastifyInstance, bob.id, fileId, 10, content.length - 1);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    assert.ok(chunks.length >= 3);
    assert.deepEqual(Buffer.concat(chunks), content.subarray(10));
  });

  it('keeps files from people outside the conversation', async () => {
    const r = await get(`/v1/files/${fileId}/content`, carol.token);
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as { error: { field: string } }).error.field, 'fileId');
    assert.equal((await app.http('GET', `/v1/files/${fileId}`, { token: carol.token })).status, 404);
  });

  it('resumes an upload after a broken connection, from what the server kept', async () => {
    const data = randomBytes(BROKER_CHUNK + 200_000);
    const started = await begin(alice.token, { name: 'backup.zip', size: data.length, sha256: sha(data), kind: 'file' });
    assert.equal(started.status, 200);
    const uploadId = started.body.uploadId as string;
    // Send the body, then cut the connection before its end.
    await new Promise<void>((resolve) => {
      const req = http.request(`${app.base}/v1/files/uploads/${uploadId}?offset=0`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
      });
      req.on('error', () => resolve());
      req.write(data.subarray(0, BROKER_CHUNK + 100_000), () => setTimeout(() => (req.destroy(), resolve()), 300));
    });
    const again = (await until('the server to keep what arrived', async () => {
      const r = await begin(alice.token, { name: 'backup.zip', size: data.length, sha256: sha(data), kind: 'file' });
      return r.body.received === BROKER_CHUNK + 100_000 ? r : null;
    }))!;
    assert.equal(again.body.uploadId, uploadId);
    const kept = again.body.received as number;
    const wrong = await app.http('PUT', `/v1/files/uploads/${uploadId}?offset=0`, { token: alice.token, raw: 'x', headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(wrong.status, 409);
    assert.equal(wrong.body.error.field, 'offset');
    assert.match(wrong.body.error.message, new RegExp(`continues at byte ${kept}`));
    const rest = await fetch(`${app.base}/v1/files/uploads/${uploadId}?offset=${kept}`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}` }, body: data.subarray(kept) });
    assert.deepEqual(await rest.json(), { uploadId, received: data.length, size: data.length });
    const done = await app.http('POST', `/v1/files/uploads/${uploadId}/complete`, { token: alice.token });
    assert.equal(done.status, 200);
    assert.equal(done.body.sha256, sha(data));
    // The same content again is not sent at all.
    const dedup = await begin(bob.token, { name: 'copy.zip', size: data.length, sha256: sha(data), kind: 'file' });
    assert.equal(dedup.body.deduplicated, true);
    assert.equal(dedup.body.file.name, 'copy.zip');
  });

  it('refuses path tricks in names and bad uploads, naming the field, and stores nothing', async () => {
    const count = async () => Number((await app.db.sequelize.query('SELECT COUNT(*) AS n FROM im_uploads', { plain: true }))?.n ?? 0);
    const before = await count();
    const ok = { size: 3, sha256: sha(Buffer.from('abc')), kind: 'file' };
    for (const name of ['../../etc/passwd', '..\\..\\boot.ini', 'C:\\Windows\\win.ini', '/etc/shadow', '..', '.', 'a\u0000b.txt', 'line\nbreak.txt']) {
      const r = await begin(alice.token, { ...ok, name });
      assert.equal(r.status, 422, `${JSON.stringify(name)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.field, 'name');
    }
    for (const [patch, field] of [
      [{ sha256: 'abc' }, 'sha256'],
      [{ kind: 'movie' }, 'kind'],
      [{ size: -1 }, 'size'],
      [{ size: 10 ** 12 }, 'size'],
      [{ conversationId: 'd:nope' }, 'conversationId'],
      [{ space: true }, 'conversationId'],
    ] as const) {
      const r = await begin(alice.token, { ...ok, name: 'x.txt', ...patch });
      assert.ok(r.status >= 400 && r.status < 500, JSON.stringify(r.body));
      assert.equal(r.body.error.field, field, JSON.stringify(r.body));
    }
    assert.equal(await count(), before);
    const notMine = await app.http('PUT', `/v1/files/uploads/u${'0'.repeat(24)}?offset=0`, { token: alice.token, raw: 'abc', headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(notMine.status, 404);
    assert.equal(notMine.body.error.field, 'uploadId');
    const badId = await app.http('PUT', '/v1/files/uploads/..%2F..%2Fetc?offset=0', { token: alice.token, raw: 'abc', headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(badId.status, 422);
    assert.equal(badId.body.error.field, 'uploadId');
    const badFile = await app.http('GET', '/v1/files/..%2F..%2Fetc%2Fpasswd/content', { token: alice.token });
    assert.equal(badFile.status, 422);
    assert.equal(badFile.body.error.field, 'fileId');
  });

  it('keeps a group space: list, quota, removal by the uploader', async () => {
    const data = Buffer.from('shared notes');
    const f = await alice.client.files.upload(data, { name: 'notes.txt', kind: 'file', conversationId: group, space: true });
    const space = await bob.client.files.space(group);
    assert.deepEqual(space.files.map((x) => x.id), [f.id]);
    assert.equal(space.used, data.length);
    const byBob = await app.http('DELETE', `/v1/files/${f.id}`, { token: bob.token });
    assert.equal(byBob.status, 403);
    assert.deepEqual(await alice.client.files.remove(f.id), { fileId: f.id, removed: true });
    assert.deepEqual((await bob.client.files.space(group)).files, []);
  });
});
