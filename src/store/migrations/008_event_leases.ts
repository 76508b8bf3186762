import type { Kysely } from "kysely";

/**
 * Each event records the lease it was committed under (schema.ts EventsTable.lease): who held the run when is
 * in its log, and that no two workers executed it at once can be checked there (their leases never interleave).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("events").addColumn("lease", "text").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("events").dropColumn("lease").execute();
}
