import type { StoredMessage } from '@qiao/plugin-api';
import { newGuid } from '../emulator/index.ts';
import type { Accounts, CoreCall } from './accounts.ts';
import type { OutboundIm } from './link-protocol.ts';
import { MemberLimit, overLimitReason, RTX_MAX_MEMBERS } from './member-limit.ts';
import { bodyToRtxText } from './message-text.ts';
import type { Store } from './store.ts';

/**
 * Qiao → RTX, first half: every message committed in Qiao passes here once, in commit order (the durable
 * `afterMessageStored` hook). Messages in conversations with RTX people become outbox rows, numbered in that
 * order; the link hands them to the agent. Messages that came from RTX are recognised by their client id
 * and never go back (the other half of loop prevention is in the agent).
 */

export { RTX_MAX_MEMBERS } from './member-limit.ts';
export const FROM_RTX_PREFIX = 'rtx:';
/** Within this many people of RTX's limit, membership is read afresh for every message (see write). */
const NEAR_LIMIT = 10;

interface ConversationView {
  id: string;
  type: string;
  name: string | null;
  members: Array<{ userId: number }>;
}

export class OutboxWriter {
  readonly #store: Store;
  readonly #call: CoreCall;
  readonly #accounts: Accounts;
  readonly #limit: MemberLimit;
  #conversations = new Map<string, { at: number; c: ConversationView }>();

  constructor(store: Store, call: CoreCall, accounts: Accounts) {
    this.#store = store;
    this.#call = call;
    this.#accounts = accounts;
    this.#limit = new MemberLimit(store, call);
  }

  forget(conversationId: string): void {
    this.#conversations.delete(conversationId);
  }

  async #conversation(conversationId: string, userId: number, fresh = false): Promise<ConversationView> {
    const hit = this.#conversations.get(conversationId);
    // Membership changes are rare next to messages; a few seconds of staleness costs at most a late join.
    if (hit && !fresh && Date.now() - hit.at < 3000) return hit.c;
    const c = await this.#call<ConversationView>('im.conversations.get', { userId, conversationId });
    this.#conversations.set(conversationId, { at: Date.now(), c });
    if (this.#conversations.size > 5000) this.#conversations.delete(this.#conversations.keys().next().value!);
    return c;
  }

  /** The conversation's RTX window key of `kind`, made (and remembered) on first use. */
  async #key(conversationId: string, relay: boolean, kind: string): Promise<string> {
    const row = await this.#store.one<{ rtx_key: string }>(
      `SELECT rtx_key FROM rtx_bridge_conversations WHERE qiao_conversation_id = ? AND kind ${relay ? '=' : '<>'} 'relay' ORDER BY updated_at DESC LIMIT 1`,
      [conversationId],
    );
    if (row) return row.rtx_key;
    const key = newGuid();
    await this.#store.execute('INSERT INTO rtx_bridge_conversations (rtx_key, qiao_conversation_id, kind, updated_at) VALUES (?, ?, ?, ?)', [
      key,
      conversationId,
      relay ? 'relay' : kind,
      Date.now(),
    ]);
    return key;
  }

  async #rtxReceivers(conv: ConversationView, senderId: number): Promise<string[]> {
    const receivers: string[] = [];
    for (const m of conv.members) {
      if (m.userId === senderId) continue;
      const r = await this.#accounts.rtxOf(m.userId);
      if (r.uid) receivers.push(r.uid);
    }
    return receivers;
  }

  /** Returns the new outbox row's state, or null when the message is not for RTX. */
  async write(message: StoredMessage & { recalled?: unknown }): Promise<'pending' | 'skipped' | null> {
    if (message.clientMsgId.startsWith(FROM_RTX_PREFIX) || message.recalled) return null;
    let conv = await this.#conversation(message.conversationId, message.senderId);
    let receivers = await this.#rtxReceivers(conv, message.senderId);
    // Near RTX's limit a stale member list could relay into a session RTX refuses, or keep back a message
    // RTX would take; those few conversations pay a fresh read per message.
    if (Math.abs(receivers.length + 1 - RTX_MAX_MEMBERS) <= NEAR_LIMIT) {
      conv = await this.#conversation(message.conversationId, message.senderId, true);
      receivers = await this.#rtxReceivers(conv, message.senderId);
    }
    if (!receivers.length) return null;
    const sender = await this.#accounts.rtxOf(message.senderId);
    const kind = conv.type === 'single' ? 'single' : conv.type === 'group' ? 'group' : 'multi';
    const item: OutboundIm = {
      kind: 'im',
      qiaoMessageId: message.id,
      conversationId: message.conversationId,
      sender: sender.uid,
      senderName: sender.name,
      receivers,
      key: await this.#key(message.conversationId, false, kind),
      relayKey: await this.#key(message.conversationId, true, kind),
      text: bodyToRtxText(message.type, message.body),
    };
    // The sender, or the relay account sending for a Qiao-only person, is in the RTX session too.
    const people = receivers.length + 1;
    const skipped = !(await this.#limit.allows(conv, people));
    await this.#store.execute(
      `INSERT INTO rtx_bridge_outbox (qiao_message_id, conversation_id, item, status, error, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (qiao_message_id) DO NOTHING`,
      [
        message.id,
        message.conversationId,
        JSON.stringify(item),
        skipped ? 'skipped' : 'pending',
        skipped ? overLimitReason(people) : null,
        Date.now(),
      ],
    );
    if (skipped) this.#store.count('toRtx.skipped');
    return skipped ? 'skipped' : 'pending';
  }
}
