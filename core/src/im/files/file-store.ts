import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;
export const UPLOAD_ID_PATTERN = /^u[0-9a-f]{24}$/;

/**
 * Files on the server's disk. Content lives under `blobs/ab/abcd…`, named by its SHA-256 and nothing else,
 * and unfinished uploads under `uploads/<upload id>.part`. No name a user chose ever reaches a path, so
 * `../../etc/passwd` as a file name is only a display name (see `displayName`). Every path below is built
 * from a checked hash or a server-made id, and checked again here.
 */
export class FileStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  blobPath(sha256: string): string {
    if (!SHA256_PATTERN.test(sha256)) throw new Error(`not a SHA-256: ${sha256}`);
    return path.join(this.root, 'blobs', sha256.slice(0, 2), sha256);
  }

  partPath(uploadId: string): string {
    if (!UPLOAD_ID_PATTERN.test(uploadId)) throw new Error(`not an upload id: ${uploadId}`);
    return path.join(this.root, 'uploads', `${uploadId}.part`);
  }

  async init(): Promise<void> {
    await fs.mkdir(path.join(this.root, 'blobs'), { recursive: true });
    await fs.mkdir(path.join(this.root, 'uploads'), { recursive: true });
  }

  async createPart(uploadId: string): Promise<void> {
    await fs.mkdir(path.dirname(this.partPath(uploadId)), { recursive: true });
    await (await fs.open(this.partPath(uploadId), 'a')).close();
  }

  /** Writes `data` at `offset` of the part file; writing the same bytes twice (a retried chunk) is harmless. */
  async writeAt(uploadId: string, offset: number, data: Buffer): Promise<void> {
    const handle = await fs.open(this.partPath(uploadId), 'r+');
    try {
      let done = 0;
      while (done < data.length) done += (await handle.write(data, done, data.length - done, offset + done)).bytesWritten;
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async partSize(uploadId: string): Promise<number> {
    return (await fs.stat(this.partPath(uploadId))).size;
  }

  async hashPart(uploadId: string): Promise<string> {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(this.partPath(uploadId))) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }

  async hasBlob(sha256: string): Promise<boolean> {
    try {
      await fs.access(this.blobPath(sha256));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Moves a finished (and verified) upload into place as the blob of its hash. A rename within the store
   * is atomic, so a blob is never seen half-written, and instant, so it can run under the write lock.
   * When that blob exists already the part is simply left for `removePart`.
   */
  async promote(uploadId: string, sha256: string): Promise<void> {
    if (await this.hasBlob(sha256)) return;
    const target = this.blobPath(sha256);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.rename(this.partPath(uploadId), target);
  }

  async hasPart(uploadId: string): Promise<boolean> {
    try {
      await fs.access(this.partPath(uploadId));
      return true;
    } catch {
      return false;
    }
  }

  async readRange(sha256: string, offset: number, length: number): Promise<Buffer> {
    const handle = await fs.open(this.blobPath(sha256), 'r');
    try {
      const buffer = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    } finally {
      await handle.close();
    }
  }

  async removeBlob(sha256: string): Promise<void> {
    await fs.rm(this.blobPath(sha256), { force: true });
  }

  async removePart(uploadId: string): Promise<void> {
    await fs.rm(this.partPath(uploadId), { force: true });
  }
}

/**
 * The name shown for an uploaded file: the last segment of whatever path the client sent, without control
 * characters, at most 255 characters. Only ever displayed, never used to build a path.
 */
export function displayName(raw: string): string {
  const cleaned = raw.normalize('NFC').replace(/[\u0000-\u001f\u007f]/g, '');
  let name = (cleaned.split(/[\\/]/).pop() ?? '').trim();
  if (/^\.+$/.test(name)) name = '';
  return [...(name || 'file')].slice(0, 255).join('');
}
