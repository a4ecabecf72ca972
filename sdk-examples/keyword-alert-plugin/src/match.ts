/** The first of `words` found in `text`, or null. */
export function findWord(text: string, words: readonly string[], caseSensitive: boolean): string | null {
  const haystack = caseSensitive ? text : text.toLowerCase();
  for (const w of words) if (haystack.includes(caseSensitive ? w : w.toLowerCase())) return w;
  return null;
}
