/**
 * The conformance suite on PostgreSQL. Each test file run gets its own
 * database (outpost_test_<random>), dropped afterwards; each test starts
 * from empty tables. Unreachable server: skipped with a warning, or a hard
 * failure when OUTPOST_TEST_PG=required.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { describe, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { describeStoreConformance } from "./conformance.js";

const ADMIN_URL = process.env.OUTPOST_TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
const REQUIRED = process.env.OUTPOST_TEST_PG === "required";
const DB = `outpost_test_${randomBytes(5).toString("hex")}`;

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates this run's database; returns why PostgreSQL cannot be used, or null. */
async function setUp(): Promise<string | null> {
  try {
    await admin((c) => c.query(`CREATE DATABASE ${DB}`));
    return null;
  } catch (err) {
    const safe = ADMIN_URL.replace(/\/\/[^@/]*@/, "//***@");
    return `cannot use PostgreSQL at ${safe}: ${(err as Error).message}`;
  }
}

const unavailable = await setUp();
if (unavailable) {
  if (REQUIRED) throw new Error(`OUTPOST_TEST_PG=required but ${unavailable}`);
  console.warn(
    `PostgreSQL tier skipped: ${unavailable} (set OUTPOST_TEST_DATABASE_URL, or OUTPOST_TEST_PG=required to make this a failure)`,
  );
}

describe.skipIf(unavailable !== null)(unavailable ? `postgres (skipped: ${unavailable})` : "postgres", () => {
  const url = withDatabase(ADMIN_URL, DB);
  describeStoreConformance(
    "postgres",
    async () => {
      const store = await openStore({ dataDir: "unused", databaseUrl: url });
      // A fresh, empty store for every test.
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query("TRUNCATE approvals, events, runs, sessions");
      } finally {
        await c.end();
      }
      return store;
    },
    async () => {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
    },
  );
});

if (unavailable) {
  describe("postgres", () => {
    it.skip(`PostgreSQL tier skipped: ${unavailable}`, () => {});
  });
}
