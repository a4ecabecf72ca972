import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DataTypes, type QueryInterface } from 'sequelize';
import { Umzug, type UmzugStorage } from 'umzug';
import type { Database, Dialect } from './database.ts';

/** What a migration module receives: `export async function up({ context }) {…}`. */
export interface MigrationContext {
  qi: QueryInterface;
  DataTypes: typeof DataTypes;
  dialect: Dialect;
  db: Database;
}

export type MigrationFn = (params: { context: MigrationContext; name: string }) => Promise<void>;

const TABLE = 'qiao_migrations';

/**
 * One table records the migrations of every owner (the core and each plugin), so plugins keep their own
 * versioned history without colliding on names.
 */
class OwnerStorage implements UmzugStorage<MigrationContext> {
  #db: Database;
  #owner: string;
  constructor(db: Database, owner: string) {
    this.#db = db;
    this.#owner = owner;
  }
  async #ensure(): Promise<void> {
    const qi = this.#db.sequelize.getQueryInterface();
    const tables = (await qi.showAllTables()).map((t) => (typeof t === 'string' ? t : (t as { tableName: string }).tableName));
    if (tables.includes(TABLE)) return;
    await qi.createTable(TABLE, {
      owner: { type: DataTypes.STRING(200), allowNull: false, primaryKey: true },
      name: { type: DataTypes.STRING(200), allowNull: false, primaryKey: true },
      applied_at: { type: DataTypes.DATE, allowNull: false },
    });
  }
  async logMigration({ name }: { name: string }): Promise<void> {
    await this.#ensure();
    await this.#db.sequelize.getQueryInterface().bulkInsert(TABLE, [{ owner: this.#owner, name, applied_at: new Date() }]);
  }
  async unlogMigration({ name }: { name: string }): Promise<void> {
    await this.#ensure();
    await this.#db.sequelize.getQueryInterface().bulkDelete(TABLE, { owner: this.#owner, name });
  }
  async executed(): Promise<string[]> {
    await this.#ensure();
    const rows = (await this.#db.sequelize.getQueryInterface().select(null, TABLE, {
      where: { owner: this.#owner },
    })) as Array<{ name: string }>;
    return rows.map((r) => r.name).sort();
  }
}

function migrator(db: Database, owner: string, dir: string): Umzug<MigrationContext> {
  const files = fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((f) => /^\d{4}[-_].+\.(ts|js|mjs)$/.test(f) && !f.endsWith('.d.ts')).sort()
    : [];
  return new Umzug<MigrationContext>({
    migrations: files.map((file) => {
      const full = path.join(dir, file);
      const name = file.replace(/\.(ts|js|mjs)$/, '');
      return {
        name,
        up: async (params) => ((await import(pathToFileURL(full).href)) as { up: MigrationFn }).up(params),
        down: async (params) => {
          const mod = (await import(pathToFileURL(full).href)) as { down?: MigrationFn };
          if (!mod.down) throw new Error(`migration ${owner}/${name} has no down()`);
          await mod.down(params);
        },
      };
    }),
    context: { qi: db.sequelize.getQueryInterface(), DataTypes, dialect: db.dialect, db },
    storage: new OwnerStorage(db, owner),
    logger: undefined,
  });
}

/** Applies the pending migrations of `owner` from `dir` (files `0001-name.ts`, in order); returns their names. */
export async function migrate(db: Database, owner: string, dir: string): Promise<string[]> {
  const applied = await migrator(db, owner, dir).up();
  return applied.map((m) => m.name);
}

/** Reverts every migration of `owner` (used by `plugin uninstall --purge`). */
export async function revertAll(db: Database, owner: string, dir: string): Promise<string[]> {
  const reverted = await migrator(db, owner, dir).down({ to: 0 });
  return reverted.map((m) => m.name);
}
