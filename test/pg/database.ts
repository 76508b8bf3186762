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

/** The backends of the database at `url` that LISTEN on `channel` (the last statement a listening connection ran). */
export async function listenersOn(url: string, channel: "outpost_work" | "outpost_events"): Promise<number[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = $1 AND pid <> pg_backend_pid()",
      [`LISTEN ${channel}`],
    );
    return r.rows.map((x) => x.pid);
  } finally {
    await c.end();
  }
}

/** Ends the backend `pid` of the database at `url`, as a server restart or a failover would its connection. */
export async function terminateBackend(url: string, pid: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query("SELECT pg_terminate_backend($1)", [pid]);
  } finally {
    await c.end();
  }
}
