/**
 * Cost accounting on PostgreSQL: the shared contract (test/telemetry/costs-contract.ts) — the ledger written by the
 * batched commit statement, the report's SQL, the migration's backfill, and runs end to end.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe } from "vitest";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { backfillContract, ledgerContract, modelFor, runtimeContract } from "../telemetry/costs-contract.js";
import { createTestDatabase } from "./database.js";

const ledgerDb = await createTestDatabase("outpost_costs");
const runtimeDb = await createTestDatabase("outpost_costs_rt");
const migrationDb = await createTestDatabase("outpost_costs_mig");

describe.skipIf(!ledgerDb.reachable)("the cost ledger on PostgreSQL", () => {
  let store: Store;
  beforeAll(async () => {
    store = await openStore({ dataDir: "unused", databaseUrl: ledgerDb.url });
  });
  afterAll(async () => {
    await store?.close();
    await ledgerDb.drop();
  });
  ledgerContract(() => store);
});

describe.skipIf(!migrationDb.reachable)("the ledger's migration on PostgreSQL", () => {
  afterAll(() => migrationDb.drop());
  backfillContract(
    () => new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: migrationDb.url, max: 2 }) }) }),
  );
});

describe.skipIf(!runtimeDb.reachable)("runs on PostgreSQL", () => {
  const started: Outpost[] = [];
  afterAll(async () => {
    await Promise.all(started.map((o) => o.close()));
    await runtimeDb.drop();
  });
  runtimeContract(async (p) => {
    const o = await startOutpost({
      project: p,
      dataDir: mkdtempSync(join(tmpdir(), "outpost-pg-costs-")),
      databaseUrl: runtimeDb.url,
      modelFor,
      pollMs: 50,
    });
    started.push(o);
    return o;
  });
});
