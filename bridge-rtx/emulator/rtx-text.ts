/**
 * RTX message text conventions. A link is written `[文字|URL]` (the RTX client shows 文字 as a hyperlink);
 * there is no escape for `|` or `]` inside the text, so such text cannot be linked.
 */

export type RtxTextSegment = { type: 'text'; text: string } | { type: 'link'; text: string; url: string };

const LINK = /\[([^\[\]|]*)\|([^\[\]|]+)\]/g;

/** Splits `见[合同|http://oa/1]附件` into text and link segments. */
export function parseRtxLinks(text: string): RtxTextSegment[] {
  const out: RtxTextSegment[] = [];
  let last = 0;
  for (const m of text.matchAll(LINK)) {
    if (m.index > last) out.push({ type: 'text', text: text.slice(last, m.index) });
    out.push({ type: 'link', text: m[1]!, url: m[2]! });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ type: 'text', text: text.slice(last) });
  return out;
}

/** `[文字|URL]`, or null when the text or URL contains a character RTX's link syntax cannot carry. */
export function formatRtxLink(text: string, url: string): string | null {
  if (/[\[\]|]/.test(text) || /[\[\]|\s]/.test(url) || url === '') return null;
  return `[${text}|${url}]`;
}
