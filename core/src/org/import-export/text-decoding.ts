import iconv from 'iconv-lite';
import { qiaoError } from '../../errors.ts';

/**
 * Turns the bytes of an XML file into text in the encoding its declaration names, strictly: a byte
 * sequence that is not valid in that encoding is an error with its line and column, never a silent U+FFFD.
 */

export const XML_ENCODINGS: Record<string, 'utf8' | 'gbk' | 'gb18030'> = {
  'utf-8': 'utf8',
  utf8: 'utf8',
  gb2312: 'gbk',
  gbk: 'gbk',
  cp936: 'gbk',
  'x-gbk': 'gbk',
  'windows-936': 'gbk',
  gb18030: 'gb18030',
};

/** Reads the encoding from a BOM or the XML declaration in the first bytes; UTF-8 when none is declared. */
export function sniffEncoding(head: Buffer, what: string): { label: string; codec: 'utf8' | 'gbk' | 'gb18030'; bom: number } {
  if (head.length >= 3 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return { label: 'UTF-8', codec: 'utf8', bom: 3 };
  if (head.length >= 2 && ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff))) {
    throw qiaoError('QIAO_VALIDATION', `${what} is UTF-16, which is not supported: save it as UTF-8 or GB2312/GBK`, { field: 'data' });
  }
  const text = head.subarray(0, 1024).toString('latin1');
  const decl = /^\s*<\?xml\s[^>]*?\?>/.exec(text);
  if (!decl) return { label: 'UTF-8', codec: 'utf8', bom: 0 };
  const enc = /\sencoding\s*=\s*(["'])([A-Za-z0-9._-]+)\1/.exec(decl[0]);
  if (!enc) return { label: 'UTF-8', codec: 'utf8', bom: 0 };
  const codec = XML_ENCODINGS[enc[2].toLowerCase()];
  if (!codec) {
    throw qiaoError('QIAO_VALIDATION', `${what} declares encoding "${enc[2]}", which is not supported: use UTF-8, GB2312, GBK or GB18030`, { field: 'data' });
  }
  return { label: enc[2], codec, bom: 0 };
}

/** Streaming strict decoder that knows the line and column it has reached, for error messages. */
export class StrictDecoder {
  #codec: 'utf8' | 'gbk' | 'gb18030';
  #label: string;
  #what: string;
  #utf8: InstanceType<typeof TextDecoder> | null;
  #gbk: ReturnType<typeof iconv.getDecoder> | null;
  line = 1;
  column = 1;

  constructor(codec: 'utf8' | 'gbk' | 'gb18030', label: string, what: string) {
    this.#codec = codec;
    this.#label = label;
    this.#what = what;
    this.#utf8 = codec === 'utf8' ? new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }) : null;
    this.#gbk = codec === 'utf8' ? null : iconv.getDecoder(codec);
  }

  write(bytes: Buffer): string {
    return this.#check(this.#decode(bytes, false));
  }

  end(): string {
    return this.#check(this.#decode(null, true));
  }

  #decode(bytes: Buffer | null, last: boolean): string {
    if (this.#utf8) {
      try {
        return bytes ? this.#utf8.decode(bytes, { stream: !last }) : this.#utf8.decode();
      } catch {
        throw this.#invalid(this.line, this.column, 'near');
      }
    }
    return bytes ? this.#gbk!.write(bytes) : (this.#gbk!.end() ?? '');
  }

  #check(text: string): string {
    // GBK cannot encode U+FFFD, so in its output the character means the decoder met an invalid sequence.
    const bad = this.#codec === 'utf8' ? -1 : text.indexOf('\uFFFD');
    if (bad >= 0) {
      const { line, column } = this.#advance(text.slice(0, bad), false);
      throw this.#invalid(line, column, 'at');
    }
    this.#advance(text, true);
    return text;
  }

  #advance(text: string, commit: boolean): { line: number; column: number } {
    let line = this.line;
    let column = this.column;
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      line++;
      from = nl + 1;
      column = 1;
    }
    column += text.length - from;
    if (commit) {
      this.line = line;
      this.column = column;
    }
    return { line, column };
  }

  #invalid(line: number, column: number, where: string): Error {
    return qiaoError(
      'QIAO_VALIDATION',
      `${this.#what} has bytes that are not valid ${this.#label} ${where} line ${line}, column ${column}: the file is damaged or its declared encoding is wrong`,
      { field: 'data', line, column },
    );
  }
}
