import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ServiceSchema } from 'moleculer';
import { startQiao, type QiaoApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import type { Database } from '../db/database.ts';
import { describeError } from '../errors.ts';
import { queryRows } from './sql.ts';

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
  for (let i = 0; i < count; i++) ids.push(await insertUser(db));
  return ids;
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
export async function startImApp(databaseUrl: string): Promise<QiaoApp & { db: Database }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-im-'));
  const app = await startQiao(
    loadConfig(process.env, {
      dataDir,
      databaseUrl,
      logLevel: false,
      transporter: null,
      gateway: { port: 0 },
      admin: { port: 0 },
      pluginsFile: path.join(dataDir, 'plugins.json'),
      services: ['system', 'eventlog', 'im'],
    }),
  );
  const stopApp = app.stop;
  return Object.assign(app, {
    db: app.db!,
    stop: async () => {
      await stopApp();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  });
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
