import { isTransient, type CoreCall } from './accounts.ts';
import type { Store } from './store.ts';

/** RTX's own limit for a discussion (multi-person session); RTX 群 are capped the same (Youdu guide §6.1). */
export const RTX_MAX_MEMBERS = 80;
/** Who Qiao users see as the sender of the bridge's own notices. */
export const BRIDGE_SENDER = 'RTX 桥接';

export interface LimitedConversation {
  id: string;
  name?: string | null;
  members: Array<{ userId: number }>;
}

export function overLimitReason(people: number): string {
  return `not relayed: RTX conversations hold at most ${RTX_MAX_MEMBERS} people (an RTX limit) and this one has ${people} RTX people`;
}

/**
 * A Qiao conversation can grow past what an RTX session holds; its messages then stay in Qiao. The admin
 * sees each one in relay.failures, and the people in the conversation are told — once when relaying stops,
 * once when it resumes (the conversation shrank again) — with a system notice from the bridge, so nobody
 * believes their RTX colleagues are reading along when they are not.
 */
export class MemberLimit {
  readonly #store: Store;
  readonly #call: CoreCall;
  /** Conversations over the limit whose members were told; read once, then kept here (messages are many). */
  #over: Set<string> | null = null;

  constructor(store: Store, call: CoreCall) {
    this.#store = store;
    this.#call = call;
  }

  /** Whether a message in `conv`, where `people` RTX people would take part, may go to RTX. */
  async allows(conv: LimitedConversation, people: number): Promise<boolean> {
    if (!this.#over) this.#over = new Set((await this.#store.query<{ conversation_id: string }>('SELECT conversation_id FROM rtx_bridge_over_limit')).map((r) => r.conversation_id));
    const over = people > RTX_MAX_MEMBERS;
    if (over === this.#over.has(conv.id)) return !over;
    const where = conv.name ? `「${conv.name}」` : '这个会话';
    // Told first, remembered after: a crash in between repeats the notice rather than losing it.
    await this.#tell(conv, people, over, where);
    if (over) {
      await this.#store.execute('INSERT INTO rtx_bridge_over_limit (conversation_id, people, since) VALUES (?, ?, ?) ON CONFLICT (conversation_id) DO NOTHING', [conv.id, people, Date.now()]);
      this.#over.add(conv.id);
    } else {
      await this.#store.execute('DELETE FROM rtx_bridge_over_limit WHERE conversation_id = ?', [conv.id]);
      this.#over.delete(conv.id);
    }
    return !over;
  }

  async #tell(conv: LimitedConversation, people: number, over: boolean, where: string): Promise<void> {
    try {
      await this.#call('im.broadcasts.send', {
        audience: { userIds: [...new Set(conv.members.map((m) => Number(m.userId)))] },
        type: 'system',
        senderName: BRIDGE_SENDER,
        title: over ? '消息不再转发到 RTX' : '消息恢复转发到 RTX',
        body: over
          ? {
              title: '消息不再转发到 RTX',
              text: `${where}现有 ${people} 位 RTX 用户，超过了 RTX 会话 ${RTX_MAX_MEMBERS} 人的上限（RTX 的限制），此后这里的消息不会转发给 RTX 用户，他们需在 Qiao 中查看。人数降到 ${RTX_MAX_MEMBERS} 人以内后自动恢复转发。`,
            }
          : { title: '消息恢复转发到 RTX', text: `${where}的 RTX 用户已降到 ${people} 位（RTX 上限 ${RTX_MAX_MEMBERS} 人），此后这里的消息重新转发给 RTX 用户。` },
        popupSeconds: 10,
      });
    } catch (err) {
      // Retried with the message; a notice the core refuses for good must not stop the relaying itself.
      if (isTransient(err)) throw err;
    }
  }
}
