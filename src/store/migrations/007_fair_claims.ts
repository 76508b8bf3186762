import { type Kysely, sql } from "kysely";

/**
 * Fair claims (store/fair-claim.ts): workers find which workspaces have queued runs, and each one's
 * oldest, through this small partial index, without reading a flooding workspace's whole queue.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex("runs_queued_by_workspace")
    .on("runs")
    .columns(["workspace", "id"])
    .where(sql.ref("status"), "=", "queued")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("runs_queued_by_workspace").execute();
}
