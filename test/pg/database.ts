/**
 * A throwaway PostgreSQL database per test file, on the server named by
 * OUTPOST_TEST_DATABASE_URL (default: the local one). Where PostgreSQL is
 * unreachable the file's tests are skipped with the reason — unless
 * OUTPOST_TEST_PG=required (the PostgreSQL tier in CI), where that fails.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";

const ADMIN_URL = process.env.OUTPOST_TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";

export interface TestDatabase {
  /** False where PostgreSQL could not be reached (tests skip). */
  reachable: boolean;
  /** Connection URL of the new database. */
  url: string;
  drop(): Promise<void>;
}

async function admin(sqlText: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query(sqlText);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  const drop = () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  try {
    await admin(`CREATE DATABASE ${name}`);
    return { reachable: true, url: u.toString(), drop };
  } catch (err) {
    const reason = (err as Error).message;
    if (process.env.OUTPOST_TEST_PG === "required") throw new Error(`PostgreSQL tier required but unreachable: ${reason}`);
    console.warn(`PostgreSQL tier skipped: ${reason}`);
    return { reachable: false, url: "", drop: async () => undefined };
  }
}
