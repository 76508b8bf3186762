import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("sessions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("agent", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("next_seq", "integer", (c) => c.notNull().defaultTo(1))
    .execute();

  await db.schema
    .createTable("runs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("agent", "text", (c) => c.notNull())
    .addColumn("session_id", "text", (c) => c.notNull().references("sessions.id"))
    .addColumn("session_seq", "integer", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("input", "text", (c) => c.notNull())
    .addColumn("output", "text")
    .addColumn("error_code", "text")
    .addColumn("error_message", "text")
    .addColumn("input_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("output_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cost_usd", "double precision", (c) => c.notNull().defaultTo(0))
    .addColumn("steps", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("waiting_for", "text")
    .addColumn("wake_at", "bigint")
    .addColumn("lease_owner", "text")
    .addColumn("lease_token", "text")
    .addColumn("lease_expires_at", "bigint")
    .addColumn("last_seq", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("cancel_requested", "text")
    .addColumn("idempotency_key", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("completed_at", "bigint")
    .execute();
  await db.schema.createIndex("runs_workspace_idem").on("runs").columns(["workspace", "idempotency_key"]).unique().execute();
  await db.schema.createIndex("runs_session_order").on("runs").columns(["session_id", "session_seq"]).unique().execute();
  // Claiming reads three kinds of runnable runs, each through its own index (see claimRuns).
  await db.schema.createIndex("runs_queue").on("runs").columns(["status", "id"]).execute();
  await db.schema.createIndex("runs_wake").on("runs").columns(["status", "wake_at"]).execute();
  await db.schema.createIndex("runs_lease").on("runs").columns(["status", "lease_expires_at"]).execute();
  await db.schema.createIndex("runs_workspace_agent").on("runs").columns(["workspace", "agent", "id"]).execute();

  await db.schema
    .createTable("events")
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("seq", "integer", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("data", "text", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .addColumn("v", "integer", (c) => c.notNull())
    .addPrimaryKeyConstraint("events_pk", ["run_id", "seq"])
    .execute();

  await db.schema
    .createTable("approvals")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("call_id", "text", (c) => c.notNull())
    .addColumn("agent", "text", (c) => c.notNull())
    .addColumn("tool", "text", (c) => c.notNull())
    .addColumn("arguments", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("reason", "text")
    .addColumn("decided_by", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("decided_at", "bigint")
    .execute();
  await db.schema.createIndex("approvals_status").on("approvals").columns(["workspace", "status", "created_at"]).execute();
  await db.schema.createIndex("approvals_run").on("approvals").columns(["run_id"]).execute();
  void sql;
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ["approvals", "events", "runs", "sessions"]) await db.schema.dropTable(t).execute();
}
