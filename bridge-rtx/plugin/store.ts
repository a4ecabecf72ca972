import type { PluginDatabase } from '@qiao/plugin-api';

/** Relay counters the admin sees; kept in the database so they survive restarts. */
export const COUNTERS = [
  'toRtx.delivered',
  'toRtx.failed',
  'toRtx.skipped',
  'toRtx.lossy',
  'toRtx.viaRelay',
  'toQiao.messages',
  'toQiao.duplicates',
  'toQiao.failed',
  'toQiao.ignored',
  'toQiao.notifications',
  'toQiao.broadcasts',
  'loopsPrevented',
] as const;
export type CounterName = (typeof COUNTERS)[number];

export const placeholders = (n: number) => `(${Array.from({ length: n }, () => '?').join(', ')})`;

/** The plugin's tables, through the `?`-placeholder connection the host gives it (SQLite or PostgreSQL). */
export class Store {
  readonly db: PluginDatabase;
  #pending = new Map<string, number>();
  #flushing: Promise<void> | null = null;

  constructor(db: PluginDatabase) {
    this.db = db;
  }

  query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.db.query<T>(sql, params);
  }

  execute(sql: string, params: unknown[] = []): Promise<void> {
    return this.db.execute(sql, params);
  }

  async one<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.db.query<T>(sql, params))[0];
  }

  // ---- counters (batched: a relay at full speed must not do one UPDATE per message) ---------------------
  count(name: CounterName | string, by = 1): void {
    this.#pending.set(name, (this.#pending.get(name) ?? 0) + by);
  }

  async flushCounters(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (!this.#pending.size) return;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#flushing = (async () => {
      for (const [name, by] of batch) {
        await this.db.execute(
          'INSERT INTO rtx_bridge_counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = rtx_bridge_counters.value + excluded.value',
          [name, by],
        );
      }
    })();
    try {
      await this.#flushing;
    } catch (err) {
      // Put them back: a counter is worth a retry, not an exception in the relay.
      for (const [name, by] of batch) this.#pending.set(name, (this.#pending.get(name) ?? 0) + by);
      throw err;
    } finally {
      this.#flushing = null;
    }
  }

  async counters(): Promise<Record<string, number>> {
    await this.flushCounters().catch(() => undefined);
    const out: Record<string, number> = Object.fromEntries(COUNTERS.map((c) => [c, 0]));
    for (const r of await this.db.query<{ name: string; value: number | string }>('SELECT name, value FROM rtx_bridge_counters')) out[r.name] = Number(r.value);
    return out;
  }

  // ---- meta -----------------------------------------------------------------------------------------------
  async getMeta(key: string): Promise<string | null> {
    const row = await this.one<{ value: string | null }>('SELECT value FROM rtx_bridge_meta WHERE key = ?', [key]);
    return row?.value ?? null;
  }

  async setMeta(key: string, value: string | null): Promise<void> {
    await this.db.execute('INSERT INTO rtx_bridge_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }
}
