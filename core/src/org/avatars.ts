import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import type { OrgTx } from './org-write.ts';
import { exec } from '../db/sql.ts';
import { findUser } from './users.ts';

/**
 * Avatars are files under `<dataDir>/avatars/`, named by user id and content hash so the name changes with
 * the picture (clients cache by name). Only real images pass: the type is read from the bytes, never from
 * what the caller claims.
 */
export const AVATAR_MAX_BYTES = 1024 * 1024;

const TYPES: Array<{ type: string; ext: string; test: (b: Buffer) => boolean }> = [
  { type: 'image/png', ext: 'png', test: (b) => b.length > 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  { type: 'image/jpeg', ext: 'jpg', test: (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { type: 'image/gif', ext: 'gif', test: (b) => b.length > 6 && (b.subarray(0, 6).toString('latin1') === 'GIF87a' || b.subarray(0, 6).toString('latin1') === 'GIF89a') },
  { type: 'image/webp', ext: 'webp', test: (b) => b.length > 12 && b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP' },
];

export function avatarDir(dataDir: string): string {
  return path.join(dataDir, 'avatars');
}

export function decodeImage(data: string): { bytes: Buffer; type: string; ext: string } {
  if (!/^[A-Za-z0-9+/=\s_-]*$/.test(data)) throw qiaoError('QIAO_VALIDATION', 'avatar data must be base64', { field: 'data' });
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length === 0) throw qiaoError('QIAO_VALIDATION', 'avatar data is empty', { field: 'data' });
  if (bytes.length > AVATAR_MAX_BYTES) {
    throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `avatar is ${bytes.length} bytes; the limit is ${AVATAR_MAX_BYTES} bytes`, { field: 'data' });
  }
  const kind = TYPES.find((t) => t.test(bytes));
  if (!kind) throw qiaoError('QIAO_VALIDATION', 'avatar must be a PNG, JPEG, GIF or WebP image', { field: 'data' });
  return { bytes, type: kind.type, ext: kind.ext };
}

/**
 * Writes the file first (atomically), then points the row at it inside the org transaction. A rollback
 * leaves an unreferenced file, never a row pointing at nothing; the caller removes the old file after commit.
 */
export async function setAvatar(db: Database, w: OrgTx, dataDir: string, userId: number, data: string): Promise<{ avatar: string; previous: string | null }> {
  const user = await findUser(db, userId, w.t);
  const { bytes, ext } = decodeImage(data);
  const name = `${userId}-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.${ext}`;
  const dir = avatarDir(dataDir);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
  if (user.avatar !== name) {
    await exec(db, 'UPDATE users SET avatar = ?, version = ?, updated_at = ? WHERE id = ?', [name, w.version, new Date(), userId], w.t);
    w.events.push({ topic: 'org.user.changed', subject: `user:${userId}`, payload: { change: 'avatar', userId, avatar: name } });
  }
  return { avatar: name, previous: user.avatar !== name ? user.avatar : null };
}

export async function removeAvatar(db: Database, w: OrgTx, userId: number): Promise<{ previous: string | null }> {
  const user = await findUser(db, userId, w.t);
  if (!user.avatar) return { previous: null };
  await exec(db, 'UPDATE users SET avatar = NULL, version = ?, updated_at = ? WHERE id = ?', [w.version, new Date(), userId], w.t);
  w.events.push({ topic: 'org.user.changed', subject: `user:${userId}`, payload: { change: 'avatar', userId, avatar: null } });
  return { previous: user.avatar };
}

export function readAvatar(dataDir: string, name: string | null, userId: number): { avatar: string; contentType: string; data: string } {
  if (!name) throw qiaoError('QIAO_NOT_FOUND', `user ${userId} has no avatar`, { field: 'userId' });
  // Names are ours (id-hash.ext), but never let a stored value walk out of the directory.
  const file = path.join(avatarDir(dataDir), path.basename(name));
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw qiaoError('QIAO_NOT_FOUND', `the avatar file of user ${userId} is missing`, { field: 'userId' });
  }
  const kind = TYPES.find((t) => t.test(bytes));
  return { avatar: name, contentType: kind?.type ?? 'application/octet-stream', data: bytes.toString('base64') };
}

export function deleteAvatarFile(dataDir: string, name: string | null): void {
  if (name) fs.rmSync(path.join(avatarDir(dataDir), path.basename(name)), { force: true });
}
