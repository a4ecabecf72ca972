import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { qiaoError } from '../../errors.ts';
import type { BeginResult, FileInfo } from '../../im/files/files.ts';
import { contentDisposition, parseRange } from './range.ts';
import { call, clientRoute } from './route.ts';
import { beginUpload, conversationId, fileId, fileInfo, object, seq, uploadId } from './schemas.ts';

/**
 * Bytes per `im.files.append` / `im.files.read` call. The HTTP bodies are streams of any length; over the
 * broker they travel in these pieces, well under NATS's default 1 MiB message limit.
 */
export const BROKER_CHUNK = 512 * 1024;

type AppendResult = { uploadId: string; received: number; size: number };

/** A file name is a name: a path, `.`/`..` or control characters are refused, naming the field. */
function checkName(name: string): void {
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  if (/[/\\]/.test(name)) throw qiaoError('QIAO_VALIDATION', `name: ${shown} is a path; send only the file name, without / or \\`, { field: 'name' });
  if (/[\u0000-\u001f\u007f]/.test(name)) throw qiaoError('QIAO_VALIDATION', 'name: control characters are not allowed in a file name', { field: 'name' });
  if (/^\.+$/.test(name.trim()) || name.trim() === '') throw qiaoError('QIAO_VALIDATION', `name: ${shown} is not a file name`, { field: 'name' });
}

/** Reads `[start, end]` of a file over the broker, for a gateway on a host without the file store. */
export function brokerStream(app: FastifyInstance, userId: number, id: string, start: number, end: number): Readable {
  return Readable.from(
    (async function* () {
      for (let pos = start; pos <= end; ) {
        const r = await call<{ data: string }>(app, 'im.files.read', { userId, fileId: id, offset: pos, length: Math.min(BROKER_CHUNK, end - pos + 1) });
        const bytes = Buffer.from(r.data, 'base64');
        if (bytes.length === 0) return;
        pos += bytes.length;
        yield bytes;
      }
    })(),
  );
}

async function localCopy(path: string, size: number): Promise<boolean> {
  try {
    return (await fs.promises.stat(path)).size === size;
  } catch {
    return false;
  }
}

/** Resumable uploads (begin, stream bytes from where the server is, complete) and ranged downloads. */
export default async function fileRoutes(app: FastifyInstance): Promise<void> {
  const tag = 'files';
  const byFile = object({ fileId }, ['fileId']);
  const byUpload = object({ uploadId }, ['uploadId']);

  clientRoute(
    app,
    {
      method: 'POST',
      url: '/v1/files/uploads',
      tag,
      summary: 'Begin (or resume) an upload',
      description:
        'Checked against the size limit of its kind and, for group space, the quota. Content the server has already (same SHA-256 and size) is not sent ' +
        'again: `file` is ready at once. Otherwise send the bytes from `received` with PUT /v1/files/uploads/{uploadId}?offset=…; beginning the same upload ' +
        'again tells where it stands.',
      body: beginUpload,
      response: object({ uploadId: { type: ['string', 'null'] }, received: seq, file: { oneOf: [fileInfo, { type: 'null' }] }, deduplicated: { type: 'boolean' } }),
    },
    (req, _reply, me) => {
      const body = req.body as { name: string };
      checkName(body.name);
      return call<BeginResult>(app, 'im.files.begin', { ...body, userId: me.userId });
    },
  );

  // The byte stream route reads its body itself, so it has a scope of its own without the JSON parser.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    raw.addHook('onSend', async (_req, reply) => {
      // Whatever of a refused body is still on its way is not worth reading.
      if (reply.statusCode >= 400) reply.header('connection', 'close');
    });
    clientRoute(
      raw,
      {
        method: 'PUT',
        url: '/v1/files/uploads/:uploadId',
        tag,
        summary: 'Send bytes of an upload, starting at `offset` (where the server is)',
        description: 'The body is raw bytes of any length (application/octet-stream). Each piece is stored as it arrives: after a broken connection, begin again to learn `received` and go on from there.',
        params: byUpload,
        querystring: object({ offset: seq }, ['offset']),
        consumes: ['application/octet-stream'],
        response: object({ uploadId, received: seq, size: seq }),
        responses: { 409: { description: '`offset` is not where the upload stands; the message says where it does' } },
      },
      async (req, _reply, me) => {
        const { uploadId: upload } = req.params as { uploadId: string };
        let offset = (req.query as { offset: number }).offset;
        const body = req.body as Readable | Buffer | undefined;
        let last: AppendResult | null = null;
        let held: Buffer = Buffer.alloc(0);
        const append = async (bytes: Buffer) => {
          last = await call<AppendResult>(app, 'im.files.append', { userId: me.userId, uploadId: upload, offset, data: bytes.toString('base64') });
          offset = last.received;
        };
        if (body && typeof (body as Readable).pipe === 'function') {
          try {
            for await (const chunk of body as Readable) {
              held = held.length ? Buffer.concat([held, chunk as Buffer]) : (chunk as Buffer);
              while (held.length >= BROKER_CHUNK) {
                await append(held.subarray(0, BROKER_CHUNK));
                held = held.subarray(BROKER_CHUNK);
              }
            }
          } catch (err) {
            // The client went away mid-body: keep what arrived, so the resumed upload sends less.
            if (held.length) await append(held).catch(() => undefined);
            throw err;
          }
        } else if (Buffer.isBuffer(body)) held = body;
        if (held.length || !last) await append(held);
        return last;
      },
    );
  });

  clientRoute(
    app,
    {
      method: 'POST',
      url: '/v1/files/uploads/:uploadId/complete',
      tag,
      summary: 'Finish an upload: every byte there and the checksum right',
      params: byUpload,
      response: fileInfo,
    },
    (req, _reply, me) => call<FileInfo>(app, 'im.files.complete', { userId: me.userId, uploadId: (req.params as { uploadId: string }).uploadId }),
  );

  clientRoute(
    app,
    { method: 'GET', url: '/v1/files/:fileId', tag, summary: "A file's metadata (its uploader, or members of a conversation it was sent to)", params: byFile, response: fileInfo },
    (req, _reply, me) => call<FileInfo>(app, 'im.files.stat', { userId: me.userId, fileId: (req.params as { fileId: string }).fileId }),
  );

  clientRoute(
    app,
    {
      method: 'GET',
      url: '/v1/files/:fileId/content',
      tag,
      summary: 'Download a file; `Range: bytes=N-` resumes',
      description: 'One byte range per request (206 with Content-Range); `If-Range` with the ETag (the SHA-256) guards a resume. A range past the end is 416.',
      params: byFile,
      produces: ['application/octet-stream'],
      response: { type: 'string', format: 'binary' },
      responses: { 206: { description: 'the range asked for', type: 'string', format: 'binary' }, 416: { description: 'the range starts past the end' } },
    },
    async (req, reply, me) => {
      const id = (req.params as { fileId: string }).fileId;
      const f = await call<FileInfo & { path: string }>(app, 'im.files.open', { userId: me.userId, fileId: id });
      const etag = `"${f.sha256}"`;
      reply
        .header('accept-ranges', 'bytes')
        .header('etag', etag)
        .header('content-type', f.mime ?? 'application/octet-stream')
        .header('content-disposition', contentDisposition(f.name))
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'private, no-cache');
      if (req.headers['if-none-match'] === etag) return reply.code(304).send();
      const ifRange = req.headers['if-range'];
      const range = ifRange !== undefined && ifRange !== etag ? ({ kind: 'full' } as const) : parseRange(req.headers.range, f.size);
      if (range.kind === 'unsatisfiable') {
        reply.header('content-range', `bytes */${f.size}`);
        throw qiaoError('QIAO_RANGE_NOT_SATISFIABLE', `range: ${String(req.headers.range)} starts at or past the end of file ${f.id} (${f.size} bytes)`, { field: 'range' });
      }
      const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, f.size - 1];
      if (range.kind === 'partial') reply.code(206).header('content-range', `bytes ${start}-${end}/${f.size}`);
      reply.header('content-length', String(end - start + 1));
      if (f.size === 0) return Buffer.alloc(0);
      // On the host of the file store, straight from disk; elsewhere, through the broker.
      if (await localCopy(f.path, f.size)) return fs.createReadStream(f.path, { start, end });
      return brokerStream(app, me.userId, f.id, start, end);
    },
  );

  clientRoute(
    app,
    { method: 'DELETE', url: '/v1/files/:fileId', tag, summary: 'Remove a file from a group space (its uploader, or a group admin)', params: byFile },
    (req, _reply, me) => call(app, 'im.files.remove', { userId: me.userId, fileId: (req.params as { fileId: string }).fileId }),
  );

  clientRoute(
    app,
    {
      method: 'GET',
      url: '/v1/conversations/:conversationId/files',
      tag,
      summary: "A group's shared files (群空间), with its quota and use",
      params: object({ conversationId }, ['conversationId']),
      response: object({ conversationId, quota: seq, used: seq, files: { type: 'array', items: fileInfo } }),
    },
    (req, _reply, me) => call(app, 'im.files.space', { userId: me.userId, conversationId: (req.params as { conversationId: string }).conversationId }),
  );
}
