import { randomBytes } from 'node:crypto';
import type moleculer from 'moleculer';
import type { PresenceConnection } from '../../presence/presence-state.ts';
import { REPORT_EVENT, REPORT_INTERVAL_MS, SNAPSHOT_PART, type PresenceReport } from '../../presence/reports.ts';

/**
 * Tells the presence service (every instance of it, by broadcast) which sockets this gateway holds:
 * changes batched per tick, a heartbeat with the count every REPORT_INTERVAL_MS, the full list on request.
 * Reports are wake-ups too: a lost one is noticed by the count and repaired with a full list.
 */
export class PresenceReporter {
  readonly reporterId: string;
  readonly #broker: moleculer.ServiceBroker;
  readonly #list: () => PresenceConnection[];
  readonly #upserts = new Map<string, PresenceConnection>();
  readonly #removals = new Set<string>();
  #scheduled = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(broker: moleculer.ServiceBroker, reporterId: string, list: () => PresenceConnection[]) {
    this.#broker = broker;
    this.reporterId = reporterId;
    this.#list = list;
  }

  start(): void {
    this.#timer = setInterval(() => this.heartbeat(), REPORT_INTERVAL_MS);
    this.#timer.unref?.();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  upsert(c: PresenceConnection): void {
    this.#removals.delete(c.id);
    this.#upserts.set(c.id, c);
    this.#schedule();
  }

  remove(id: string): void {
    this.#upserts.delete(id);
    this.#removals.add(id);
    this.#schedule();
  }

  /** Sends the batched changes now. */
  flush(): void {
    this.#scheduled = false;
    if (this.#upserts.size === 0 && this.#removals.size === 0) return;
    const report: PresenceReport = { nodeId: this.reporterId, kind: 'delta', upserts: [...this.#upserts.values()], removals: [...this.#removals] };
    this.#upserts.clear();
    this.#removals.clear();
    this.#send(report);
  }

  heartbeat(): void {
    this.flush();
    this.#send({ nodeId: this.reporterId, kind: 'heartbeat', count: this.#list().length });
  }

  /** Every socket, in parts sent back to back (nothing can come between them on the way). */
  snapshot(): void {
    this.flush();
    const all = this.#list();
    const snapshotId = randomBytes(6).toString('hex');
    const parts = Math.max(1, Math.ceil(all.length / SNAPSHOT_PART));
    for (let part = 0; part < parts; part++) {
      this.#send({ nodeId: this.reporterId, kind: 'snapshot', snapshotId, part, parts, connections: all.slice(part * SNAPSHOT_PART, (part + 1) * SNAPSHOT_PART) });
    }
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  #send(report: PresenceReport): void {
    Promise.resolve(this.#broker.broadcast(REPORT_EVENT, report)).catch((err: Error) => this.#broker.logger.warn(`gateway: presence report failed: ${err.message}`));
  }
}
