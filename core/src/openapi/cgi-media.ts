import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CgiRequest, CgiRoute } from './cgi.ts';
import { rows, run } from './app-store.ts';
import { cgiError } from './errcodes.ts';
import { optString, reqString } from './params.ts';

/**
 * Media (素材, docs/api/c01_00017.md): the file travels as the app's encrypted base64 text both ways, with
 * `{type, name}` (upload) and `{name, size}` (download) sealed beside it. Stored decrypted under
 * `<dataDir>/openapi-media/`, named by an unguessable id.
 */
export const MEDIA_TYPES = ['image', 'file', 'voice', 'video'] as const;
/** The largest file accepted, after decryption. */
export const MEDIA_MAX_BYTES = 20 * 1024 * 1024;

export interface Media {
  mediaId: string;
  appId: string;
  type: string;
  name: string;
  size: number;
  sha256: string;
}

const MEDIA_ID = /^[0-9a-f]{32}$/;
const MIME: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.txt': 'text/plain',
  '.pdf': 'application/pdf',
};

export function mediaFile(dir: string, mediaId: string): string {
  return path.join(dir, mediaId);
}

export async function findMedia(req: Pick<CgiRequest, 'db'>, mediaId: string): Promise<Media | null> {
  if (!MEDIA_ID.test(mediaId)) return null;
  const [r] = await rows<{ media_id: string; app_id: string; type: string; name: string; size: number | string; sha256: string }>(
    req.db,
    'SELECT * FROM openapi_media WHERE media_id = ?',
    [mediaId],
  );
  return r ? { mediaId: r.media_id, appId: r.app_id, type: r.type, name: r.name, size: Number(r.size), sha256: r.sha256 } : null;
}

export async function readMedia(req: CgiRequest, mediaId: string, field = 'mediaId'): Promise<{ media: Media; bytes: Buffer }> {
  const media = await findMedia(req, mediaId);
  if (!media) throw cgiError('ERRCODE_FILE_NOTEXIST', `${field} "${mediaId.slice(0, 64)}" does not exist`);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(mediaFile(req.deps.mediaDir, media.mediaId));
  } catch {
    throw cgiError('ERRCODE_FILE_NOTEXIST', `the file of ${field} "${mediaId}" is missing on the server`);
  }
  return { media, bytes };
}

/** Stores bytes as a new media item (also used for files users send to apps). */
export async function storeMedia(req: Pick<CgiRequest, 'db' | 'deps' | 'now'>, appId: string, type: string, name: string, bytes: Buffer): Promise<Media> {
  const mediaId = randomBytes(16).toString('hex');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  fs.mkdirSync(req.deps.mediaDir, { recursive: true });
  const file = mediaFile(req.deps.mediaDir, mediaId);
  fs.writeFileSync(`${file}.tmp`, bytes);
  fs.renameSync(`${file}.tmp`, file);
  try {
    await run(req.db, 'INSERT INTO openapi_media (media_id, app_id, type, name, size, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [mediaId, appId, type, name, bytes.length, sha256, req.now]);
  } catch (err) {
    fs.rmSync(file, { force: true });
    throw err;
  }
  return { mediaId, appId, type, name, size: bytes.length, sha256 };
}

function mediaIdParam(req: CgiRequest): string {
  return reqString(req.params, 'mediaId', 'ERRCODE_INVALID_REQUEST', 'ERRCODE_INVALID_REQUEST', 64);
}

export const mediaRoutes: CgiRoute[] = [
  {
    paths: ['/cgi/media/upload'],
    methods: ['POST'],
    apps: 'any',
    async handler(req) {
      const type = reqString(req.params, 'type', 'ERRCODE_INVALID_FILETYPE', 'ERRCODE_INVALID_FILETYPE', 16);
      if (!(MEDIA_TYPES as readonly string[]).includes(type)) throw cgiError('ERRCODE_INVALID_FILETYPE', `type must be one of ${MEDIA_TYPES.join(', ')}`);
      const name = path.basename(optString(req.params, 'name', 'ERRCODE_INVALID_MULTIPART', 255) ?? 'file');
      const file = req.files.file;
      if (file === undefined) throw cgiError('ERRCODE_INVALID_MULTIPART', 'the file goes in the multipart field "file", encrypted');
      const bytes = req.open(file, 'file');
      if (bytes.length === 0) throw cgiError('ERRCODE_INVALID_MULTIPART', 'the file is empty');
      if (bytes.length > MEDIA_MAX_BYTES) throw cgiError('ERRCODE_INVALID_MULTIPART', `the file is ${bytes.length} bytes; at most ${MEDIA_MAX_BYTES}`);
      const media = await storeMedia(req, req.app.appId, type, name, bytes);
      return { mediaId: media.mediaId };
    },
  },
  {
    paths: ['/cgi/media/get'],
    methods: ['POST', 'GET'],
    apps: 'any',
    async handler(req) {
      const { media, bytes } = await readMedia(req, mediaIdParam(req));
      const ext = path.extname(media.name).toLowerCase();
      return {
        raw: {
          headers: {
            'content-type': MIME[ext] ?? 'application/octet-stream',
            'content-disposition': `attachment; filename="${media.mediaId}${ext.replace(/[^.\w]/g, '')}"`,
            'cache-control': 'no-cache, must-revalidate',
            encrypt: req.seal(JSON.stringify({ name: media.name, size: media.size })),
          },
          body: req.seal(bytes),
        },
      };
    },
  },
  {
    paths: ['/cgi/media/search'],
    methods: ['POST', 'GET'],
    apps: 'any',
    async handler(req) {
      const media = await findMedia(req, mediaIdParam(req));
      if (!media) throw cgiError('ERRCODE_FILE_NOTEXIST', 'mediaId does not exist');
      return { name: media.name, size: media.size };
    },
  },
];
