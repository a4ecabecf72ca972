import fs from 'node:fs';
import path from 'node:path';

/**
 * A crash-safe, append-only queue on disk: `entries.log` holds one JSON entry per line, numbered 1, 2, 3 …;
 * `acks.log` holds the numbers acknowledged so far, one per line (the last line counts). Both are only ever
 * appended to and fsynced before a write is reported done, so after a crash the journal reopens with every
 * entry that was reported written and the last acknowledgement that was reported made. A line torn by a
 * crash mid-write (no trailing newline, or not JSON) is cut off on open: it was never reported written.
 *
 * fsync runs off the event loop (the agent may share its process with Qiao's plugin) and is shared: writes
 * that arrive while one fsync runs are covered together by the next (group commit).
 *
 * Once everything is acknowledged and the log has grown past `compactBytes`, it is rewritten (to a temporary
 * file, then renamed over) keeping only the last `keep` entries, which callers use to recognise repeats.
 */

export interface JournalEntry<T> {
  n: number;
  at: string;
  value: T;
}

export interface JournalOptions {
  /** fsync after every append and acknowledgement (default true); false only for throw-away journals. */
  sync?: boolean;
  compactBytes?: number;
  /** How many acknowledged entries a compaction keeps. */
  keep?: number;
}

export class Journal<T> {
  readonly dir: string;
  #entries: JournalEntry<T>[] = [];
  #acked = 0;
  #last = 0;
  #logFd: number;
  #ackFd: number;
  #logBytes = 0;
  #ackLines = 0;
  #logFlush: GroupFsync;
  #ackFlush: GroupFsync;
  readonly #sync: boolean;
  readonly #compactBytes: number;
  readonly #keep: number;

  constructor(dir: string, opts: JournalOptions = {}) {
    this.dir = dir;
    this.#sync = opts.sync ?? true;
    this.#compactBytes = opts.compactBytes ?? 4 * 1024 * 1024;
    this.#keep = opts.keep ?? 2000;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.#recover();
    this.#logFd = fs.openSync(this.#logFile, 'a', 0o600);
    this.#ackFd = fs.openSync(this.#ackFile, 'a', 0o600);
    this.#logFlush = new GroupFsync(() => this.#logFd);
    this.#ackFlush = new GroupFsync(() => this.#ackFd);
  }

  get #logFile(): string {
    return path.join(this.dir, 'entries.log');
  }

  get #ackFile(): string {
    return path.join(this.dir, 'acks.log');
  }

  #recover(): void {
    // A compaction that died between writing the new log and renaming it leaves a .tmp: the old log is intact.
    for (const f of [`${this.#logFile}.tmp`, `${this.#ackFile}.tmp`]) fs.rmSync(f, { force: true });
    const text = fs.existsSync(this.#logFile) ? fs.readFileSync(this.#logFile, 'utf8') : '';
    let good = 0;
    for (let start = 0; start < text.length; ) {
      const nl = text.indexOf('\n', start);
      if (nl === -1) break;
      try {
        const e = JSON.parse(text.slice(start, nl)) as JournalEntry<T>;
        if (typeof e.n !== 'number' || e.n <= this.#last) break;
        this.#entries.push(e);
        this.#last = e.n;
      } catch {
        break;
      }
      start = nl + 1;
      good = Buffer.byteLength(text.slice(0, start));
    }
    if (fs.existsSync(this.#logFile) && fs.statSync(this.#logFile).size !== good) fs.truncateSync(this.#logFile, good);
    this.#logBytes = good;
    const acks = fs.existsSync(this.#ackFile) ? fs.readFileSync(this.#ackFile, 'utf8').split('\n') : [];
    for (const line of acks) {
      if (/^\d+$/.test(line)) {
        this.#acked = Math.max(this.#acked, Number(line));
        this.#ackLines++;
      }
    }
    // The first line of a compacted log says where numbering continues when no entry is kept.
    const floor = Number(/^#next (\d+)$/m.exec(fs.existsSync(this.#ackFile) ? fs.readFileSync(this.#ackFile, 'utf8') : '')?.[1] ?? 0);
    this.#last = Math.max(this.#last, floor - 1, this.#acked);
  }

  /** Number of the last entry written (0 for none). */
  get last(): number {
    return this.#last;
  }

  get acked(): number {
    return this.#acked;
  }

  get pending(): number {
    return this.#last - this.#acked;
  }

  /** Entries not yet acknowledged, oldest first. */
  unacked(): JournalEntry<T>[] {
    return this.#entries.filter((e) => e.n > this.#acked);
  }

  /** Every entry still on disk (acknowledged ones a compaction kept, then the rest), oldest first. */
  retained(): readonly JournalEntry<T>[] {
    return this.#entries;
  }

  get(n: number): JournalEntry<T> | undefined {
    // Entries are numbered without gaps, so the position follows from the first one kept.
    const first = this.#entries[0]?.n;
    if (first === undefined) return undefined;
    const e = this.#entries[n - first];
    return e?.n === n ? e : undefined;
  }

  /** Appends entries (numbered at once, in call order) and resolves once they are on disk. */
  async append(values: T[]): Promise<JournalEntry<T>[]> {
    if (values.length === 0) return [];
    const at = new Date().toISOString();
    const added = values.map((value) => ({ n: ++this.#last, at, value }));
    const text = added.map((e) => `${JSON.stringify(e)}\n`).join('');
    fs.writeSync(this.#logFd, text);
    this.#logBytes += Buffer.byteLength(text);
    this.#entries.push(...added);
    if (this.#sync) await this.#logFlush.flush();
    return added;
  }

  /** Records that every entry up to `n` is done, and resolves once that is on disk. Going backwards is ignored. */
  async ack(n: number): Promise<void> {
    if (n <= this.#acked) return;
    if (n > this.#last) throw new Error(`cannot acknowledge entry ${n}: the journal ends at ${this.#last}`);
    fs.writeSync(this.#ackFd, `${n}\n`);
    this.#acked = n;
    this.#ackLines++;
    if (this.#sync) await this.#ackFlush.flush();
    if (this.#acked === this.#last && !this.#logFlush.busy && !this.#ackFlush.busy && (this.#logBytes > this.#compactBytes || this.#ackLines > 100_000)) this.#compact();
  }

  #compact(): void {
    const kept = this.#entries.slice(-this.#keep);
    const logTmp = `${this.#logFile}.tmp`;
    const ackTmp = `${this.#ackFile}.tmp`;
    const text = kept.map((e) => `${JSON.stringify(e)}\n`).join('');
    fs.writeFileSync(logTmp, text, { mode: 0o600 });
    fs.writeFileSync(ackTmp, `#next ${this.#last + 1}\n${this.#acked}\n`, { mode: 0o600 });
    for (const f of [logTmp, ackTmp]) {
      const fd = fs.openSync(f, 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    fs.closeSync(this.#logFd);
    fs.closeSync(this.#ackFd);
    // Acks first: if we die between the renames, the old log with the new acks still reopens correctly.
    fs.renameSync(ackTmp, this.#ackFile);
    fs.renameSync(logTmp, this.#logFile);
    this.#logFd = fs.openSync(this.#logFile, 'a', 0o600);
    this.#ackFd = fs.openSync(this.#ackFile, 'a', 0o600);
    this.#entries = kept;
    this.#logBytes = Buffer.byteLength(text);
    this.#ackLines = 1;
  }

  async close(): Promise<void> {
    await Promise.all([this.#logFlush.idle(), this.#ackFlush.idle()]);
    fs.closeSync(this.#logFd);
    fs.closeSync(this.#ackFd);
  }
}

/** One fsync at a time per file; everyone who wrote before it started is covered by it. */
class GroupFsync {
  readonly #fd: () => number;
  #waiting: Array<{ resolve(): void; reject(e: Error): void }> = [];
  #running = false;
  #idle: Array<() => void> = [];

  constructor(fd: () => number) {
    this.#fd = fd;
  }

  get busy(): boolean {
    return this.#running || this.#waiting.length > 0;
  }

  flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#kick();
    });
  }

  idle(): Promise<void> {
    return this.busy ? new Promise((r) => this.#idle.push(r)) : Promise.resolve();
  }

  #kick(): void {
    if (this.#running) return;
    const batch = this.#waiting.splice(0);
    if (!batch.length) {
      this.#idle.splice(0).forEach((r) => r());
      return;
    }
    this.#running = true;
    fs.fsync(this.#fd(), (err) => {
      this.#running = false;
      for (const w of batch) {
        if (err) w.reject(err);
        else w.resolve();
      }
      this.#kick();
    });
  }
}
