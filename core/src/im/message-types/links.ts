import { array, boolean, DEFAULT_MAX_BYTES, fail, fileId, isObject, mapKey, onlyKeys, text, url, type MessageBody, type MessageTypeDef } from './common.ts';

const MAX_ARTICLES = 8;

/**
 * A link card. `appendSsoToken` asks the client to add the viewer's identity token when opening the URL
 * (Youdu's implicit-link ACTION 1), so a business system can sign the person in.
 */
export const link: MessageTypeDef = {
  sentBy: 'anyone',
  maxBytes: DEFAULT_MAX_BYTES,
  validate(body, field) {
    onlyKeys(body, ['title', 'url', 'description', 'coverFileId', 'appendSsoToken'], field);
    text(body, 'title', field, { max: 200 });
    url(body, 'url', field);
    text(body, 'description', field, { max: 500, optional: true, allowBlank: true });
    fileId(body, 'coverFileId', field, true);
    boolean(body, 'appendSsoToken', field);
  },
  mapTexts: (body, field, fn) => mapKey(mapKey(body, 'title', field, fn), 'description', field, fn),
  searchExtras: (body) => [String(body.url)],
  files: (body, field) => (body.coverFileId ? [{ field: `${field}.coverFileId`, fileId: String(body.coverFileId), kinds: ['image'] }] : []),
};

/** News card (图文): one to eight articles, each a title with an optional summary, cover and link. */
export const card: MessageTypeDef = {
  sentBy: 'anyone',
  maxBytes: DEFAULT_MAX_BYTES,
  validate(body, field) {
    onlyKeys(body, ['articles'], field);
    const articles = array(body, 'articles', field, { min: 1, max: MAX_ARTICLES })!;
    articles.forEach((a, i) => {
      const f = `${field}.articles[${i}]`;
      if (!isObject(a)) fail(f, `${f} must be an object`);
      onlyKeys(a, ['title', 'description', 'url', 'coverFileId', 'appendSsoToken'], f);
      text(a, 'title', f, { max: 200 });
      text(a, 'description', f, { max: 500, optional: true, allowBlank: true });
      url(a, 'url', f, true);
      fileId(a, 'coverFileId', f, true);
      boolean(a, 'appendSsoToken', f);
    });
  },
  mapTexts: (body, field, fn) => ({
    articles: (body.articles as MessageBody[]).map((a, i) => mapKey(mapKey(a, 'title', `${field}.articles[${i}]`, fn), 'description', `${field}.articles[${i}]`, fn)),
  }),
  searchExtras: (body) => (body.articles as MessageBody[]).flatMap((a) => (a.url ? [String(a.url)] : [])),
  files: (body, field) =>
    (body.articles as MessageBody[]).flatMap((a, i) => (a.coverFileId ? [{ field: `${field}.articles[${i}].coverFileId`, fileId: String(a.coverFileId), kinds: ['image'] }] : [])),
};
