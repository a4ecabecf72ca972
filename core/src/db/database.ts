import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Sequelize, type Transaction } from 'sequelize';
import sqliteDriver from './sqlite-driver.ts';

// BIGINT sequence numbers fit in a double long before they run out; callers get numbers, not strings.
pg.types.setTypeParser(20, (v: string) => Number(v));

export type Dialect = 'sqlite' | 'postgres';

export interface OpenOptions {
  /** Logs each SQL statement (debugging only). */
  logSql?: boolean;
  /** PostgreSQL pool size. */
  poolMax?: number;
}

/** Thin owner of one Sequelize instance: opens SQLite or PostgreSQL and serialises SQLite writers. */
export class Database {
  readonly sequelize: Sequelize;
  readonly dialect: Dialect;
  readonly url: string;
  #sqliteQueue: Promise<unknown> = Promise.resolve();

  constructor(url: string, options: OpenOptions = {}) {
    this.url = url;
    const logging = options.logSql ? (sql: string) => console.log(sql) : false;
    if (url.startsWith('sqlite:')) {
      const storage = url.slice('sqlite:'.length) || ':memory:';
      if (storage !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(storage)), { recursive: true });
      this.dialect = 'sqlite';
      this.sequelize = new Sequelize({
        dialect: 'sqlite',
        storage,
        dialectModule: sqliteDriver,
        logging,
        // IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of deadlocking on upgrade.
        transactionType: 'IMMEDIATE' as Transaction.TYPES,
      });
    } else if (/^postgres(ql)?:\/\//.test(url)) {
      this.dialect = 'postgres';
      this.sequelize = new Sequelize(url, {
        dialect: 'postgres',
        dialectModule: pg,
        logging,
        pool: { max: options.poolMax ?? 10, min: 0, idle: 10_000 },
      });
    } else {
      throw new Error(`DATABASE_URL must start with sqlite: or postgres://, got "${url.replace(/:[^:@/]*@/, ':***@')}"`);
    }
  }

  /**
   * Runs `fn` in a transaction. SQLite allows one writer, so in-process transactions are queued here
   * rather than left to spin on SQLITE_BUSY; PostgreSQL runs them concurrently.
   */
  transaction<T>(fn: (t: Transaction) => Promise<T>): Promise<T> {
    if (this.dialect !== 'sqlite') return this.sequelize.transaction(fn);
    const run = this.#sqliteQueue.then(() => this.sequelize.transaction(fn));
    this.#sqliteQueue = run.catch(() => undefined);
    return run;
  }

  async ping(): Promise<void> {
    await this.sequelize.authenticate({ logging: false });
  }

  async close(): Promise<void> {
    await this.#sqliteQueue.catch(() => undefined);
    await this.sequelize.close();
  }
}

export function openDatabase(url: string, options?: OpenOptions): Database {
  return new Database(url, options);
}
