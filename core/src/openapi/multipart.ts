/**
 * A small multipart/form-data reader for the open API's uploads: the vendor SDKs send a few text fields
 * and the encrypted file as base64 text, so whole-buffer parsing is enough. Null when the body is malformed.
 */
export interface Part {
  name: string;
  filename: string | null;
  data: Buffer;
}

const MAX_PARTS = 20;

export function parseMultipart(body: Buffer, boundary: string): Part[] | null {
  if (!boundary || boundary.length > 200) return null;
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  if (pos < 0) return null;
  const parts: Part[] = [];
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') return parts;
    if (body.subarray(pos, pos + 2).toString() === '\r\n') pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) return null;
    const headers = body.subarray(pos, headerEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    if (next < 0) return null;
    const disposition = /content-disposition:\s*form-data(.*)/i.exec(headers)?.[1] ?? '';
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined) return null;
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1] ?? null;
    parts.push({ name, filename, data: body.subarray(headerEnd + 4, next) });
    if (parts.length > MAX_PARTS) return null;
    pos = next + 2;
  }
}
