import { createHash, randomBytes } from 'node:crypto';
import type { Transaction } from 'sequelize';
import type { Database } from '../../db/database.ts';
import { qiaoError } from '../../errors.ts';
import { memberAccess, permissionsOf, type ConversationRow } from '../conversations.ts';
import { assertAllowed } from '../permissions.ts';
import { readSettings, type FileKind } from '../settings.ts';
import { bool, exec, isoDate, queryRows } from '../../db/sql.ts';
import { assertActiveUser } from '../sync.ts';
import { imWrite } from '../write.ts';
import { displayName, type FileStore } from './file-store.ts';

/** The most one `im.files.append` or `im.files.read` moves; the HTTP routes stream larger bodies in these. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
/** Uploads nobody touched for this long are abandoned and removed by the purge. */
const STALE_UPLOAD_MS = 7 * 86_400_000;

export interface FileInfo {
  id: string;
  name: string;
  size: number;
  kind: FileKind;
  mime: string | null;
  sha256: string;
  ownerId: number;
  conversationId: string | null;
  inSpace: boolean;
  createdAt: string;
}

interface FileRow {
  id: string;
  name: string;
  size: number | string;
  kind: FileKind;
  mime: string | null;
  sha256: string;
  owner_id: number;
  conversation_id: string | null;
  in_space: unknown;
  created_at: string | Date;
  purged_at: string | Date | null;
}

interface UploadRow {
  id: string;
  user_id: number;
  kind: FileKind;
  name: string;
  mime: string | null;
  size: number | string;
  sha256: string;
  conversation_id: string | null;
  in_space: unknown;
  received: number | string;
}

function toFile(r: FileRow): FileInfo {
  return {
    id: r.id,
    name: r.name,
    size: Number(r.size),
    kind: r.kind,
    mime: r.mime,
    sha256: r.sha256,
    ownerId: Number(r.owner_id),
    conversationId: r.conversation_id,
    inSpace: bool(r.in_space),
    createdAt: isoDate(r.created_at),
  };
}

const newId = (prefix: 'f' | 'u') => `${prefix}${randomBytes(12).toString('hex')}`;

async function spaceUsage(db: Database, c: ConversationRow, t?: Transaction): Promise<{ used: number; quota: number }> {
  const [{ used }] = await queryRows<{ used: number | string | null }>(
    db,
    'SELECT SUM(size) AS used FROM im_files WHERE conversation_id = ? AND in_space = ? AND purged_at IS NULL',
    [c.id, true],
    t,
  );
  const quota = c.space_quota === null ? (await readSettings(db, t)).files.groupSpaceBytes : Number(c.space_quota);
  return { used: Number(used ?? 0), quota };
}

function assertRoom(c: ConversationRow, usage: { used: number; quota: number }, size: number): void {
  if (usage.used + size > usage.quota) {
    throw qiaoError('QIAO_QUOTA_EXCEEDED', `the space of group ${c.id} holds ${usage.quota} bytes; ${usage.used} are used and this file needs ${size}`, {
      field: 'size',
      quota: usage.quota,
      used: usage.used,
    });
  }
}

export interface BeginInput {
  userId: number;
  name: string;
  size: number;
  sha256: string;
  kind: FileKind;
  mime?: string;
  /** The conversation the file is for; its members may download it once it is sent there. */
  conversationId?: string;
  /** Store it in the group's space (群空间), counted against its quota. */
  space?: boolean;
}

export interface BeginResult {
  /** null when the content was known already and the file is ready (`file`). */
  uploadId: string | null;
  /** Bytes the server holds: where to continue a resumed upload. */
  received: number;
  file: FileInfo | null;
  deduplicated: boolean;
}

async function checkTarget(db: Database, p: BeginInput, t?: Transaction): Promise<ConversationRow | null> {
  if (!p.conversationId) {
    if (p.space) throw qiaoError('QIAO_VALIDATION', 'space needs the conversationId of a group', { field: 'conversationId' });
    return null;
  }
  const { conversation, role } = await memberAccess(db, p.conversationId, p.userId, 'userId', { t, write: true });
  if (p.space) {
    if (conversation.type === 'single') throw qiaoError('QIAO_VALIDATION', `conversation ${conversation.id} is a 1:1 chat and has no group space`, { field: 'space' });
    assertAllowed(permissionsOf(conversation), role, 'upload', p.userId, conversation.id);
  }
  return conversation;
}

async function insertFile(db: Database, t: Transaction, p: BeginInput & { name: string }): Promise<FileInfo> {
  const id = newId('f');
  const now = new Date();
  await db.sequelize.query(
    `INSERT INTO im_files (id, sha256, size, kind, name, mime, owner_id, conversation_id, in_space, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    { replacements: [id, p.sha256, p.size, p.kind, p.name, p.mime ?? null, p.userId, p.conversationId ?? null, p.space === true, now], transaction: t },
  );
  const [row] = await queryRows<FileRow>(db, 'SELECT * FROM im_files WHERE id = ?', [id], t);
  return toFile(row);
}

/**
 * Starts an upload. The size is checked against the admin's limit for the kind and, for group space, the
 * group's quota. Content the server already has (same SHA-256 and size) is not sent again: the file is
 * ready at once (秒传). An unfinished upload of the same content by the same person is resumed.
 */
export async function beginUpload(db: Database, store: FileStore, p: BeginInput): Promise<BeginResult> {
  await assertActiveUser(db, p.userId);
  const limits = (await readSettings(db)).files.maxBytes;
  if (p.size > limits[p.kind]) {
    throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `a ${p.kind} may be at most ${limits[p.kind]} bytes, this one is ${p.size}`, { field: 'size', limit: limits[p.kind] });
  }
  const name = displayName(p.name);
  const input = { ...p, name };
  const { result } = await imWrite(db, async (w): Promise<BeginResult> => {
    const c = await checkTarget(db, input, w.t);
    if (c && p.space) assertRoom(c, await spaceUsage(db, c, w.t), p.size);
    const [blob] = await queryRows<{ size: number | string }>(db, 'SELECT size FROM im_blobs WHERE sha256 = ?', [p.sha256], w.t);
    if (blob && Number(blob.size) === p.size && (await store.hasBlob(p.sha256))) {
      return { uploadId: null, received: p.size, file: await insertFile(db, w.t, input), deduplicated: true };
    }
    const [pending] = await queryRows<UploadRow>(
      db,
      `SELECT * FROM im_uploads WHERE user_id = ? AND sha256 = ? AND size = ? AND kind = ? AND in_space = ?
       AND ${p.conversationId ? 'conversation_id = ?' : 'conversation_id IS NULL'} ORDER BY created_at LIMIT 1`,
      [p.userId, p.sha256, p.size, p.kind, p.space === true, ...(p.conversationId ? [p.conversationId] : [])],
      w.t,
    );
    if (pending && (await store.hasPart(pending.id))) {
      await db.sequelize.query('UPDATE im_uploads SET name = ?, mime = ?, updated_at = ? WHERE id = ?', { replacements: [name, p.mime ?? null, new Date(), pending.id], transaction: w.t });
      return { uploadId: pending.id, received: Number(pending.received), file: null, deduplicated: false };
    }
    const id = newId('u');
    const now = new Date();
    await store.createPart(id);
    await db.sequelize.query(
      `INSERT INTO im_uploads (id, user_id, kind, name, mime, size, sha256, conversation_id, in_space, received, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
      { replacements: [id, p.userId, p.kind, name, p.mime ?? null, p.size, p.sha256, p.conversationId ?? null, p.space === true, now, now], transaction: w.t },
    );
    return { uploadId: id, received: 0, file: null, deduplicated: false };
  });
  return result;
}

async function ownUpload(db: Database, userId: number, uploadId: string): Promise<UploadRow> {
  const [row] = await queryRows<UploadRow>(db, 'SELECT * FROM im_uploads WHERE id = ?', [uploadId]);
  // Somebody else's upload id is answered like a missing one: ids are not to be probed.
  if (!row || Number(row.user_id) !== userId) throw qiaoError('QIAO_NOT_FOUND', `upload ${uploadId} does not exist`, { field: 'uploadId' });
  return row;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Appends a chunk at `offset`, which must be where the server's copy ends (`received`): a retried chunk
 * after a lost answer is told where to continue instead of being written twice.
 */
export async function appendChunk(db: Database, store: FileStore, p: { userId: number; uploadId: string; offset: number; data: string }) {
  await assertActiveUser(db, p.userId);
  const up = await ownUpload(db, p.userId, p.uploadId);
  const received = Number(up.received);
  const size = Number(up.size);
  if (p.offset !== received) {
    throw qiaoError('QIAO_CONFLICT', `upload ${up.id} continues at byte ${received}, not ${p.offset}`, { field: 'offset', expected: received });
  }
  if (p.data.length % 4 !== 0 || !BASE64.test(p.data)) throw qiaoError('QIAO_VALIDATION', 'data must be base64', { field: 'data' });
  const chunk = Buffer.from(p.data, 'base64');
  if (chunk.length > MAX_CHUNK_BYTES) throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `a chunk holds at most ${MAX_CHUNK_BYTES} bytes, got ${chunk.length}`, { field: 'data' });
  if (received + chunk.length > size) {
    throw qiaoError('QIAO_VALIDATION', `upload ${up.id} was begun for ${size} bytes; this chunk would make it ${received + chunk.length}`, { field: 'data' });
  }
  if (!(await store.hasPart(up.id))) throw qiaoError('QIAO_CONFLICT', `the data of upload ${up.id} is gone; begin the upload again`, { field: 'uploadId' });
  await store.writeAt(up.id, received, chunk);
  const changed = await db.transaction((t) =>
    exec(db, 'UPDATE im_uploads SET received = ?, updated_at = ? WHERE id = ? AND received = ?', [received + chunk.length, new Date(), up.id, received], t),
  );
  if (changed === 0) throw qiaoError('QIAO_CONFLICT', `upload ${up.id} moved on while this chunk was written; ask im.files.begin where to continue`, { field: 'offset' });
  return { uploadId: up.id, received: received + chunk.length, size };
}

/** Finishes an upload: the content must be complete and match its checksum; a mismatch discards it. */
export async function completeUpload(db: Database, store: FileStore, p: { userId: number; uploadId: string }): Promise<FileInfo> {
  await assertActiveUser(db, p.userId);
  const up = await ownUpload(db, p.userId, p.uploadId);
  const size = Number(up.size);
  if (Number(up.received) !== size) {
    throw qiaoError('QIAO_CONFLICT', `upload ${up.id} has ${up.received} of ${size} bytes; append the rest first`, { field: 'uploadId', received: Number(up.received) });
  }
  // A retry after a commit that failed finds the part already moved into its blob.
  if (await store.hasPart(up.id)) {
    const actual = await store.hashPart(up.id);
    if (actual !== up.sha256) {
      await db.transaction((t) => exec(db, 'DELETE FROM im_uploads WHERE id = ?', [up.id], t));
      await store.removePart(up.id);
      throw qiaoError('QIAO_VALIDATION', `upload ${up.id} does not match its checksum (sha256 ${actual}, expected ${up.sha256}); it was discarded, upload it again`, {
        field: 'sha256',
      });
    }
  } else if (!(await store.hasBlob(up.sha256))) {
    throw qiaoError('QIAO_CONFLICT', `the data of upload ${up.id} is gone; upload it again`, { field: 'uploadId' });
  }
  const input: BeginInput = {
    userId: p.userId,
    name: up.name,
    size,
    sha256: up.sha256,
    kind: up.kind,
    mime: up.mime ?? undefined,
    conversationId: up.conversation_id ?? undefined,
    space: bool(up.in_space),
  };
  const { result } = await imWrite(db, async (w) => {
    const c = await checkTarget(db, input, w.t);
    if (c && input.space) assertRoom(c, await spaceUsage(db, c, w.t), size);
    await store.promote(up.id, up.sha256);
    await db.sequelize.query('INSERT INTO im_blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING', {
      replacements: [up.sha256, size, new Date()],
      transaction: w.t,
    });
    await exec(db, 'DELETE FROM im_uploads WHERE id = ?', [up.id], w.t);
    return insertFile(db, w.t, { ...input, name: up.name });
  });
  await store.removePart(up.id);
  return result;
}

async function loadFile(db: Database, fileId: string, t?: Transaction): Promise<FileRow> {
  const [row] = await queryRows<FileRow>(db, 'SELECT * FROM im_files WHERE id = ?', [fileId], t);
  if (!row) throw qiaoError('QIAO_NOT_FOUND', `file ${fileId} does not exist`, { field: 'fileId' });
  return row;
}

/**
 * Throws unless `userId` may read the file: its uploader, or an active member of a conversation it was
 * uploaded for or sent into. Purged files are gone for everybody.
 */
export async function readableFile(db: Database, userId: number, fileId: string, field = 'fileId', t?: Transaction): Promise<FileInfo> {
  const [row] = await queryRows<FileRow>(db, 'SELECT * FROM im_files WHERE id = ?', [fileId], t);
  if (!row) throw qiaoError('QIAO_NOT_FOUND', `file ${fileId} does not exist`, { field });
  if (Number(row.owner_id) !== userId) {
    const [ok] = await queryRows<{ one: number }>(
      db,
      `SELECT 1 AS one FROM conversation_members m JOIN users u ON u.id = m.user_id
       WHERE m.user_id = ? AND u.status = 'active'
         AND (m.conversation_id = ? OR m.conversation_id IN (SELECT conversation_id FROM im_file_links WHERE file_id = ?))
       LIMIT 1`,
      [userId, row.conversation_id, fileId],
      t,
    );
    if (!ok) throw qiaoError('QIAO_NOT_FOUND', `file ${fileId} does not exist`, { field });
  }
  if (row.purged_at !== null) {
    throw qiaoError('QIAO_FILE_PURGED', `file ${fileId} ("${row.name}") was removed from the server on ${isoDate(row.purged_at)}`, { field });
  }
  return toFile(row);
}

export async function statFile(db: Database, p: { userId: number; fileId: string }): Promise<FileInfo> {
  await assertActiveUser(db, p.userId);
  return readableFile(db, p.userId, p.fileId);
}

/** For a gateway on this host: the file's metadata and where its bytes are, to stream ranges itself. */
export async function openFile(db: Database, store: FileStore, p: { userId: number; fileId: string }): Promise<FileInfo & { path: string }> {
  const file = await statFile(db, p);
  return { ...file, path: store.blobPath(file.sha256) };
}

/** One byte range of a file (resumable download over the broker). */
export async function readRange(db: Database, store: FileStore, p: { userId: number; fileId: string; offset: number; length?: number }) {
  const file = await statFile(db, p);
  if (p.offset > file.size || (p.offset === file.size && file.size > 0)) {
    throw qiaoError('QIAO_VALIDATION', `offset ${p.offset} is past the end of file ${file.id} (${file.size} bytes)`, { field: 'offset', size: file.size });
  }
  const length = Math.min(p.length ?? MAX_CHUNK_BYTES, MAX_CHUNK_BYTES, file.size - p.offset);
  const data = await store.readRange(file.sha256, p.offset, length);
  return { fileId: file.id, offset: p.offset, length: data.length, size: file.size, data: data.toString('base64') };
}

/** A group's shared files (群空间), with its quota and use. */
export async function groupSpace(db: Database, p: { userId: number; conversationId: string }) {
  const { conversation } = await memberAccess(db, p.conversationId, p.userId, 'userId');
  const usage = await spaceUsage(db, conversation);
  const rows = await queryRows<FileRow>(
    db,
    'SELECT * FROM im_files WHERE conversation_id = ? AND in_space = ? AND purged_at IS NULL ORDER BY created_at DESC, id',
    [conversation.id, true],
  );
  return { conversationId: conversation.id, quota: usage.quota, used: usage.used, files: rows.map(toFile) };
}

/** Removes a file from a group space: its uploader, or the group's owner or admins. */
export async function removeSpaceFile(db: Database, p: { userId: number; fileId: string }) {
  await assertActiveUser(db, p.userId);
  const row = await loadFile(db, p.fileId);
  if (!row.conversation_id || !bool(row.in_space)) throw qiaoError('QIAO_VALIDATION', `file ${p.fileId} is not in a group space`, { field: 'fileId' });
  const { role } = await memberAccess(db, row.conversation_id, p.userId, 'userId');
  if (Number(row.owner_id) !== p.userId && role === 'member') {
    throw qiaoError('QIAO_FORBIDDEN', `only the uploader or a group admin removes file ${p.fileId}`, { field: 'userId' });
  }
  await db.transaction((t) => exec(db, 'UPDATE im_files SET purged_at = ? WHERE id = ? AND purged_at IS NULL', [new Date(), p.fileId], t));
  return { fileId: p.fileId, removed: true };
}

export interface PurgeResult {
  purgedFiles: number;
  deletedBlobs: number;
  freedBytes: number;
  staleUploads: number;
}

/**
 * Removes what the retention period (文件保存期限) has run out for: files older than it stop being served,
 * and content no live file points at any more is deleted from disk. Runs under the write lock, as do
 * deduplicated begins and completes, so content is never deleted while a new file is being pointed at it.
 */
export async function purgeFiles(db: Database, store: FileStore, now = new Date()): Promise<PurgeResult> {
  const retentionDays = (await readSettings(db)).files.retentionDays;
  const { result } = await imWrite(db, async (w): Promise<PurgeResult> => {
    let purgedFiles = 0;
    if (retentionDays > 0) {
      const cutoff = new Date(now.getTime() - retentionDays * 86_400_000);
      purgedFiles = await exec(db, 'UPDATE im_files SET purged_at = ? WHERE purged_at IS NULL AND created_at < ?', [now, cutoff], w.t);
    }
    const orphans = await queryRows<{ sha256: string; size: number | string }>(
      db,
      'SELECT b.sha256, b.size FROM im_blobs b WHERE NOT EXISTS (SELECT 1 FROM im_files f WHERE f.sha256 = b.sha256 AND f.purged_at IS NULL)',
      [],
      w.t,
    );
    for (const o of orphans) {
      await exec(db, 'DELETE FROM im_blobs WHERE sha256 = ?', [o.sha256], w.t);
      await store.removeBlob(o.sha256);
    }
    const stale = await queryRows<{ id: string }>(db, 'SELECT id FROM im_uploads WHERE updated_at < ?', [new Date(now.getTime() - STALE_UPLOAD_MS)], w.t);
    for (const s of stale) {
      await exec(db, 'DELETE FROM im_uploads WHERE id = ?', [s.id], w.t);
      await store.removePart(s.id);
    }
    return { purgedFiles, deletedBlobs: orphans.length, freedBytes: orphans.reduce((n, o) => n + Number(o.size), 0), staleUploads: stale.length };
  });
  return result;
}

/**
 * Checks the files a message points at, before it is stored: each must be readable by the sender and of a
 * kind that fits where it is used. Returns their metadata to write into the body.
 */
export async function checkAttachments(db: Database, senderId: number, refs: Array<{ field: string; fileId: string; kinds: readonly string[] }>): Promise<Map<string, FileInfo>> {
  const out = new Map<string, FileInfo>();
  for (const ref of refs) {
    const file = await readableFile(db, senderId, ref.fileId, ref.field);
    if (!ref.kinds.includes(file.kind)) {
      throw qiaoError('QIAO_VALIDATION', `${ref.field}: file ${file.id} is a ${file.kind}, this needs a ${ref.kinds.join(' or ')}`, { field: ref.field });
    }
    out.set(file.id, file);
  }
  return out;
}

/**
 * A file an app sends (its `/cgi/media/upload` bytes), stored like any upload but owned by nobody
 * (owner 0): people may read it once it is sent into their chat with the app (`im_file_links`).
 */
export async function storeAppFile(db: Database, store: FileStore, p: { name: string; kind: FileKind; mime?: string; data: Buffer }): Promise<FileInfo> {
  const limits = (await readSettings(db)).files.maxBytes;
  if (p.data.length > limits[p.kind]) {
    throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `a ${p.kind} may be at most ${limits[p.kind]} bytes, this one is ${p.data.length}`, { field: 'data', limit: limits[p.kind] });
  }
  const sha256 = createHash('sha256').update(p.data).digest('hex');
  if (!(await store.hasBlob(sha256))) {
    const part = newId('u');
    await store.createPart(part);
    await store.writeAt(part, 0, p.data);
    await store.promote(part, sha256);
    await store.removePart(part);
  }
  const { result } = await imWrite(db, async (w) => {
    await db.sequelize.query('INSERT INTO im_blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING', {
      replacements: [sha256, p.data.length, new Date()],
      transaction: w.t,
    });
    return insertFile(db, w.t, { userId: 0, name: displayName(p.name), size: p.data.length, sha256, kind: p.kind, mime: p.mime });
  });
  return result;
}
