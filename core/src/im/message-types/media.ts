import { DEFAULT_MAX_BYTES, fileId, fileMeta, integer, onlyKeys, type MessageTypeDef } from './common.ts';

const META = ['name', 'size', 'mime', 'sha256'];

function media(kinds: readonly string[], extra: Record<string, { min: number; max: number; optional?: boolean }>): MessageTypeDef {
  return {
    sentBy: 'anyone',
    maxBytes: DEFAULT_MAX_BYTES,
    validate(body, field) {
      onlyKeys(body, ['fileId', ...META, ...Object.keys(extra)], field);
      fileId(body, 'fileId', field);
      fileMeta(body, field);
      for (const [key, range] of Object.entries(extra)) integer(body, key, field, range);
    },
    // A file's name is the uploader's, not message text: it is searchable, not filtered.
    mapTexts: (body) => body,
    searchExtras: (body) => (typeof body.name === 'string' ? [body.name] : []),
    files: (body, field) => [{ field: `${field}.fileId`, fileId: String(body.fileId), kinds }],
  };
}

/** A picture uploaded through im.files (kind image). */
export const image = media(['image'], { width: { min: 1, max: 100_000, optional: true }, height: { min: 1, max: 100_000, optional: true } });
/** Any uploaded file, a picture or a recording included. */
export const file = media(['file', 'image', 'voice'], {});
/** A voice clip (kind voice) and how long it plays. */
export const voice = media(['voice'], { durationSeconds: { min: 1, max: 3600 } });
