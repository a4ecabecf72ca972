import { qiaoError } from '../../errors.ts';
import { isObject, type MessageBody, type MessageTypeDef } from './common.ts';
import { forwardType } from './forward.ts';
import { card, link } from './links.ts';
import { file, image, voice } from './media.ts';
import { announcement, system, vote } from './notices.ts';
import { rich, text_ } from './text.ts';

export type { MessageBody, MessageTypeDef } from './common.ts';
export { MAX_TEXT_LENGTH } from './text.ts';

const REGISTRY: Record<string, MessageTypeDef> = {
  text: text_,
  rich,
  image,
  file,
  voice,
  link,
  card,
  system,
  announcement,
  vote,
};
REGISTRY.forward = forwardType((type) => REGISTRY[type]);

export const MESSAGE_TYPES = ['text', 'rich', 'image', 'file', 'voice', 'link', 'card', 'system', 'announcement', 'vote', 'forward'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export function typeDef(type: string): MessageTypeDef | undefined {
  return Object.hasOwn(REGISTRY, type) ? REGISTRY[type] : undefined;
}

/** Checks a body against its type's rules; throws naming the field (`body.text`, `type`, `body`). */
export function validateBody(type: string, body: unknown, field = 'body'): asserts body is MessageBody {
  const def = typeDef(type);
  if (!def) throw qiaoError('QIAO_VALIDATION', `message type "${type}" is not supported`, { field: 'type' });
  if (!isObject(body)) throw qiaoError('QIAO_VALIDATION', `${field} must be an object`, { field });
  const bytes = Buffer.byteLength(JSON.stringify(body));
  if (bytes > def.maxBytes) {
    throw qiaoError('QIAO_PAYLOAD_TOO_LARGE', `${field} is ${bytes} bytes, a ${type} message holds at most ${def.maxBytes}`, { field, limit: def.maxBytes });
  }
  def.validate(body, field);
}

/** The lower-cased text a keyword search looks in. */
export function searchText(type: string, body: MessageBody): string {
  const def = typeDef(type);
  if (!def) return '';
  const parts: string[] = [];
  def.mapTexts(body, 'body', (t) => (parts.push(t), t));
  parts.push(...(def.searchExtras?.(body) ?? []));
  return parts.join('\n').toLowerCase();
}
