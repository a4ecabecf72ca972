import { array, fail, isObject, mapKey, onlyKeys, text, type MessageBody, type MessageTypeDef } from './common.ts';

export const MAX_FORWARDED = 100;

export interface ForwardedItem {
  id: number;
  conversationId: string;
  senderId: number;
  type: string;
  body: MessageBody;
  createdAt: string;
}

/**
 * Merged forward (合并转发). The client names the messages (`messageIds`, which it must be able to read);
 * the server copies them into `items`, so a forward can neither invent messages nor leak unreadable ones.
 * `lookup` is the type registry, to check and search the copied bodies by their own types.
 */
export function forwardType(lookup: (type: string) => MessageTypeDef | undefined): MessageTypeDef {
  return {
    sentBy: 'anyone',
    maxBytes: 2 * 1024 * 1024,
    validate(body, field) {
      onlyKeys(body, ['title', 'messageIds', 'items'], field);
      text(body, 'title', field, { max: 200, optional: true });
      const ids = array(body, 'messageIds', field, { min: 1, max: MAX_FORWARDED })!;
      const seen = new Set<number>();
      ids.forEach((id, i) => {
        if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0) fail(`${field}.messageIds[${i}]`, `${field}.messageIds[${i}] must be a message id`);
        if (seen.has(id)) fail(`${field}.messageIds[${i}]`, `${field}.messageIds[${i}] repeats message ${id}`);
        seen.add(id);
      });
      const items = array(body, 'items', field, { min: 0, max: MAX_FORWARDED, optional: true });
      items?.forEach((item, i) => {
        const f = `${field}.items[${i}]`;
        if (!isObject(item)) fail(f, `${f} must be an object`);
        onlyKeys(item, ['id', 'conversationId', 'senderId', 'type', 'body', 'createdAt'], f);
        const def = typeof item.type === 'string' ? lookup(item.type) : undefined;
        if (!def) fail(`${f}.type`, `${f}.type is not a message type`);
        if (!isObject(item.body)) fail(`${f}.body`, `${f}.body must be an object`);
      });
    },
    // Forwarded bodies were filtered when first sent; only the forwarder's own title is new text.
    mapTexts: (body, field, fn) => mapKey(body, 'title', field, fn),
    searchExtras(body) {
      const out: string[] = [];
      for (const item of (body.items as ForwardedItem[] | undefined) ?? []) {
        const def = lookup(item.type);
        if (!def) continue;
        def.mapTexts(item.body, 'body', (t) => (out.push(t), t));
        out.push(...(def.searchExtras?.(item.body) ?? []));
      }
      return out;
    },
  };
}
