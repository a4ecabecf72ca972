import pg from 'pg';
import { createTestDatabase, pgAdminUrl, type TestDatabase, type TestDialect } from '../support/databases.ts';

/** The dialects a benchmark runs on: SQLite always, PostgreSQL when reachable. */
export async function benchDialects(): Promise<TestDialect[]> {
  const client = new pg.Client({ connectionString: pgAdminUrl(), connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return ['sqlite', 'postgres'];
  } catch {
    console.log('(PostgreSQL not reachable: SQLite only)');
    return ['sqlite'];
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function withDatabase<T>(dialect: TestDialect, fn: (db: TestDatabase) => Promise<T>): Promise<T> {
  const db = await createTestDatabase(dialect);
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const fmt = (n: number, digits = 1) => n.toFixed(digits);
