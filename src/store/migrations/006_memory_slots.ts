import type { Kysely } from "kysely";

/**
 * Memory: an index on (workspace, scope, kind). Recall asks how many vectors a scope's facts or its knowledge chunks
 * have (ann.ts: exact search below 2,000, an index above); without this, the question for a kind a scope has none of
 * scanned every item of the scope — 280 ms per vector recall at a million items.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex("memory_items_slot").on("memory_items").columns(["workspace", "scope", "kind"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("memory_items_slot").execute();
}
