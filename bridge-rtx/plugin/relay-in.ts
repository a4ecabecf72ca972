import { createHash } from 'node:crypto';
import { isTransient, type Accounts, type CoreCall, type CoreError } from './accounts.ts';
import type { InboundIm, InboundItem, InboundNotify } from './link-protocol.ts';
import { notifyToSystemBody, rtxTextToBodies } from './message-text.ts';
import { FROM_RTX_PREFIX } from './relay-out.ts';
import type { Store } from './store.ts';

/**
 * RTX → Qiao: each journal entry the agent sends is handled once, in order. An IM lands in the Qiao
 * conversation mirroring its RTX window (made on first sight: a 1:1 chat, a discussion, or a group for an
 * RTX 群), sent as the RTX person with a client id derived from `im_message_id`, so a repeat can never be
 * stored twice. A notification becomes a Qiao broadcast to the people (or department, or everyone) it was
 * for. What cannot be placed (a sender unknown to Qiao, say) is kept as a failure with the whole item, shown
 * to the admin and retried after the next org sync — never dropped silently.
 */

/**
 * Who Qiao users see as the sender of what OA systems pushed through RTX's notification pages. Those pages
 * carry no sender (only receivers, title, text, pop-up time; the title is the notice's title), so it is
 * the bridge speaking for RTX.
 */
export const NOTIFY_SENDER = 'RTX 通知';

export type InboundOutcome = 'stored' | 'duplicate' | 'failed' | 'ignored';

interface GroupView {
  id: string;
  type: string;
  members: Array<{ userId: number; role?: string }>;
}

export { isTransient } from './accounts.ts';

export function clientMsgId(imMessageId: string, part: number): string {
  const base = imMessageId.length <= 50 ? imMessageId : createHash('sha256').update(imMessageId).digest('hex').slice(0, 50);
  return `${FROM_RTX_PREFIX}${base}${part ? `:${part}` : ''}`;
}

export class InboundRelay {
  readonly #store: Store;
  readonly #call: CoreCall;
  readonly #accounts: Accounts;
  #members = new Map<string, { at: number; ids: Set<number>; anyone: number | null }>();
  #deptPaths: { at: number; byPath: Map<string, number> } | null = null;
  /** Stored IMs not yet written to rtx_bridge_inbound: written in batches, because each write is a commit. */
  #stored: Array<[string, number]> = [];
  #recent = new Set<string>();
  #latestKey = new Map<string, string>();

  constructor(store: Store, call: CoreCall, accounts: Accounts) {
    this.#store = store;
    this.#call = call;
    this.#accounts = accounts;
  }

  forgetDepartments(): void {
    this.#deptPaths = null;
  }

  static idOf(item: InboundItem): string {
    return item.kind === 'im' ? `im:${item.imMessageId}` : `notify:${item.id}`;
  }

  /** Handles one item; throws only for transient trouble (the caller retries the same item). */
  async handle(item: InboundItem, retryingFailure = false): Promise<InboundOutcome> {
    const id = InboundRelay.idOf(item);
    const seen = this.#recent.has(id) ? { status: 'stored' } : await this.#store.one<{ status: string }>('SELECT status FROM rtx_bridge_inbound WHERE id = ?', [id]);
    if (seen && !(retryingFailure && seen.status === 'failed')) {
      this.#store.count('toQiao.duplicates');
      return 'duplicate';
    }
    try {
      const result: { outcome: InboundOutcome; messageId?: number; reason?: string } = item.kind === 'im' ? await this.#im(item) : await this.#notify(item);
      if (item.kind === 'im' && result.outcome === 'stored' && !retryingFailure) {
        // im.send is idempotent by the client id derived from im_message_id, so a row written a moment
        // later (or lost in a crash) can never let a repeat be stored twice; it only feeds the duplicate count.
        this.#stored.push([id, result.messageId!]);
        this.#recent.add(id);
        if (this.#recent.size > 20_000) this.#recent.delete(this.#recent.values().next().value!);
        return 'stored';
      }
      await this.#record(id, result.outcome, result.messageId ?? null, result.reason ?? null, result.outcome === 'ignored' ? item : null);
      if (result.outcome === 'ignored') this.#store.count('toQiao.ignored');
      return result.outcome;
    } catch (err) {
      if (isTransient(err)) throw err;
      await this.fail(item, (err as Error).message);
      return 'failed';
    }
  }

  /** Writes the rows of stored IMs (the Bridge calls it every few hundred ms and at stop). */
  async flush(): Promise<void> {
    while (this.#stored.length) {
      const batch = this.#stored.slice(0, 300);
      const now = Date.now();
      await this.#store.execute(
        `INSERT INTO rtx_bridge_inbound (id, status, qiao_message_id, received_at, updated_at) VALUES ${batch.map(() => "(?, 'stored', ?, ?, ?)").join(', ')}
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, qiao_message_id = excluded.qiao_message_id, error = NULL, item = NULL, updated_at = excluded.updated_at`,
        batch.flatMap(([id, m]) => [id, m, now, now]),
      );
      this.#stored.splice(0, batch.length);
    }
  }

  /** Records an item that cannot be placed, with everything needed to try again later. */
  async fail(item: InboundItem, reason: string): Promise<void> {
    await this.#record(InboundRelay.idOf(item), 'failed', null, reason, item);
    this.#store.count('toQiao.failed');
  }

  async #record(id: string, status: string, messageId: number | null, error: string | null, item: InboundItem | null): Promise<void> {
    const now = Date.now();
    await this.#store.execute(
      `INSERT INTO rtx_bridge_inbound (id, status, qiao_message_id, error, item, received_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, qiao_message_id = excluded.qiao_message_id, error = excluded.error, item = excluded.item, updated_at = excluded.updated_at`,
      [id, status, messageId, error, item ? JSON.stringify(item) : null, now, now],
    );
  }

  // ---- IMs --------------------------------------------------------------------------------------------------
  async #im(item: InboundIm): Promise<{ outcome: InboundOutcome; messageId?: number; reason?: string }> {
    const senderId = await this.#accounts.qiaoId(item.sender);
    if (senderId === null) {
      const e = new Error(`the RTX account "${item.sender}" has no Qiao account yet (it appears after the next org sync)`) as CoreError;
      e.code = 404;
      throw e;
    }
    const receiverIds: number[] = [];
    for (const r of item.receivers) {
      const id = await this.#accounts.qiaoId(r);
      if (id !== null && id !== senderId && !receiverIds.includes(id)) receiverIds.push(id);
    }
    const conversationId = await this.#conversationFor(item, senderId, receiverIds);
    if (!conversationId) return { outcome: 'ignored', reason: 'nobody in Qiao is in this RTX conversation' };
    let last = 0;
    const bodies = rtxTextToBodies(item.text);
    for (const [i, b] of bodies.entries()) {
      const stored = await this.#call<{ id: number }>('im.send', { conversationId, senderId, clientMsgId: clientMsgId(item.imMessageId, i), type: b.type, body: b.body });
      last = Number(stored.id);
    }
    this.#store.count('toQiao.messages');
    return { outcome: 'stored', messageId: last };
  }

  async #conversationFor(item: InboundIm, senderId: number, receiverIds: number[]): Promise<string | null> {
    const key = item.key.toUpperCase();
    let row = await this.#store.one<{ qiao_conversation_id: string; kind: string }>('SELECT qiao_conversation_id, kind FROM rtx_bridge_conversations WHERE rtx_key = ?', [key]);
    if (!row && item.disGroupId !== undefined) {
      row = await this.#store.one('SELECT qiao_conversation_id, kind FROM rtx_bridge_conversations WHERE dis_group_id = ? ORDER BY updated_at DESC LIMIT 1', [item.disGroupId]);
      if (row) await this.#map(key, row.qiao_conversation_id, 'group', item);
    }
    if (row) {
      if (row.kind !== 'single' && row.kind !== 'relay') await this.#ensureMembers(row.qiao_conversation_id, row.kind, [senderId, ...receiverIds]);
      // The newest window of a 1:1 pair is the one Qiao replies go to (written only when the window changes).
      if (row.kind !== 'relay' && this.#latestKey.get(row.qiao_conversation_id) !== key) {
        await this.#store.execute('UPDATE rtx_bridge_conversations SET updated_at = ? WHERE rtx_key = ?', [Date.now(), key]);
        this.#latestKey.set(row.qiao_conversation_id, key);
      }
      return row.qiao_conversation_id;
    }
    if (receiverIds.length === 0) return null;
    let conversationId: string;
    let kind: 'single' | 'multi' | 'group';
    if (item.disGroupId !== undefined) {
      const g = await this.#call<{ id: string }>('im.groups.create', { name: (item.title || `RTX 群 ${item.disGroupId}`).slice(0, 200), members: [senderId, ...receiverIds] });
      conversationId = g.id;
      kind = 'group';
    } else if (item.mode === 0 && receiverIds.length === 1) {
      const c = await this.#call<{ id: string }>('im.conversations.create', { type: 'single', members: [senderId, receiverIds[0]], createdBy: senderId });
      conversationId = c.id;
      kind = 'single';
    } else {
      const c = await this.#call<{ id: string }>('im.conversations.create', {
        type: 'discussion',
        members: [senderId, ...receiverIds],
        createdBy: senderId,
        ...(item.title ? { name: item.title.slice(0, 200) } : {}),
      });
      conversationId = c.id;
      kind = 'multi';
    }
    await this.#map(key, conversationId, kind, item);
    return conversationId;
  }

  async #map(key: string, conversationId: string, kind: string, item: InboundIm): Promise<void> {
    await this.#store.execute(
      `INSERT INTO rtx_bridge_conversations (rtx_key, qiao_conversation_id, kind, dis_group_id, title, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (rtx_key) DO UPDATE SET qiao_conversation_id = excluded.qiao_conversation_id, updated_at = excluded.updated_at`,
      [key, conversationId, kind, item.disGroupId ?? null, item.title?.slice(0, 200) ?? null, Date.now()],
    );
  }

  /** People who write in (or are addressed in) an RTX session join its Qiao mirror, as RTX added them there. */
  async #ensureMembers(conversationId: string, kind: string, userIds: number[]): Promise<void> {
    let m = this.#members.get(conversationId);
    if (!m || Date.now() - m.at > 10_000) {
      const g = await this.#call<GroupView>('im.groups.get', { id: conversationId });
      const owner = g.members.find((x) => x.role === 'owner') ?? g.members[0];
      m = { at: Date.now(), ids: new Set(g.members.map((x) => Number(x.userId))), anyone: owner ? Number(owner.userId) : null };
      this.#members.set(conversationId, m);
    }
    const missing = userIds.filter((u) => !m!.ids.has(u));
    if (!missing.length) return;
    if (kind === 'group') await this.#call('im.groups.addMembers', { id: conversationId, userIds: missing });
    else if (m.anyone !== null) await this.#call('im.conversations.invite', { userId: m.anyone, conversationId, userIds: missing });
    missing.forEach((u) => m!.ids.add(u));
  }

  // ---- notifications and broadcasts ------------------------------------------------------------------------
  async #notify(item: InboundNotify): Promise<{ outcome: InboundOutcome; reason?: string }> {
    let audience: Record<string, unknown>;
    if (item.all) audience = { all: true };
    else if (item.department !== undefined) audience = { departmentIds: [await this.#department(item.department)], includeSubDepartments: true };
    else if (item.group !== undefined) audience = { userIds: await this.#groupMembers(item.group) };
    else {
      const ids: number[] = [];
      for (const r of item.receivers) {
        const id = await this.#accounts.qiaoId(r);
        if (id !== null && !ids.includes(id)) ids.push(id);
      }
      if (!ids.length) return { outcome: 'ignored', reason: `none of ${item.receivers.join(', ')} is in Qiao` };
      audience = { userIds: ids };
    }
    const popup = item.delayMs > 0 ? Math.min(3600, Math.max(6, Math.round(item.delayMs / 1000))) : null;
    await this.#call('im.broadcasts.send', {
      audience,
      senderName: NOTIFY_SENDER,
      onlineOnly: item.onlineOnly,
      type: 'system',
      title: item.title.slice(0, 200),
      body: notifyToSystemBody(item.title, item.msg),
      popupSeconds: popup,
    });
    this.#store.count('toQiao.notifications');
    if (item.all || item.department !== undefined) this.#store.count('toQiao.broadcasts');
    return { outcome: 'stored' };
  }

  /** A Qiao department id for an RTX department path (`公司\技术部`) or a bare name only one department has. */
  async #department(pathOrName: string): Promise<number> {
    if (!this.#deptPaths || Date.now() - this.#deptPaths.at > 60_000) {
      const { departments } = await this.#call<{ departments: Array<{ id: number; parentId: number | null; name: string }> }>('org.departments.list', {});
      const byId = new Map(departments.map((d) => [Number(d.id), d]));
      const byPath = new Map<string, number>();
      for (const d of departments) {
        const parts: string[] = [];
        for (let cur: typeof d | undefined = d; cur; cur = cur.parentId === null ? undefined : byId.get(Number(cur.parentId))) parts.unshift(cur.name);
        byPath.set(parts.join('\\'), Number(d.id));
      }
      this.#deptPaths = { at: Date.now(), byPath };
    }
    const wanted = pathOrName.split('\\').map((s) => s.trim()).filter(Boolean);
    const exact = this.#deptPaths.byPath.get(wanted.join('\\'));
    if (exact !== undefined) return exact;
    if (wanted.length === 1) {
      const named = [...this.#deptPaths.byPath.entries()].filter(([p]) => p.split('\\').pop() === wanted[0]);
      if (named.length === 1) return named[0]![1];
    }
    const e = new Error(`RTX department "${pathOrName}" is not in Qiao's directory (run an org sync)`) as CoreError;
    e.code = 404;
    throw e;
  }

  async #groupMembers(name: string): Promise<number[]> {
    const row = await this.#store.one<{ qiao_conversation_id: string }>("SELECT qiao_conversation_id FROM rtx_bridge_conversations WHERE kind = 'group' AND title = ? ORDER BY updated_at DESC LIMIT 1", [name]);
    if (!row) {
      const e = new Error(`RTX 群 "${name}" has not been seen by the bridge yet, so its members are not known in Qiao (RTX offers no way to list them)`) as CoreError;
      e.code = 404;
      throw e;
    }
    const g = await this.#call<GroupView>('im.groups.get', { id: row.qiao_conversation_id });
    return g.members.map((m) => Number(m.userId));
  }
}
