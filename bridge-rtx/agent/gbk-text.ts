import { fitsGbk } from '../emulator/index.ts';

/**
 * RTX's HTTP SDK carries GBK only. A character GBK has no code for (𠮷, emoji, many rare hanzi) would reach
 * the RTX user as `?` with no hint that anything is missing; the agent makes the loss visible instead: each
 * such character becomes `?` (what RTX would show anyway) and a note says the original is in Qiao.
 */
export const LOSSY_NOTE = '\n[Qiao: 原消息含 RTX 无法显示的字符，已显示为"?"，请在 Qiao 中查看原文]';

export function toGbkSafe(text: string): { text: string; lossy: boolean } {
  if (fitsGbk(text)) return { text, lossy: false };
  let out = '';
  for (const ch of text) out += fitsGbk(ch) ? ch : '?';
  return { text: out + LOSSY_NOTE, lossy: true };
}

// XML 1.0 cannot carry most C0 controls; the feed drops them, so echoes are compared without them.
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

/** The text as the application filter will report it after RTX stored it (line breaks and controls normalised). */
export function feedForm(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(XML_INVALID, '');
}
