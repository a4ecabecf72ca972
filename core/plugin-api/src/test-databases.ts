import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export type TestDialect = 'sqlite' | 'postgres';

export interface TestDatabase {
  dialect: TestDialect;
  /** A DATABASE_URL for a database that exists only for this suite. */
  url: string;
  drop(): Promise<void>;
}

/** The dialects this run covers; `test/run.ts` sets QIAO_TEST_DIALECTS after checking PostgreSQL is there. */
export function testDialects(): TestDialect[] {
  const raw = process.env.QIAO_TEST_DIALECTS ?? 'sqlite';
  return raw.split(',').map((d) => d.trim()).filter((d): d is TestDialect => d === 'sqlite' || d === 'postgres');
}

/** Where suites create their throw-away databases (the user must be allowed CREATE DATABASE). */
export function pgAdminUrl(): string {
  return process.env.QIAO_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
}

export async function createTestDatabase(dialect: TestDialect): Promise<TestDatabase> {
  const name = `qiao_t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  if (dialect === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-test-'));
    return {
      dialect,
      url: `sqlite:${path.join(dir, `${name}.sqlite`)}`,
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const admin = new pg.Client({ connectionString: pgAdminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(pgAdminUrl());
  url.pathname = `/${name}`;
  return {
    dialect,
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: pgAdminUrl() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Declares `body` once per dialect under test, as `title [sqlite]` and `title [postgres]`, each with a fresh
 * empty database. Every storage-touching suite goes through here, so no storage test runs on one dialect only.
 */
export function forEachDatabase(title: string, body: (db: { url: () => string; dialect: TestDialect }) => void): void {
  for (const dialect of testDialects()) {
    describe(`${title} [${dialect}]`, function () {
      let current: TestDatabase | undefined;
      before(async function () {
        this.timeout(30_000);
        current = await createTestDatabase(dialect);
      });
      after(async function () {
        this.timeout(30_000);
        await current?.drop();
      });
      body({
        dialect,
        url: () => {
          if (!current) throw new Error('test database not created yet: call url() inside a hook or test');
          return current.url;
        },
      });
    });
  }
}
