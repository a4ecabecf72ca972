import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { forEachDatabase } from '../../../test/support/databases.ts';
import type { Conversation } from './conversations.ts';
import type { BeginResult, FileInfo } from './files/files.ts';
import type { StoredMessage } from './messages.ts';
import { ADMIN, insertUsers, rejectsWith, setStatus, startImApp, upload } from './test-helpers.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file under `dir`, relative to it. */
function walk(dir: string, base = dir): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name), base) : [path.relative(base, path.join(dir, e.name))]));
}

forEachDatabase('im files', ({ url }) => {
  let app: Awaited<ReturnType<typeof startImApp>>;
  let alice: number, bob: number, carol: number, eve: number;
  let chat: Conversation, group: Conversation;
  let filesDir: string;

  before(async () => {
    app = await startImApp(url());
    filesDir = path.join(app.dataDir, 'files');
    [alice, bob, carol, eve] = await insertUsers(app.db, 4);
    chat = await app.broker.call('im.conversations.create', { type: 'single', members: [bob], createdBy: alice });
    group = await app.broker.call('im.groups.create', { name: 'Docs', members: [alice, bob], admins: [carol] }, { meta: ADMIN });
  });
  after(async () => app?.stop());

  const call = <T = any>(action: string, params: object, meta?: object) => app.broker.call<T, object>(`im.files.${action}`, params, meta ? { meta } : undefined);
  const begin = (userId: number, content: Buffer, extra: object = {}) =>
    call<BeginResult>('begin', { userId, name: 'data.bin', size: content.length, sha256: sha(content), kind: 'file', ...extra });
  const readAll = async (userId: number, file: FileInfo, step: number) => {
    const parts: Buffer[] = [];
    for (let offset = 0; offset < file.size; offset += step) {
      const r = await call<{ data: string; length: number }>('read', { userId, fileId: file.id, offset, length: step });
      parts.push(Buffer.from(r.data, 'base64'));
    }
    return Buffer.concat(parts);
  };

  it('uploads in chunks, resumes after an interruption, and reads back any byte range', async () => {
    const content = randomBytes(200_000);
    const first = await begin(alice, content, { conversationId: chat.id, name: 'report.pdf', mime: 'application/pdf' });
    assert.equal(first.received, 0);
    await call('append', { userId: alice, uploadId: first.uploadId, offset: 0, data: content.subarray(0, 65_536).toString('base64') });
    // The connection drops; the client asks again and is told where to continue.
    const again = await begin(alice, content, { conversationId: chat.id, name: 'report.pdf', mime: 'application/pdf' });
    assert.deepEqual(again, { uploadId: first.uploadId, received: 65_536, file: null, deduplicated: false });
    const stale = await rejectsWith(call('append', { userId: alice, uploadId: first.uploadId, offset: 0, data: content.subarray(0, 4).toString('base64') }), 'QIAO_CONFLICT', 'offset');
    assert.equal(stale.expected, 65_536);
    await rejectsWith(call('complete', { userId: alice, uploadId: first.uploadId }), 'QIAO_CONFLICT', 'uploadId');
    await call('append', { userId: alice, uploadId: first.uploadId, offset: 65_536, data: content.subarray(65_536).toString('base64') });
    const file = await call<FileInfo>('complete', { userId: alice, uploadId: first.uploadId });
    assert.deepEqual({ ...file, id: '', createdAt: '' }, {
      id: '',
      name: 'report.pdf',
      size: 200_000,
      kind: 'file',
      mime: 'application/pdf',
      sha256: sha(content),
      ownerId: alice,
      conversationId: chat.id,
      inSpace: false,
      createdAt: '',
    });
    assert.deepEqual(await readAll(bob, file, 30_000), content);
    const middle = await call<{ data: string; offset: number; length: number; size: number }>('read', { userId: bob, fileId: file.id, offset: 123_456, length: 1000 });
    assert.deepEqual(Buffer.from(middle.data, 'base64'), content.subarray(123_456, 124_456));
    await rejectsWith(call('read', { userId: bob, fileId: file.id, offset: 200_000 }), 'QIAO_VALIDATION', 'offset');
    const opened = await call<{ path: string }>('open', { userId: bob, fileId: file.id });
    assert.equal(opened.path, path.join(filesDir, 'blobs', sha(content).slice(0, 2), sha(content)));
    assert.deepEqual(fs.readFileSync(opened.path), content);
  });

  it('discards an upload whose content does not match its checksum', async () => {
    const content = Buffer.from('the real content');
    const b = await begin(alice, content);
    await call('append', { userId: alice, uploadId: b.uploadId, offset: 0, data: Buffer.from('the fake content').toString('base64') });
    await rejectsWith(call('complete', { userId: alice, uploadId: b.uploadId }), 'QIAO_VALIDATION', 'sha256');
    await rejectsWith(call('append', { userId: alice, uploadId: b.uploadId, offset: 0, data: '' }), 'QIAO_NOT_FOUND', 'uploadId');
    assert.equal(walk(path.join(filesDir, 'uploads')).length, 0);
  });

  it('stores identical content once and answers a repeated upload at once (秒传)', async () => {
    const content = Buffer.from('the same spreadsheet, sent by two people');
    const a = await upload(app, alice, content, { name: 'q3.xlsx' });
    const blobs = walk(path.join(filesDir, 'blobs')).length;
    const again = await begin(bob, content, { name: 'copy of q3.xlsx' });
    assert.equal(again.deduplicated, true);
    assert.equal(again.uploadId, null);
    assert.equal(again.file?.name, 'copy of q3.xlsx');
    assert.equal(again.file?.sha256, a.sha256);
    assert.notEqual(again.file?.id, a.id);
    assert.equal(walk(path.join(filesDir, 'blobs')).length, blobs);
  });

  it('keeps file names as display names only, so path tricks never reach the disk', async () => {
    const names: Array<[string, string]> = [
      ['../../etc/passwd', 'passwd'],
      ['..\\..\\windows\\win.ini', 'win.ini'],
      ['..', 'file'],
      ['/absolute/evil\u0000.sh', 'evil.sh'],
      ['  发票 2024.pdf  ', '发票 2024.pdf'],
    ];
    for (const [name, shown] of names) {
      const f = await upload(app, alice, randomBytes(32), { name });
      assert.equal(f.name, shown);
    }
    const onDisk = walk(app.dataDir);
    assert.ok(onDisk.every((p) => /^files\/blobs\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(p) || !p.startsWith('files/')), onDisk.join('\n'));
    assert.ok(!onDisk.some((p) => p.includes('passwd') || p.includes('win.ini')));
    await rejectsWith(call('stat', { userId: alice, fileId: '../../etc/passwd' }), 'QIAO_VALIDATION', 'fileId');
    await rejectsWith(call('append', { userId: alice, uploadId: '../x', offset: 0, data: '' }), 'QIAO_VALIDATION', 'uploadId');
  });

  it('enforces the admin’s size limit per kind', async () => {
    await app.broker.call('im.settings.update', { files: { maxBytes: { image: 1000 } } }, { meta: ADMIN });
    await rejectsWith(begin(alice, randomBytes(1001), { kind: 'image' }), 'QIAO_PAYLOAD_TOO_LARGE', 'size');
    assert.equal((await upload(app, alice, randomBytes(1000), { kind: 'image' })).size, 1000);
    assert.equal((await upload(app, alice, randomBytes(1001), { kind: 'file' })).size, 1001);
    const b = await begin(alice, randomBytes(10));
    await rejectsWith(call('append', { userId: alice, uploadId: b.uploadId, offset: 0, data: randomBytes(11).toString('base64') }), 'QIAO_VALIDATION', 'data');
    await rejectsWith(call('append', { userId: alice, uploadId: b.uploadId, offset: 0, data: 'not base64!' }), 'QIAO_VALIDATION', 'data');
    await rejectsWith(call('complete', { userId: bob, uploadId: b.uploadId }), 'QIAO_NOT_FOUND', 'uploadId');
    await app.broker.call('im.settings.update', { files: { maxBytes: { image: 20 * 1024 * 1024 } } }, { meta: ADMIN });
  });

  it('lets only the uploader and members of conversations the file went to read it', async () => {
    const f = await upload(app, alice, Buffer.from('for the chat only'), { conversationId: chat.id });
    assert.equal((await call<FileInfo>('stat', { userId: bob, fileId: f.id })).id, f.id);
    await rejectsWith(call('stat', { userId: eve, fileId: f.id }), 'QIAO_NOT_FOUND', 'fileId');
    await rejectsWith(call('read', { userId: carol, fileId: f.id, offset: 0 }), 'QIAO_NOT_FOUND', 'fileId');
    // Sent into the group, it becomes readable to the group.
    await app.broker.call<StoredMessage, object>('im.send', { conversationId: group.id, senderId: alice, clientMsgId: 'share-1', type: 'file', body: { fileId: f.id } });
    assert.equal((await call<FileInfo>('stat', { userId: carol, fileId: f.id })).id, f.id);
    await setStatus(app.db, carol, 'disabled');
    await rejectsWith(call('stat', { userId: carol, fileId: f.id }), 'QIAO_FORBIDDEN', 'userId');
    await setStatus(app.db, carol, 'active');
    await rejectsWith(begin(eve, Buffer.from('x'), { conversationId: chat.id }), 'QIAO_NOT_A_MEMBER', 'userId');
  });

  it('counts group space against its quota and lets uploaders and group admins remove files', async () => {
    await app.broker.call('im.groups.update', { id: group.id, spaceQuota: 100 }, { meta: ADMIN });
    const a = await upload(app, alice, randomBytes(80), { conversationId: group.id, space: true, name: 'a.txt' });
    await rejectsWith(begin(bob, randomBytes(30), { conversationId: group.id, space: true }), 'QIAO_QUOTA_EXCEEDED', 'size');
    const space = await call<{ quota: number; used: number; files: FileInfo[] }>('space', { userId: bob, conversationId: group.id });
    assert.deepEqual([space.quota, space.used, space.files.map((f) => f.id)], [100, 80, [a.id]]);
    await rejectsWith(call('remove', { userId: bob, fileId: a.id }), 'QIAO_FORBIDDEN', 'userId');
    await call('remove', { userId: carol, fileId: a.id });
    assert.equal((await upload(app, bob, randomBytes(30), { conversationId: group.id, space: true })).size, 30);
    await rejectsWith(begin(alice, randomBytes(5), { conversationId: chat.id, space: true }), 'QIAO_VALIDATION', 'space');
    await rejectsWith(begin(alice, randomBytes(5), { space: true }), 'QIAO_VALIDATION', 'conversationId');
    await app.broker.call('im.groups.update', { id: group.id, permissions: { upload: 'admins' } }, { meta: ADMIN });
    await rejectsWith(begin(bob, randomBytes(5), { conversationId: group.id, space: true }), 'QIAO_FORBIDDEN', 'userId');
  });

  it('purges files older than the retention period, and their content once nothing points at it', async () => {
    const old = await upload(app, alice, Buffer.from('old minutes'), { name: 'old.txt' });
    const shared = Buffer.from('content still used by a newer file');
    const oldShared = await upload(app, alice, shared, { name: 'v1.txt' });
    const newShared = (await begin(bob, shared, { name: 'v2.txt' })).file!;
    const backdate = new Date(Date.now() - 31 * 86_400_000);
    await app.db.sequelize.query('UPDATE im_files SET created_at = ? WHERE id IN (?, ?)', { replacements: [backdate, old.id, oldShared.id] });
    // Without a retention period nothing expires.
    assert.equal((await app.broker.call<{ purgedFiles: number }, object>('im.files.purge', {}, { meta: ADMIN })).purgedFiles, 0);
    await app.broker.call('im.settings.update', { files: { retentionDays: 30 } }, { meta: ADMIN });
    const result = await app.broker.call<{ purgedFiles: number; deletedBlobs: number; freedBytes: number }, object>('im.files.purge', {}, { meta: ADMIN });
    assert.ok(result.purgedFiles >= 2);
    assert.ok(result.freedBytes >= old.size);
    await rejectsWith(call('stat', { userId: alice, fileId: old.id }), 'QIAO_FILE_PURGED', 'fileId');
    await rejectsWith(call('read', { userId: alice, fileId: oldShared.id, offset: 0 }), 'QIAO_FILE_PURGED', 'fileId');
    assert.equal(fs.existsSync(path.join(filesDir, 'blobs', old.sha256.slice(0, 2), old.sha256)), false);
    assert.deepEqual(await readAll(bob, newShared, 1024), shared);
    await app.broker.call('im.settings.update', { files: { retentionDays: 0 } }, { meta: ADMIN });
  });
});
