import { qiaoError } from '../../errors.ts';

export type MessageBody = Record<string, unknown>;

/** Replaces (or just visits) one text field of a body; `field` is its dotted path (`body.articles[0].title`). */
export type TextMapper = (text: string, field: string) => string;

/** One message type: how its body is checked and what of it is text. */
export interface MessageTypeDef {
  /** Throws QIAO_VALIDATION (or QIAO_PAYLOAD_TOO_LARGE) naming the field at fault. */
  validate(body: MessageBody, field: string): void;
  /**
   * A copy of `body` with every human-written text passed through `fn`: the sensitive-word filter masks
   * or refuses through it, search collects through it. Ids, urls and names the server fills in are not text.
   */
  mapTexts(body: MessageBody, field: string, fn: TextMapper): MessageBody;
  /** Extra searchable words that are not human-written text (file names, link urls). */
  searchExtras?(body: MessageBody): string[];
  /** Uploaded files the message points at, and which upload kinds fit there. */
  files?(body: MessageBody, field: string): Array<{ field: string; fileId: string; kinds: readonly string[] }>;
  /** People the message @mentions, and whether it mentions everyone. */
  mentions?(body: MessageBody, field: string): { userIds: Array<{ userId: number; field: string }>; all: boolean };
  /** `server`: only the platform sends it (system notices); a client's im.send is refused. */
  sentBy: 'anyone' | 'server';
  /** Largest body in UTF-8 bytes of its JSON. */
  maxBytes: number;
}

export const DEFAULT_MAX_BYTES = 64 * 1024;
export const FILE_ID_PATTERN = /^f[0-9a-f]{24}$/;

export function fail(field: string, message: string, extra: Record<string, unknown> = {}): never {
  throw qiaoError('QIAO_VALIDATION', message, { field, ...extra });
}

export function isObject(v: unknown): v is MessageBody {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function onlyKeys(body: MessageBody, allowed: readonly string[], field: string): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) fail(`${field}.${key}`, `${field}.${key} is not a field of this message type`);
  }
}

/** Counted in characters (code points), not UTF-16 units, so a limit means the same for Chinese and emoji. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

// NUL is refused by PostgreSQL in text and never part of a real message.
const NUL = /\u0000/;

export function text(body: MessageBody, key: string, field: string, opts: { max: number; optional?: boolean; allowBlank?: boolean }): string | undefined {
  const v = body[key];
  const f = `${field}.${key}`;
  if (v === undefined && opts.optional) return undefined;
  if (typeof v !== 'string') fail(f, `${f} must be a string`);
  if (!opts.allowBlank && v.trim() === '') fail(f, `${f} must not be empty`);
  if (NUL.test(v)) fail(f, `${f} must not contain NUL characters`);
  const length = charLength(v);
  if (length > opts.max) fail(f, `${f} is ${length} characters, the limit is ${opts.max}`, { limit: opts.max });
  return v;
}

export function integer(body: MessageBody, key: string, field: string, opts: { min: number; max: number; optional?: boolean }): number | undefined {
  const v = body[key];
  const f = `${field}.${key}`;
  if (v === undefined && opts.optional) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(f, `${f} must be an integer`);
  if (v < opts.min || v > opts.max) fail(f, `${f} must be between ${opts.min} and ${opts.max}, got ${v}`);
  return v;
}

export function boolean(body: MessageBody, key: string, field: string): boolean | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(`${field}.${key}`, `${field}.${key} must be true or false`);
  return v;
}

export function url(body: MessageBody, key: string, field: string, optional = false): string | undefined {
  const v = text(body, key, field, { max: 2048, optional });
  if (v === undefined) return undefined;
  const f = `${field}.${key}`;
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    return fail(f, `${f} is not a URL`);
  }
  // Anything else (javascript:, file:, data:) would run or read something on the recipient's machine.
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') fail(f, `${f} must be an http or https URL, got "${parsed.protocol}"`);
  return v;
}

export function fileId(body: MessageBody, key: string, field: string, optional = false): string | undefined {
  const v = body[key];
  const f = `${field}.${key}`;
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || !FILE_ID_PATTERN.test(v)) fail(f, `${f} must be a file id from im.files (f + 24 hex digits)`);
  return v;
}

/** The metadata the server writes into file-bearing bodies; a client may send them, they are overwritten. */
export function fileMeta(body: MessageBody, field: string): void {
  text(body, 'name', field, { max: 255, optional: true });
  integer(body, 'size', field, { min: 0, max: Number.MAX_SAFE_INTEGER, optional: true });
  text(body, 'mime', field, { max: 100, optional: true });
  const sha = body.sha256;
  if (sha !== undefined && (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha))) fail(`${field}.sha256`, `${field}.sha256 must be 64 lower-case hex digits`);
}

export function array(body: MessageBody, key: string, field: string, opts: { min: number; max: number; optional?: boolean }): unknown[] | undefined {
  const v = body[key];
  const f = `${field}.${key}`;
  if (v === undefined && opts.optional) return undefined;
  if (!Array.isArray(v)) fail(f, `${f} must be a list`);
  if (v.length < opts.min) fail(f, `${f} needs at least ${opts.min} item(s)`);
  if (v.length > opts.max) fail(f, `${f} holds at most ${opts.max} items, got ${v.length}`, { limit: opts.max });
  return v;
}

/** Applies `fn` to `body[key]` when it is a string; returns the body unchanged otherwise. */
export function mapKey(body: MessageBody, key: string, field: string, fn: TextMapper): MessageBody {
  return typeof body[key] === 'string' ? { ...body, [key]: fn(body[key] as string, `${field}.${key}`) } : body;
}
