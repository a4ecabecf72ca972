import fs from 'node:fs';
import path from 'node:path';
import { qiaoError } from '../../errors.ts';

/**
 * Where an import file comes from: base64 `data` in the request, a `file` on the server's disk (the CLI and
 * the RTX bridge; super-admins only), or a byte stream handed over in-process. Every path is bounded: a
 * file is refused by its size before a byte is read, a stream as soon as it passes the limit.
 */
export interface ImportSource {
  data?: string;
  file?: string;
  stream?: AsyncIterable<Uint8Array>;
}

const mib = (n: number) => (n >= 1048576 ? `${Math.round((n / 1048576) * 10) / 10} MiB` : `${Math.ceil(n / 1024)} KiB`);

function tooLarge(what: string, maxBytes: number, field: string, size?: number): Error {
  const was = size === undefined ? 'more than that' : `${size} bytes`;
  return qiaoError(
    'QIAO_PAYLOAD_TOO_LARGE',
    `${what} is too large: the import limit is ${mib(maxBytes)} (${maxBytes} bytes, setting org.import.maxBytes) and the input is ${was}`,
    { field, limit: maxBytes },
  );
}

export function sourceField(src: ImportSource): string {
  return src.file !== undefined ? 'file' : src.data !== undefined ? 'data' : 'stream';
}

/** The input as chunks, failing once more than `maxBytes` arrived. */
export async function* boundedChunks(src: ImportSource, maxBytes: number, what: string): AsyncGenerator<Buffer> {
  const field = sourceField(src);
  let iterable: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  if (src.file !== undefined) {
    const file = path.resolve(src.file);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      throw qiaoError('QIAO_NOT_FOUND', `${what}: file "${src.file}" does not exist or cannot be read`, { field: 'file' });
    }
    if (!stat.isFile()) throw qiaoError('QIAO_VALIDATION', `${what}: "${src.file}" is not a regular file`, { field: 'file' });
    if (stat.size > maxBytes) throw tooLarge(what, maxBytes, 'file', stat.size);
    iterable = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  } else if (src.data !== undefined) {
    // base64 is 4/3 the size: refuse by length before decoding anything.
    if (Math.floor((src.data.length * 3) / 4) > maxBytes + 3) throw tooLarge(what, maxBytes, 'data');
    if (!/^[A-Za-z0-9+/=\r\n_-]*$/.test(src.data)) throw qiaoError('QIAO_VALIDATION', `${what}: data must be base64`, { field: 'data' });
    iterable = [Buffer.from(src.data, 'base64')];
  } else if (src.stream) {
    iterable = src.stream;
  } else {
    throw qiaoError('QIAO_VALIDATION', `${what}: give the file as base64 "data" or as a server-side "file" path`, { field: 'data' });
  }
  let total = 0;
  try {
    for await (const chunk of iterable) {
      total += chunk.length;
      if (total > maxBytes) throw tooLarge(what, maxBytes, field);
      yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    }
  } finally {
    if (iterable instanceof fs.ReadStream) iterable.destroy();
  }
}

export async function readAll(src: ImportSource, maxBytes: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of boundedChunks(src, maxBytes, what)) parts.push(c);
  return Buffer.concat(parts);
}
