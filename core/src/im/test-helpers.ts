import { createHash, randomBytes } from 'node:crypto';
import type { ServiceSchema } from 'moleculer';
import type { QiaoApp } from '../app.ts';
import { startTestApp, type TestApp } from '../../../test/support/test-app.ts';
import type { Database } from '../db/database.ts';
import { describeError } from '../errors.ts';
import { queryRows } from '../db/sql.ts';
import type { BeginResult, FileInfo } from './files/files.ts';
import type { SyncItem, SyncPage } from './sync.ts';

/**
 * Inserts a user row directly. Tests only: accounts are the org service's to create, and it does not
 * exist yet. Returns the new user's id.
 */
export async function insertUser(db: Database, account = `u${randomBytes(4).toString('hex')}`, status = 'active'): Promise<number> {
  const now = new Date();
  const [row] = await queryRows<{ id: number }>(
    db,
    'INSERT INTO users (account, name, status, authorised, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
    [account, account, status, true, now, now],
  );
  return Number(row.id);
}

export async function insertUsers(db: Database, count: number): Promise<number[]> {
  const ids: number[] = [];
  if (count <= 20) {
    for (let i = 0; i < count; i++) ids.push(await insertUser(db));
    return ids;
  }
  // Big groups need thousands of people: insert them in multi-row statements.
  const tag = randomBytes(4).toString('hex');
  const now = new Date();
  for (let start = 0; start < count; start += 500) {
    const n = Math.min(500, count - start);
    const rows = await queryRows<{ id: number }>(
      db,
      `INSERT INTO users (account, name, status, authorised, created_at, updated_at) VALUES ${new Array(n).fill('(?, ?, ?, ?, ?, ?)').join(', ')} RETURNING id`,
      Array.from({ length: n }, (_, i) => [`b${tag}-${start + i}`, `b${tag}-${start + i}`, 'active', true, now, now]).flat(),
    );
    ids.push(...rows.map((r) => Number(r.id)));
  }
  return ids.sort((a, b) => a - b);
}

export async function setStatus(db: Database, userId: number, status: 'active' | 'disabled' | 'resigned'): Promise<void> {
  await db.sequelize.query('UPDATE users SET status = ? WHERE id = ?', { replacements: [status, userId] });
}

/** What the admin API puts in `meta` for a signed-in admin. */
export const ADMIN = { admin: { id: 1, account: 'admin', role: 'super' } };

/** Reads a user's whole inbox after `since`, page by page, checking the paging contract on the way. */
export async function syncAll(app: QiaoApp, userId: number, since = 0, limit = 200): Promise<SyncItem[]> {
  const items: SyncItem[] = [];
  let position = since;
  for (;;) {
    const page = await app.broker.call<SyncPage, object>('im.sync', { userId, since: position, limit });
    items.push(...page.items);
    if (page.items.length && page.items[0].seq !== position + 1) throw new Error(`sync of user ${userId} skipped from ${position} to ${page.items[0].seq}`);
    position = page.last;
    if (!page.hasMore) return items;
  }
}

/** Polls `probe` until it returns something truthy (or fails after `ms`). */
export async function eventually<T>(what: string, probe: () => T | Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A stand-in plugin host for im's tests: rejects any text containing "forbidden", upper-cases the rest, and
 * counts its calls so tests can tell whether the hook ran.
 */
export function fixturePluginHost(calls: { count: number } = { count: 0 }): ServiceSchema {
  return {
    name: 'plugins',
    actions: {
      'hooks.beforeMessageStored': {
        handler(ctx) {
          calls.count++;
          const { message } = ctx.params as { message: { body: { text: string } } };
          if (message.body.text.includes('forbidden')) {
            return { outcome: 'reject', message, reason: 'contains a forbidden word', pluginId: 'com.example.keyword-filter' };
          }
          return { outcome: 'allow', message: { ...message, body: { text: message.body.text.toUpperCase() } }, pluginId: 'com.example.keyword-filter' };
        },
      },
    },
  };
}

/** Starts the storage services im needs on a throw-away data dir; `stop()` also removes the dir. */
export function startImApp(databaseUrl: string, services = ['system', 'eventlog', 'im']): Promise<TestApp> {
  return startTestApp(databaseUrl, services, {}, 'qiao-im-');
}

/** Asserts that `promise` fails with the Qiao code (as the gateways would report it) and, if given, the field. */
export async function rejectsWith(promise: Promise<unknown>, code: string, field?: string): Promise<Record<string, unknown>> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) throw new Error(`expected ${code}, but the call succeeded`);
  const e = describeError(caught);
  const data = (e.data ?? {}) as Record<string, unknown>;
  if (e.code !== code || (field !== undefined && data.field !== field)) {
    throw new Error(`expected ${code}${field ? ` on ${field}` : ''}, got ${e.code} on ${String(data.field)}: ${e.message}`);
  }
  return { ...data, message: e.message };
}

/** Uploads `content` through im.files (begin, append in chunked, complete) and returns the file. */
export async function upload(
  app: QiaoApp,
  userId: number,
  content: Buffer,
  opts: { name?: string; kind?: 'image' | 'file' | 'voice'; conversationId?: string; space?: boolean; chunk?: number } = {},
): Promise<FileInfo> {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const begun = await app.broker.call<BeginResult, object>('im.files.begin', {
    userId,
    name: opts.name ?? 'notes.txt',
    size: content.length,
    sha256,
    kind: opts.kind ?? 'file',
    conversationId: opts.conversationId,
    space: opts.space,
  });
  if (begun.file) return begun.file;
  const step = opts.chunk ?? 64 * 1024;
  for (let offset = begun.received; offset < content.length; offset += step) {
    await app.broker.call('im.files.append', { userId, uploadId: begun.uploadId, offset, data: content.subarray(offset, offset + step).toString('base64') });
  }
  return app.broker.call<FileInfo, object>('im.files.complete', { userId, uploadId: begun.uploadId });
}
