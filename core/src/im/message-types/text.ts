import { array, boolean, charLength, DEFAULT_MAX_BYTES, fail, fileId, isObject, mapKey, onlyKeys, text, url, type MessageBody, type MessageTypeDef } from './common.ts';

export const MAX_TEXT_LENGTH = 5000;
export const MAX_MENTIONS = 200;
const MAX_RICH_SEGMENTS = 500;
const MAX_RICH_TEXT = 10_000;
const COLOR = /^#[0-9a-fA-F]{6}$/;

/** Plain text, with optional @mentions (user ids) and @all. */
export const text_: MessageTypeDef = {
  sentBy: 'anyone',
  maxBytes: DEFAULT_MAX_BYTES,
  validate(body, field) {
    onlyKeys(body, ['text', 'mentions', 'mentionAll'], field);
    text(body, 'text', field, { max: MAX_TEXT_LENGTH });
    const mentions = array(body, 'mentions', field, { min: 0, max: MAX_MENTIONS, optional: true });
    mentions?.forEach((m, i) => {
      if (typeof m !== 'number' || !Number.isInteger(m) || m <= 0) fail(`${field}.mentions[${i}]`, `${field}.mentions[${i}] must be a user id`);
    });
    boolean(body, 'mentionAll', field);
  },
  mapTexts: (body, field, fn) => mapKey(body, 'text', field, fn),
  mentions(body, field) {
    const ids = (body.mentions as number[] | undefined) ?? [];
    return { userIds: ids.map((userId, i) => ({ userId, field: `${field}.mentions[${i}]` })), all: body.mentionAll === true };
  },
};

type Segment = MessageBody & { type: string };

function validateSegment(seg: unknown, f: string): number {
  if (!isObject(seg)) fail(f, `${f} must be an object`);
  switch (seg.type) {
    case 'text':
      onlyKeys(seg, ['type', 'text', 'bold', 'italic', 'underline', 'color'], f);
      text(seg, 'text', f, { max: MAX_RICH_TEXT, allowBlank: true });
      for (const k of ['bold', 'italic', 'underline']) boolean(seg, k, f);
      if (seg.color !== undefined && (typeof seg.color !== 'string' || !COLOR.test(seg.color))) fail(`${f}.color`, `${f}.color must be a colour like #1a2b3c`);
      return charLength(seg.text as string);
    case 'link':
      onlyKeys(seg, ['type', 'text', 'url'], f);
      text(seg, 'text', f, { max: 500 });
      url(seg, 'url', f);
      return charLength(seg.text as string);
    case 'mention':
      onlyKeys(seg, ['type', 'userId'], f);
      if (typeof seg.userId !== 'number' || !Number.isInteger(seg.userId) || seg.userId <= 0) fail(`${f}.userId`, `${f}.userId must be a user id`);
      return 0;
    case 'mentionAll':
      onlyKeys(seg, ['type'], f);
      return 0;
    case 'image':
      onlyKeys(seg, ['type', 'fileId'], f);
      fileId(seg, 'fileId', f);
      return 0;
    case 'lineBreak':
      onlyKeys(seg, ['type'], f);
      return 0;
    default:
      return fail(`${f}.type`, `${f}.type must be one of text, link, mention, mentionAll, image, lineBreak`);
  }
}

/** Formatted text: a list of styled runs, links, mentions and inline images. */
export const rich: MessageTypeDef = {
  sentBy: 'anyone',
  maxBytes: DEFAULT_MAX_BYTES * 2,
  validate(body, field) {
    onlyKeys(body, ['title', 'segments'], field);
    text(body, 'title', field, { max: 200, optional: true });
    const segments = array(body, 'segments', field, { min: 1, max: MAX_RICH_SEGMENTS })!;
    let total = 0;
    segments.forEach((s, i) => (total += validateSegment(s, `${field}.segments[${i}]`)));
    if (total > MAX_RICH_TEXT) fail(`${field}.segments`, `${field}.segments hold ${total} characters of text, the limit is ${MAX_RICH_TEXT}`, { limit: MAX_RICH_TEXT });
    if (total === 0 && !segments.some((s) => (s as Segment).type !== 'text' && (s as Segment).type !== 'lineBreak')) {
      fail(`${field}.segments`, `${field}.segments must not be empty`);
    }
  },
  mapTexts(body, field, fn) {
    const out = mapKey(body, 'title', field, fn);
    const segments = (body.segments as Segment[]).map((s, i) => (s.type === 'text' || s.type === 'link' ? mapKey(s, 'text', `${field}.segments[${i}]`, fn) : s));
    return { ...out, segments };
  },
  searchExtras: (body) => (body.segments as Segment[]).filter((s) => s.type === 'link').map((s) => String(s.url)),
  files: (body, field) =>
    (body.segments as Segment[]).flatMap((s, i) => (s.type === 'image' ? [{ field: `${field}.segments[${i}].fileId`, fileId: String(s.fileId), kinds: ['image'] }] : [])),
  mentions(body, field) {
    const segments = body.segments as Segment[];
    return {
      userIds: segments.flatMap((s, i) => (s.type === 'mention' ? [{ userId: Number(s.userId), field: `${field}.segments[${i}].userId` }] : [])),
      all: segments.some((s) => s.type === 'mentionAll'),
    };
  },
};
