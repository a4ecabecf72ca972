import type { Store } from './store.ts';

/** How the plugin reaches the core: a broker call, with meta when it must say who it is (the org sync). */
export type CoreCall = <T = unknown>(action: string, params?: Record<string, unknown>, meta?: Record<string, unknown>) => Promise<T>;

export interface CoreError extends Error {
  type?: string;
  code?: number;
  data?: { field?: string; problems?: Array<{ line?: number; message: string; where: string }> };
}

/** Errors worth retrying: the core or the link was briefly away. Anything else is about the item itself. */
export function isTransient(err: unknown): boolean {
  const e = err as CoreError | undefined;
  if (!e || typeof e !== 'object') return true;
  if (e.type === 'SERVICE_NOT_FOUND' || e.type === 'QIAO_PLUGIN_PERMISSION_DENIED') return false;
  if (typeof e.code !== 'number') return true;
  return e.code >= 500 || e.code === 429 || e.type === 'SERVICE_NOT_AVAILABLE' || e.type === 'REQUEST_TIMEOUT';
}

export function isNotFound(err: unknown): boolean {
  const e = err as CoreError;
  return e?.type === 'QIAO_NOT_FOUND' || e?.code === 404;
}

/**
 * Who is who on both sides. An RTX account maps to the Qiao account of the same name (the org sync creates
 * them so) unless an admin mapped it to another one. Qiao user ids are looked up when first needed and
 * remembered; people in Qiao with no RTX account are "Qiao-only" and reach RTX through the relay account.
 */
export class Accounts {
  readonly #store: Store;
  readonly #call: CoreCall;
  #toQiao = new Map<string, number | null>();
  #toRtx = new Map<number, { uid: string | null; name: string }>();
  /** The agent's relay account: an RTX account that stands for the bridge, never mapped to a person. */
  relayAccount: string | null = null;

  isRelay(uid: string): boolean {
    return this.relayAccount !== null && uid.toLowerCase() === this.relayAccount.toLowerCase();
  }

  constructor(store: Store, call: CoreCall) {
    this.#store = store;
    this.#call = call;
  }

  /** Forget cached lookups (after a sync or a manual mapping). */
  reset(): void {
    this.#toQiao.clear();
    this.#toRtx.clear();
  }

  /** The Qiao user id of an RTX account, or null when there is no such person in Qiao (yet). */
  async qiaoId(uid: string): Promise<number | null> {
    if (this.isRelay(uid)) return null;
    const key = uid.toLowerCase();
    if (this.#toQiao.has(key)) return this.#toQiao.get(key)!;
    const row = await this.#store.one<{ qiao_account: string; qiao_user_id: number | null; removed: number }>(
      'SELECT qiao_account, qiao_user_id, removed FROM rtx_bridge_users WHERE uid_key = ?',
      [key],
    );
    let id: number | null = row?.qiao_user_id === null || row?.qiao_user_id === undefined ? null : Number(row.qiao_user_id);
    if (id === null) {
      const account = row?.qiao_account ?? uid;
      try {
        const user = await this.#call<{ id: number }>('org.users.byAccount', { account });
        id = Number(user.id);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (id !== null) {
        const now = Date.now();
        await this.#store.execute(
          `INSERT INTO rtx_bridge_users (uid_key, uid, qiao_account, qiao_account_key, qiao_user_id, origin, removed, updated_at) VALUES (?, ?, ?, ?, ?, 'lazy', 0, ?)
           ON CONFLICT (uid_key) DO UPDATE SET qiao_user_id = excluded.qiao_user_id, updated_at = excluded.updated_at`,
          [key, uid, account, account.toLowerCase(), id, now],
        );
      }
    }
    this.#toQiao.set(key, id);
    return id;
  }

  /** The RTX account of a Qiao user (null for Qiao-only people) and their display name. */
  async rtxOf(userId: number): Promise<{ uid: string | null; name: string }> {
    const cached = this.#toRtx.get(userId);
    if (cached) return cached;
    const user = await this.#call<{ id: number; account: string; name: string }>('org.users.get', { id: userId });
    let row = await this.#store.one<{ uid: string; removed: number }>('SELECT uid, removed FROM rtx_bridge_users WHERE qiao_user_id = ?', [userId]);
    if (!row) {
      row = await this.#store.one<{ uid: string; removed: number }>('SELECT uid, removed FROM rtx_bridge_users WHERE qiao_account_key = ?', [user.account.toLowerCase()]);
      if (row) await this.#store.execute('UPDATE rtx_bridge_users SET qiao_user_id = ? WHERE uid = ?', [userId, row.uid]);
    }
    const out = { uid: row && !Number(row.removed) && !this.isRelay(row.uid) ? row.uid : null, name: user.name || user.account };
    this.#toRtx.set(userId, out);
    return out;
  }
}
