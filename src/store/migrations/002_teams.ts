import { type Kysely, sql } from "kysely";

/** Delegation trees (parent/root/depth on runs, a notice flag for parents) and artifacts (large tool outputs). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("runs").addColumn("parent_run_id", "text").execute();
  await db.schema.alterTable("runs").addColumn("parent_call_id", "text").execute();
  await db.schema.alterTable("runs").addColumn("root_run_id", "text").execute();
  await db.schema
    .alterTable("runs")
    .addColumn("depth", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  // 0 for a child until its result is in its parent's log (children still 0 after they ended are notified again);
  // 1 otherwise, so runs from before this migration and top-level runs stay out of the partial index below.
  await db.schema
    .alterTable("runs")
    .addColumn("parent_notified", "integer", (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema.createIndex("runs_parent").on("runs").columns(["parent_run_id"]).execute();
  await db.schema.createIndex("runs_root").on("runs").columns(["root_run_id"]).execute();
  await db.schema.createIndex("runs_notice").on("runs").columns(["status", "id"]).where(sql.ref("parent_notified"), "=", 0).execute();

  await db.schema
    .createTable("artifacts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("root_run_id", "text", (c) => c.notNull())
    .addColumn("call_id", "text", (c) => c.notNull())
    .addColumn("tool", "text", (c) => c.notNull())
    .addColumn("content", "text", (c) => c.notNull())
    .addColumn("size", "integer", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("artifacts_run").on("artifacts").columns(["run_id"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("artifacts").execute();
  for (const i of ["runs_parent", "runs_root", "runs_notice"]) await db.schema.dropIndex(i).execute();
  for (const c of ["parent_run_id", "parent_call_id", "root_run_id", "depth", "parent_notified"]) {
    await db.schema.alterTable("runs").dropColumn(c).execute();
  }
}
