/**
 * Per-user sync: every user has an inbox of things to receive, numbered 1, 2, 3… with no holes, and a
 * client asks "everything after N" (`im.sync`).
 *
 * Fan-out on write. Each change writes one inbox row per recipient inside its own transaction: a message
 * to a 5,000-member group writes 5,000 rows, in chunked set-based statements (`fanOut`). The alternative,
 * merging conversation logs at read time with per-user cursors, keeps writes small but makes every read a
 * merge across all of a user's conversations, and needs membership history to decide what a former or new
 * member may see, and separate streams for recalls, receipts, broadcasts and org changes. With an inbox,
 * "what this user must receive" is decided once, when the change commits and membership is known, and a
 * read is one primary-key range scan whatever the user is in. Groups are capped at 5,000 members, so the
 * largest write stays bounded (tens of milliseconds on PostgreSQL).
 *
 * Dense numbering, commit order. A user's next number comes from their `sync_heads` row, incremented by an
 * upsert in the same transaction as the inbox row. The upsert locks that row until commit, so the next
 * writer for the same user waits and then takes the next number: numbers are handed out in commit order
 * per user, and a reader can never see N+1 committed while N is still in flight and step past N for good.
 * This holds on its own, without the event log's lock (which im writes take anyway, see write.ts, so
 * heads are never locked in conflicting orders). Dense numbers also let a client detect a gap by
 * arithmetic, and let the server tell a client that fell behind the retention window to reset (`reset`).
 *
 * What goes in: messages (kind `message`, the body is read from `messages` when synced, so a later recall
 * shows), recalls, read receipts (the reader's own devices and the senders of what was read), membership
 * and group changes, broadcasts, and org changes about the user themselves. Every device of a user reads
 * the same inbox, so they converge. Broker events (`im.sync.wake`) only say "look again".
 */
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { toBroadcast, type Broadcast } from './broadcasts-model.ts';
import { loadMessages, type StoredMessage } from './messages.ts';
import { chunked, exec, inList, isoDate, jsonParam, parseJson, queryRows } from '../db/sql.ts';
import type { ImTx } from './write.ts';

export const SYNC_KINDS = ['message', 'recall', 'read', 'conversation', 'broadcast', 'org'] as const;
export type SyncKind = (typeof SYNC_KINDS)[number];

export interface SyncEntry {
  kind: SyncKind;
  conversationId?: string | null;
  /** The message (message, recall) or broadcast this entry is about. */
  refId?: number | null;
  payload?: unknown;
}

export interface SyncItem {
  seq: number;
  kind: SyncKind;
  conversationId: string | null;
  createdAt: string;
  /** message: the message as it is now; broadcast: the broadcast; others: what changed. */
  data: unknown;
}

export interface SyncPage {
  items: SyncItem[];
  /** The seq of the last item returned (or `since` when none). */
  last: number;
  /** The user's latest seq. */
  head: number;
  hasMore: boolean;
  /**
   * True when entries after `since` were pruned (older than the retention): the client must reload its
   * conversations (`im.conversations.list`, `im.messages.list`) and continue from `last`.
   */
  reset: boolean;
}

/**
 * Appends one entry to the inbox of each of `userIds`, inside the caller's im write. Recipients are taken
 * in ascending id order, so the head rows are locked in one order by every writer.
 */
export async function fanOut(db: Database, w: ImTx, userIds: Iterable<number>, entry: SyncEntry): Promise<void> {
  const ids = [...new Set(userIds)].sort((a, b) => a - b);
  if (ids.length === 0) return;
  const payload = entry.payload === undefined || entry.payload === null ? null : JSON.stringify(entry.payload);
  const now = new Date();
  for (const chunk of chunked(ids)) {
    await db.sequelize.query(
      `INSERT INTO sync_heads (user_id, head) VALUES ${chunk.map(() => '(?, 1)').join(', ')}
       ON CONFLICT (user_id) DO UPDATE SET head = sync_heads.head + 1`,
      { replacements: chunk, transaction: w.t },
    );
    // The heads of these users are locked by this transaction now, so reading them back is exact.
    await db.sequelize.query(
      `INSERT INTO sync_items (user_id, seq, kind, conversation_id, ref_id, payload, created_at)
       SELECT user_id, head, ?, ?, ?, ${jsonParam(db)}, ? FROM sync_heads WHERE user_id IN ${inList(chunk.length)}`,
      { replacements: [entry.kind, entry.conversationId ?? null, entry.refId ?? null, payload, now, ...chunk], transaction: w.t },
    );
  }
  for (const id of ids) w.wake.add(id);
}

/** The people a conversation's changes reach: its members, except those who resigned. */
export async function conversationRecipients(db: Database, w: ImTx, conversationId: string): Promise<number[]> {
  const rows = await queryRows<{ user_id: number }>(
    db,
    `SELECT m.user_id FROM conversation_members m JOIN users u ON u.id = m.user_id
     WHERE m.conversation_id = ? AND u.status <> 'resigned' ORDER BY m.user_id`,
    [conversationId],
    w.t,
  );
  return rows.map((r) => Number(r.user_id));
}

export async function syncHead(db: Database, userId: number): Promise<number> {
  const [row] = await queryRows<{ head: number | string }>(db, 'SELECT head FROM sync_heads WHERE user_id = ?', [userId]);
  return Number(row?.head ?? 0);
}

/**
 * The heads of many people at once (a wake-up reaching a whole group), by the same rule as `syncHead`
 * behind `assertActiveUser`: people who do not exist or are not active are left out, as they receive nothing.
 */
export async function syncHeads(db: Database, userIds: number[]): Promise<Map<number, number>> {
  const heads = new Map<number, number>();
  for (const chunk of chunked([...new Set(userIds)])) {
    const rows = await queryRows<{ id: number | string; head: number | string | null }>(
      db,
      `SELECT u.id, h.head FROM users u LEFT JOIN sync_heads h ON h.user_id = u.id WHERE u.id IN ${inList(chunk.length)} AND u.status = 'active'`,
      chunk,
    );
    for (const r of rows) heads.set(Number(r.id), Number(r.head ?? 0));
  }
  return heads;
}

/** Throws unless `userId` is an active account: disabled and resigned people receive nothing. */
export async function assertActiveUser(db: Database, userId: number, field = 'userId'): Promise<void> {
  const [user] = await queryRows<{ status: string }>(db, 'SELECT status FROM users WHERE id = ?', [userId]);
  if (!user) throw qiaoError('QIAO_NOT_FOUND', `user ${userId} does not exist`, { field });
  if (user.status !== 'active') throw qiaoError('QIAO_FORBIDDEN', `user ${userId} is ${user.status} and has no access to messages`, { field });
}

interface ItemRow {
  seq: number | string;
  kind: SyncKind;
  conversation_id: string | null;
  ref_id: number | string | null;
  payload: unknown;
  created_at: string | Date;
}

/** What `userId` has to receive after `since`, in order, at most `limit` entries. */
export async function readSync(db: Database, userId: number, since: number, limit: number): Promise<SyncPage> {
  await assertActiveUser(db, userId);
  // The head is read BEFORE the items. It moves in the same transaction that writes an item, so every item up
  // to this head is already visible to the read below: a missing since + 1 then really means pruned. (Read
  // the other way round, an item committing between the two reads made an empty page look like a reset, and
  // a client that moved to `last` skipped it for good.)
  const headBefore = await syncHead(db, userId);
  const rows = await queryRows<ItemRow>(
    db,
    'SELECT seq, kind, conversation_id, ref_id, payload, created_at FROM sync_items WHERE user_id = ? AND seq > ? ORDER BY seq LIMIT ?',
    [userId, since, limit],
  );
  const messageIds = rows.filter((r) => r.kind === 'message').map((r) => Number(r.ref_id));
  const broadcastIds = rows.filter((r) => r.kind === 'broadcast').map((r) => Number(r.ref_id));
  const messages = new Map<number, StoredMessage>((await loadMessages(db, messageIds)).map((m) => [m.id, m]));
  const broadcasts = new Map<number, Broadcast>();
  for (const chunk of chunked([...new Set(broadcastIds)])) {
    const found = await queryRows<Parameters<typeof toBroadcast>[0]>(db, `SELECT * FROM broadcasts WHERE id IN ${inList(chunk.length)}`, chunk);
    for (const b of found) broadcasts.set(Number(b.id), toBroadcast(b));
  }
  const items = rows.map((r): SyncItem => {
    const ref = r.ref_id === null ? null : Number(r.ref_id);
    let data: unknown = r.payload === null || r.payload === undefined ? null : parseJson(r.payload);
    if (r.kind === 'message') data = messages.get(ref!) ?? null;
    if (r.kind === 'broadcast') data = broadcasts.get(ref!) ?? null;
    return { seq: Number(r.seq), kind: r.kind, conversationId: r.conversation_id, createdAt: isoDate(r.created_at), data };
  });
  // Items committed after the head was read may be on the page; the head reported covers them.
  const head = Math.max(headBefore, items.length ? items[items.length - 1].seq : 0);
  // Numbers are dense: a first item that is not since + 1 means the ones between were pruned. A position
  // past the head was never handed out here (a database restored from an older backup): start over too.
  const reset = since > head || (since < headBefore && (items.length === 0 || items[0].seq !== since + 1));
  const last = items.length ? items[items.length - 1].seq : reset ? head : since;
  return { items, last, head, hasMore: last < head, reset };
}

/** Deletes inbox entries older than `days`; returns how many. A client behind them gets `reset`. */
export async function pruneSync(db: Database, days: number): Promise<number> {
  const cutoff = new Date(Date.now() - days * 86_400_000);
  return db.transaction((t) => exec(db, 'DELETE FROM sync_items WHERE created_at < ?', [cutoff], t));
}
