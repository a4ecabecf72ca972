import { array, boolean, DEFAULT_MAX_BYTES, fail, isObject, mapKey, onlyKeys, text, url, type MessageBody, type MessageTypeDef } from './common.ts';
import { MAX_TEXT_LENGTH } from './text.ts';

/**
 * A notice from the platform or an admin (系统消息): a title, text and Youdu-style implicit links
 * (`[title|url|ACTION]`), each of which may ask for the viewer's SSO token. Clients cannot send it.
 */
export const system: MessageTypeDef = {
  sentBy: 'server',
  maxBytes: DEFAULT_MAX_BYTES,
  validate(body, field) {
    onlyKeys(body, ['title', 'text', 'links'], field);
    text(body, 'title', field, { max: 200, optional: true });
    text(body, 'text', field, { max: MAX_TEXT_LENGTH });
    const links = array(body, 'links', field, { min: 0, max: 20, optional: true });
    links?.forEach((l, i) => {
      const f = `${field}.links[${i}]`;
      if (!isObject(l)) fail(f, `${f} must be an object`);
      onlyKeys(l, ['title', 'url', 'appendSsoToken'], f);
      text(l, 'title', f, { max: 200 });
      url(l, 'url', f);
      boolean(l, 'appendSsoToken', f);
    });
  },
  mapTexts: (body, field, fn) => mapKey(mapKey(body, 'title', field, fn), 'text', field, fn),
  searchExtras: (body) => ((body.links as MessageBody[] | undefined) ?? []).map((l) => String(l.title)),
};

/** A group announcement (公告): stored as the conversation's current announcement too. */
export const announcement: MessageTypeDef = {
  sentBy: 'anyone',
  maxBytes: DEFAULT_MAX_BYTES,
  validate(body, field) {
    onlyKeys(body, ['title', 'text', 'mentionAll'], field);
    text(body, 'title', field, { max: 200 });
    text(body, 'text', field, { max: MAX_TEXT_LENGTH });
    boolean(body, 'mentionAll', field);
  },
  mapTexts: (body, field, fn) => mapKey(mapKey(body, 'title', field, fn), 'text', field, fn),
  mentions: (body) => ({ userIds: [], all: body.mentionAll === true }),
};

/** A poll: a question and two to twenty options. Casting votes is not part of this slice. */
export const vote: MessageTypeDef = {
  sentBy: 'anyone',
  maxBytes: DEFAULT_MAX_BYTES,
  validate(body, field) {
    onlyKeys(body, ['question', 'options', 'multiple', 'anonymous', 'deadline'], field);
    text(body, 'question', field, { max: 200 });
    const options = array(body, 'options', field, { min: 2, max: 20 })!;
    const seen = new Set<string>();
    options.forEach((o, i) => {
      const f = `${field}.options[${i}]`;
      if (typeof o !== 'string' || o.trim() === '') fail(f, `${f} must be a non-empty string`);
      if ([...o].length > 200) fail(f, `${f} is longer than 200 characters`);
      if (seen.has(o.trim())) fail(f, `${f} repeats the option "${o.trim()}"`);
      seen.add(o.trim());
    });
    boolean(body, 'multiple', field);
    boolean(body, 'anonymous', field);
    if (body.deadline !== undefined) {
      const d = body.deadline;
      if (typeof d !== 'string' || Number.isNaN(Date.parse(d))) fail(`${field}.deadline`, `${field}.deadline must be an ISO date-time`);
    }
  },
  mapTexts: (body, field, fn) => ({
    ...mapKey(body, 'question', field, fn),
    options: (body.options as string[]).map((o, i) => fn(o, `${field}.options[${i}]`)),
  }),
};
