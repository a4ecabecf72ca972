import { feedForm } from './gbk-text.ts';

/**
 * Loop prevention. RTX's application filter copies every IM, including the ones the agent itself injected
 * through SendIM.cgi, and the copy carries a fresh im_message_id, so it cannot be recognised by id. The agent
 * therefore registers what it is about to send (sender, conversation key, text as RTX will store it) *before*
 * sending, and the first feed item that matches is its own echo: dropped, counted, never relayed back.
 *
 * Each registration matches one echo, so a real RTX user who types the very same words into the same window
 * is still relayed. Registrations are rebuilt after a restart from the agent's outbound journal, so an echo
 * that arrives after a crash is still caught; entries older than `ttlMs` are forgotten.
 */
interface Expectation {
  at: number;
  /** The outbound journal entry this send came from. */
  token: number;
}

export class EchoFilter {
  #expected = new Map<string, Expectation[]>();
  readonly #ttlMs: number;

  constructor(ttlMs = 24 * 3600_000) {
    this.#ttlMs = ttlMs;
  }

  static key(sender: string, key: string, text: string): string {
    return `${sender.toLowerCase()}\u0000${key.toUpperCase()}\u0000${feedForm(text)}`;
  }

  expect(sender: string, key: string, text: string, token: number, at = Date.now()): void {
    const k = EchoFilter.key(sender, key, text);
    const list = this.#expected.get(k) ?? [];
    list.push({ at, token });
    this.#expected.set(k, list);
  }

  /** The token of the send this feed item echoes (its registration used up), or null for a real message. */
  consume(sender: string, key: string, text: string, now = Date.now()): number | null {
    const k = EchoFilter.key(sender, key, text);
    const list = this.#expected.get(k);
    if (!list) return null;
    while (list.length && now - list[0]!.at > this.#ttlMs) list.shift();
    const hit = list.shift() ?? null;
    if (!list.length) this.#expected.delete(k);
    return hit ? hit.token : null;
  }

  /** A send that RTX refused produces no echo: take its registration back. */
  withdraw(sender: string, key: string, text: string): void {
    const k = EchoFilter.key(sender, key, text);
    const list = this.#expected.get(k);
    list?.pop();
    if (list && !list.length) this.#expected.delete(k);
  }

  get size(): number {
    let n = 0;
    for (const l of this.#expected.values()) n += l.length;
    return n;
  }
}
