import type { Kysely } from "kysely";

/**
 * Triggers (issue 6): what starts runs without a person asking — schedules, webhooks, events between agents. A
 * trigger's state (a schedule's cursor: the last occurrence it has dealt with) and each firing: when, what it started
 * or why it was skipped. A firing's key is unique within its trigger (a schedule's occurrence, a webhook's delivery
 * id), which is what makes each fire once across restarts and processes.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("trigger_state")
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("trigger", "text", (c) => c.notNull())
    .addColumn("cursor", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("trigger_state_pk", ["workspace", "trigger"])
    .execute();
  await db.schema
    .createTable("trigger_firings")
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("trigger", "text", (c) => c.notNull())
    .addColumn("firing_key", "text", (c) => c.notNull())
    /** When it was due (a schedule's occurrence) or arrived (a webhook delivery). */
    .addColumn("fire_at", "bigint", (c) => c.notNull())
    /** pending (committed, its run not yet created), started, skipped. */
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("run_id", "text")
    .addColumn("detail", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("trigger_firings_pk", ["workspace", "trigger", "firing_key"])
    .execute();
  await db.schema.createIndex("trigger_firings_by_time").on("trigger_firings").columns(["workspace", "trigger", "fire_at"]).execute();
  await db.schema.createIndex("trigger_firings_pending").on("trigger_firings").columns(["status", "created_at"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["trigger_firings", "trigger_state"]) await db.schema.dropTable(t).execute();
}
