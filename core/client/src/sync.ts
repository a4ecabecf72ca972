import type { Emitter } from './emitter.ts';
import type { HttpClient } from './http.ts';
import type { ClientEvents } from './events.ts';
import type { SyncPage } from './types.ts';

/**
 * Where the client's sync position is kept between runs of the app. The SDK saves it after each page it
 * has handed over (and its `item` listeners have finished), so a restarted app goes on from there.
 */
export interface CursorStore {
  load(): number | Promise<number>;
  save(seq: number): void | Promise<void>;
}

/** A cursor kept in memory only (the default): a new client starts from `start`. */
export function memoryCursor(start = 0): CursorStore & { value: number } {
  return {
    value: start,
    load() {
      return this.value;
    },
    save(seq: number) {
      this.value = seq;
    },
  };
}

export interface SyncOptions {
  http: HttpClient;
  store: CursorStore;
  pageSize: number;
  events: Emitter<ClientEvents>;
  /** Failed catch-ups are retried on their own only while the socket is up (a reconnect catches up anyway). */
  connected: () => boolean;
  retryMs: (attempt: number) => number;
}

/**
 * Catch-up: reads the inbox from the cursor until `hasMore` is false and hands each item over once, in
 * order. Items at or below the cursor are skipped, so a page read twice (a wake-up during a catch-up, two
 * catch-ups racing a reconnect) never delivers anything twice. One catch-up runs at a time; asking during
 * one makes it go round again.
 */
export class SyncEngine {
  readonly #o: SyncOptions;
  #cursor = 0;
  #loaded: Promise<void> | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #failures = 0;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;

  constructor(options: SyncOptions) {
    this.#o = options;
  }

  get cursor(): number {
    return this.#cursor;
  }

  /** Reads the saved cursor (once). */
  load(): Promise<void> {
    this.#loaded ??= (async () => {
      const saved = Number(await this.#o.store.load());
      this.#cursor = Number.isSafeInteger(saved) && saved > 0 ? saved : 0;
    })();
    return this.#loaded;
  }

  /** A push said the inbox ends at `head`: catch up unless we are there already. */
  nudge(head: number | null): void {
    if (head !== null && head <= this.#cursor && !this.#running) return;
    void this.catchUp().catch(() => undefined);
  }

  catchUp(): Promise<void> {
    this.#stopped = false;
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          await this.#drain();
        } while (this.#again);
        this.#failures = 0;
      } catch (err) {
        this.#o.events.emit('error', err as Error);
        this.#scheduleRetry();
        throw err;
      } finally {
        this.#running = null;
      }
    })();
    return this.#running;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
  }

  async #drain(): Promise<void> {
    await this.load();
    for (;;) {
      const page = await this.#o.http.request<SyncPage>('GET', '/v1/sync', { query: { since: this.#cursor, limit: this.#o.pageSize } });
      if (page.reset) this.#o.events.emit('reset', { from: this.#cursor, to: page.last });
      for (const item of page.items) {
        if (item.seq <= this.#cursor) continue;
        await this.#o.events.emitInOrder('item', item);
        this.#cursor = item.seq;
      }
      if (page.reset || page.items.length === 0) this.#cursor = Math.max(this.#cursor, page.last);
      await this.#o.store.save(this.#cursor);
      if (!page.hasMore) {
        this.#o.events.emit('synced', { cursor: this.#cursor, head: page.head });
        return;
      }
    }
  }

  #scheduleRetry(): void {
    if (this.#stopped || this.#retry || !this.#o.connected()) return;
    const delay = this.#o.retryMs(this.#failures++);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (this.#o.connected()) void this.catchUp().catch(() => undefined);
    }, delay);
  }
}
