import { decodeGbk } from './gbk.ts';

/** Request parameters as PHP's `$_GET` / `$_POST` see them: names are case-sensitive, last duplicate wins. */
export type PhpParams = Map<string, string>;

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}

/** PHP's urldecode on raw bytes: `+` is a space, `%XX` a byte, a malformed `%` stays as it is. */
function urlDecodeBytes(raw: Buffer): Buffer {
  const out = Buffer.alloc(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0x2b) {
      out[n++] = 0x20;
    } else if (b === 0x25 && i + 2 < raw.length && hexValue(raw[i + 1]!) >= 0 && hexValue(raw[i + 2]!) >= 0) {
      out[n++] = hexValue(raw[i + 1]!) * 16 + hexValue(raw[i + 2]!);
      i += 2;
    } else {
      out[n++] = b;
    }
  }
  return out.subarray(0, n);
}

/**
 * Parses `a=1&b=2` bytes the way PHP fills `$_GET`/`$_POST`, then reads every value as GBK (the RTX server's
 * code page). Raw high bytes (clients that put unencoded GBK in the URL) are kept, exactly as PHP keeps them.
 */
export function parsePhpQuery(raw: Buffer): PhpParams {
  const params: PhpParams = new Map();
  let start = 0;
  while (start <= raw.length) {
    let end = raw.indexOf(0x26, start);
    if (end === -1) end = raw.length;
    const pair = raw.subarray(start, end);
    start = end + 1;
    if (pair.length === 0) continue;
    const eq = pair.indexOf(0x3d);
    const rawName = eq === -1 ? pair : pair.subarray(0, eq);
    const rawValue = eq === -1 ? Buffer.alloc(0) : pair.subarray(eq + 1);
    // PHP drops leading spaces and turns '.' and ' ' into '_' in names; `name[]` builds arrays, which no
    // RTX script reads as a string, so those pairs are left out.
    const name = decodeGbk(urlDecodeBytes(rawName)).replace(/^ +/, '').replace(/[. ]/g, '_');
    if (name === '' || name.includes('[')) continue;
    params.set(name, decodeGbk(urlDecodeBytes(rawValue)));
  }
  return params;
}

/** `$_GET` from a request target such as `/SendNotify.cgi?msg=%D6%D0`. Node hands the target over as latin1. */
export function queryParams(requestTarget: string): PhpParams {
  const q = requestTarget.indexOf('?');
  if (q === -1) return new Map();
  return parsePhpQuery(Buffer.from(requestTarget.slice(q + 1), 'latin1'));
}

/** `$_POST`: only an `application/x-www-form-urlencoded` body fills it (multipart is not emulated). */
export function formParams(contentType: string | undefined, body: Buffer | null): PhpParams {
  if (!body || !contentType || !/^application\/x-www-form-urlencoded\b/i.test(contentType.trim())) return new Map();
  return parsePhpQuery(body);
}

/**
 * The RTX scripts' rule: read every field from `$_GET`; only if all the `checked` GET fields are empty,
 * read every field from `$_POST` instead. `checked` is passed separately because the shipped SendIM.cgi
 * checks `$receiver` (a typo, always empty) instead of `$receivers`.
 */
export function getOrPost(fields: readonly string[], get: PhpParams, post: PhpParams, checked: readonly string[] = fields): Record<string, string> {
  const usePost = checked.every((f) => (get.get(f) ?? '') === '');
  const source = usePost ? post : get;
  const out: Record<string, string> = {};
  for (const f of fields) out[f] = source.get(f) ?? '';
  return out;
}

/** GetSession.cgi / GetMobile.cgi style: each field falls back to `$_POST` on its own when its GET value is empty. */
export function getThenPost(field: string, get: PhpParams, post: PhpParams): string {
  const v = get.get(field) ?? '';
  return v === '' ? (post.get(field) ?? '') : v;
}
