import sqlite3 from 'sqlite3';

/**
 * The sqlite3 module as Sequelize loads it, with every connection tuned on open. Sequelize opens a fresh
 * connection per transaction and has no connect hook for SQLite, so the pragmas have to live here.
 * WAL lets readers run beside the writer; busy_timeout makes a second process (a plugin) wait for the
 * write lock instead of failing; synchronous=FULL because an acknowledged message must survive power loss.
 */
const synchronous = (process.env.QIAO_SQLITE_SYNC ?? 'full').toUpperCase() === 'NORMAL' ? 'NORMAL' : 'FULL';

class TunedDatabase extends sqlite3.Database {
  constructor(filename: string, mode: number, callback: (err: Error | null) => void) {
    super(filename, mode, (err) => {
      if (err) return callback(err);
      this.exec(
        `PRAGMA busy_timeout = 15000; PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous};`,
        (e) => callback(e ?? null),
      );
    });
  }
}

export default { ...sqlite3, Database: TunedDatabase };
