import type { CoreCall } from './accounts.ts';

/**
 * RTX presence → Qiao presence. The core's presence service shows each person the best of their own Qiao
 * devices and of external sources; the bridge is the source `rtx`. What it has told the service is kept
 * here, so each round sends only the people whose RTX status differs from that (in batches the service
 * accepts), and everything is forgotten at once (`presence.external.clear`) when RTX presence is no longer
 * known: the agent's link is down, RTX is down, or the plugin stops.
 */

export const PRESENCE_SOURCE = 'rtx';
/** The most entries `presence.external.set` takes in one call. */
export const PRESENCE_BATCH = 10_000;

export type ExternalStatus = 'online' | 'away' | 'offline';
export interface PresenceEntry {
  userId: number;
  status: ExternalStatus;
}

/** RTX's getstatus values: 0 offline, 1 online, 2 away. */
export function fromRtxStatus(s: number): ExternalStatus {
  return s === 1 ? 'online' : s === 2 ? 'away' : 'offline';
}

const RANK: Record<ExternalStatus, number> = { offline: 0, away: 1, online: 2 };

export interface PresenceFeedOptions {
  call: CoreCall;
  /** RTX presence by account as the bridge sees it now, or null when it cannot see it. */
  current(): Iterable<[string, number]> | null;
  /** The Qiao user of an RTX account (null: nobody in Qiao, or the relay account). */
  qiaoId(account: string): Promise<number | null>;
  log(level: 'info' | 'warn' | 'error', m: string): void;
}

export class PresenceFeed {
  readonly #o: PresenceFeedOptions;
  /** What the presence service holds from us: everyone not offline. */
  #shown = new Map<number, ExternalStatus>();
  /** Unknown (a predecessor may have crashed with people shown, or a clear failed): clear before the next set. */
  #unknown = true;
  #resendAll = false;
  #running: Promise<void> | null = null;
  #again = false;
  #lastError: string | null = null;

  constructor(o: PresenceFeedOptions) {
    this.#o = o;
  }

  /** How many Qiao people RTX shows online or away right now (for the admin's status). */
  get shown(): number {
    return this.#shown.size;
  }

  get lastError(): string | null {
    return this.#lastError;
  }

  /** Brings the presence service in line with RTX; calls while one round runs make it go round again. */
  update(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    const run = (async () => {
      try {
        do {
          this.#again = false;
          await this.#round();
        } while (this.#again);
      } finally {
        this.#running = null;
      }
    })();
    this.#running = run;
    return run;
  }

  /**
   * Qiao presence includes what the bridge itself reported from RTX; handing that back to RTX as "online in
   * Qiao" would echo RTX's own presence (and outlive it in RTX). Keeps only people with a Qiao device, or
   * another source, among `online`.
   */
  async withoutOwnReports(online: number[]): Promise<number[]> {
    const ours = online.filter((u) => this.#shown.has(u));
    if (!ours.length) return online;
    const onlyOurs = new Set<number>();
    for (let i = 0; i < ours.length; i += 1000) {
      const { users } = await this.#o.call<{ users: Array<{ userId: number; devices: Array<{ source?: string }> }> }>('presence.get', { userIds: ours.slice(i, i + 1000) });
      for (const u of users) if (u.devices.every((d) => d.source === PRESENCE_SOURCE)) onlyOurs.add(Number(u.userId));
    }
    return online.filter((u) => !onlyOurs.has(u));
  }

  /** The presence service lost what it held (it restarted): the next round sends every status again. */
  resend(): Promise<void> {
    // Taken at the start of a round, so a round already under way cannot mix old and new knowledge.
    this.#resendAll = true;
    return this.update();
  }

  /** Forgets everything the bridge told the presence service (the plugin is stopping). */
  async clear(): Promise<void> {
    await this.#running?.catch(() => undefined);
    await this.#clear();
  }

  async #round(): Promise<void> {
    try {
      const now = this.#o.current();
      if (now === null) {
        if (this.#shown.size || this.#unknown) await this.#clear();
        return;
      }
      const wanted = new Map<number, ExternalStatus>();
      for (const [account, s] of now) {
        const status = fromRtxStatus(s);
        // Offline is what nobody-shown already means: no lookup, no entry.
        if (status === 'offline') continue;
        const userId = await this.#o.qiaoId(account);
        if (userId === null) continue;
        // Two RTX accounts mapped to one person: the better status counts.
        const had = wanted.get(userId);
        if (!had || RANK[status] > RANK[had]) wanted.set(userId, status);
      }
      if (this.#resendAll) {
        this.#resendAll = false;
        this.#shown.clear();
      }
      // Diffs against an unknown starting point could leave someone shown for good.
      if (this.#unknown && !(await this.#clear())) return;
      const changes: PresenceEntry[] = [];
      for (const [userId, status] of wanted) if (this.#shown.get(userId) !== status) changes.push({ userId, status });
      for (const userId of this.#shown.keys()) if (!wanted.has(userId)) changes.push({ userId, status: 'offline' });
      for (let i = 0; i < changes.length; i += PRESENCE_BATCH) {
        const batch = changes.slice(i, i + PRESENCE_BATCH);
        await this.#o.call('presence.external.set', { source: PRESENCE_SOURCE, entries: batch });
        for (const e of batch) {
          if (e.status === 'offline') this.#shown.delete(e.userId);
          else this.#shown.set(e.userId, e.status);
        }
      }
      this.#ok();
    } catch (err) {
      this.#failed(err as Error);
    }
  }

  async #clear(): Promise<boolean> {
    try {
      await this.#o.call('presence.external.clear', { source: PRESENCE_SOURCE });
      this.#shown.clear();
      this.#unknown = false;
      this.#ok();
      return true;
    } catch (err) {
      // Whatever the service holds now is unknown; the next round clears first.
      this.#unknown = true;
      this.#failed(err as Error);
      return false;
    }
  }

  #ok(): void {
    if (this.#lastError) this.#o.log('info', 'RTX presence reaches Qiao presence again');
    this.#lastError = null;
  }

  #failed(err: Error): void {
    // Said once per distinct problem: the next round (next change, or the presence timer) tries again.
    if (err.message !== this.#lastError) this.#o.log('warn', `RTX presence could not be passed to Qiao presence: ${err.message}`);
    this.#lastError = err.message;
  }
}
