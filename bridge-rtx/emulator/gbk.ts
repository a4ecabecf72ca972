import iconv from 'iconv-lite';

/**
 * RTX's HTTP SDK runs PHP scripts on a Chinese-locale Windows server, so every byte that crosses it is
 * code page 936 ("GBK"): percent-encoded GBK bytes in, GBK bytes out. Nothing here guesses or repairs an
 * encoding: UTF-8 sent by mistake is decoded as GBK and comes out as the same mojibake an RTX user would
 * see (`中文` → `涓枃`), and text GBK cannot hold (𠮷, emoji) becomes `?` on the way in.
 */
export const RTX_CHARSET = 'gbk';

export function decodeGbk(bytes: Uint8Array): string {
  return iconv.decode(Buffer.from(bytes), RTX_CHARSET);
}

/** Characters outside GBK become `?` (0x3F), as Windows' WideCharToMultiByte does for code page 936. */
export function encodeGbk(text: string): Buffer {
  return iconv.encode(text, RTX_CHARSET);
}

/** True when every character of `text` survives a trip through GBK. */
export function fitsGbk(text: string): boolean {
  return decodeGbk(encodeGbk(text)) === text;
}

const UNRESERVED = /[A-Za-z0-9\-_.~]/;

/** Percent-encodes the GBK bytes of `text` the way a browser on a Chinese Windows does for a form. */
export function percentEncodeGbk(text: string): string {
  let out = '';
  for (const byte of encodeGbk(text)) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `a=1&b=2` with every value (and name) percent-encoded as GBK: what callers of the RTX SDK must send. */
export function gbkQueryString(params: Record<string, string | number | undefined>): string {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${percentEncodeGbk(k)}=${percentEncodeGbk(String(v))}`)
    .join('&');
}
