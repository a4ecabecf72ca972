/**
 * What the admin operation log keeps of a request's parameters: everything an auditor needs to see what
 * was done, nothing that would turn the log into a store of credentials, and never so much that one call
 * (an avatar, an import file) bloats it.
 */

/** Parameter names whose values are credentials, wherever they appear in the object tree. */
export const SECRET_KEY = /pass(word|wd)?|pwd|secret|token|aes_?key|private_?key|api_?key|sms_?code|credential|authorization|cookie/i;
export const REDACTED = '[redacted]';

const MAX_STRING = 500;
const MAX_ITEMS = 50;
const MAX_DEPTH = 6;

export function redact(value: unknown, depth = 0): unknown {
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean') return value ?? null;
  if (typeof value === 'string') {
    const chars = [...value];
    return chars.length > MAX_STRING ? `${chars.slice(0, 100).join('')}… [${chars.length} characters]` : value;
  }
  if (typeof value === 'bigint') return value.toString();
  if (depth >= MAX_DEPTH) return '[…]';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => redact(v, depth + 1));
    if (value.length > MAX_ITEMS) items.push(`[… ${value.length - MAX_ITEMS} more]`);
    return items;
  }
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined && v !== '' ? REDACTED : redact(v, depth + 1);
    }
    return out;
  }
  return String(value);
}
