import { qiaoError } from '../errors.ts';
import { typeDef, type MessageBody } from './message-types/index.ts';
import type { ImSettings } from './settings.ts';

let cached: { key: string; pattern: RegExp | null } = { key: '', pattern: null };

/** One alternation of every word, longest first so "工资单" is masked whole, not as "工资" + "单". */
function matcher(words: string[]): RegExp | null {
  const key = words.join('\u0000');
  if (cached.key !== key) {
    const sorted = [...words].sort((a, b) => b.length - a.length);
    const escaped = sorted.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    cached = { key, pattern: escaped.length ? new RegExp(escaped.join('|'), 'giu') : null };
  }
  return cached.pattern;
}

/**
 * The admin's sensitive-word rule (敏感信息保护), applied to every human-written text of a message before
 * plugins see it. `mask` replaces each character of a word with `*`; `block` refuses the send and says
 * which word in which field. Words match without regard to case.
 */
export function applySensitiveWords(rule: ImSettings['sensitiveWords'], type: string, body: MessageBody): MessageBody {
  if (!rule.enabled || rule.words.length === 0) return body;
  const pattern = matcher(rule.words);
  const def = typeDef(type);
  if (!pattern || !def) return body;
  return def.mapTexts(body, 'body', (text, field) => {
    pattern.lastIndex = 0;
    if (rule.mode === 'block') {
      const hit = pattern.exec(text);
      if (hit) {
        throw qiaoError('QIAO_MESSAGE_REJECTED', `message not sent: ${field} contains the sensitive word "${hit[0]}"`, {
          field,
          reason: `contains the sensitive word "${hit[0]}"`,
          word: hit[0],
        });
      }
      return text;
    }
    return text.replace(pattern, (w) => '*'.repeat([...w].length));
  });
}
