/** The memory store's contract on PostgreSQL (tsvector full text, vectors in bytea). */
import { afterAll, describe } from "vitest";
import { openStore } from "../../src/store/index.js";
import { describeMemoryStore } from "../memory/store-contract.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_memory");
afterAll(() => db.drop());

describe.skipIf(!db.reachable)("PostgreSQL", () => {
  describeMemoryStore("postgres", () => openStore({ dataDir: "unused", databaseUrl: db.url }));
});
