import type { Kysely } from "kysely";

/**
 * Security and governance (issue 4): tenants and API keys, the audit chain (an outbox filled in the same
 * transaction as run commits, chained in order by one writer), the secret vault, budget counters and
 * reservations, and approvals bound to the exact action they allow.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("workspaces")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("display_name", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("api_keys")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("prefix", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull().unique())
    .addColumn("roles", "text", (c) => c.notNull())
    .addColumn("groups", "text", (c) => c.notNull())
    .addColumn("created_by", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("last_used_at", "bigint")
    .addColumn("expires_at", "bigint")
    .addColumn("revoked_at", "bigint")
    .execute();
  await db.schema.createIndex("api_keys_workspace").on("api_keys").columns(["workspace", "created_at"]).execute();

  await db.schema
    .createTable("audit_outbox")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("run_id", "text")
    .addColumn("data", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("audit_log")
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("run_id", "text")
    .addColumn("data", "text", (c) => c.notNull())
    .addColumn("prev_hash", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("audit_log_pk", ["workspace", "seq"])
    .execute();
  await db.schema.createIndex("audit_log_kind").on("audit_log").columns(["workspace", "kind", "at"]).execute();

  await db.schema
    .createTable("audit_checkpoints")
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .addColumn("signature", "text", (c) => c.notNull())
    .addColumn("key_id", "text", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("audit_checkpoints_pk", ["workspace", "seq"])
    .execute();

  await db.schema
    .createTable("secrets")
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("ciphertext", "text", (c) => c.notNull())
    .addColumn("nonce", "text", (c) => c.notNull())
    .addColumn("tag", "text", (c) => c.notNull())
    .addColumn("key_id", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("updated_by", "text")
    .addPrimaryKeyConstraint("secrets_pk", ["workspace", "name"])
    .execute();

  await db.schema
    .createTable("budget_counters")
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("scope", "text", (c) => c.notNull())
    .addColumn("period", "text", (c) => c.notNull())
    .addColumn("usd_spent", "double precision", (c) => c.notNull().defaultTo(0))
    .addColumn("usd_reserved", "double precision", (c) => c.notNull().defaultTo(0))
    .addColumn("tokens_spent", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("tokens_reserved", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("budget_counters_pk", ["workspace", "scope", "period"])
    .execute();

  await db.schema
    .createTable("budget_reservations")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("counters", "text", (c) => c.notNull())
    .addColumn("usd", "double precision", (c) => c.notNull())
    .addColumn("tokens", "bigint", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("budget_reservations_age").on("budget_reservations").columns(["created_at"]).execute();

  // Approvals: bound to the exact action (hash), expiring, used once, never decided by who asked.
  for (const [column, type] of [
    ["call_key", "text"],
    ["action_hash", "text"],
    ["expires_at", "bigint"],
    ["requested_by", "text"],
    ["approver_role", "text"],
    ["approver_group", "text"],
    ["policies", "text"],
    ["used_at", "bigint"],
  ] as const) {
    await db.schema.alterTable("approvals").addColumn(column, type).execute();
  }
  // Who a run acts on behalf of (the person or key that started it; children inherit it).
  await db.schema.alterTable("runs").addColumn("started_by", "text").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("runs").dropColumn("started_by").execute();
  for (const c of ["call_key", "action_hash", "expires_at", "requested_by", "approver_role", "approver_group", "policies", "used_at"]) {
    await db.schema.alterTable("approvals").dropColumn(c).execute();
  }
  for (const t of [
    "budget_reservations",
    "budget_counters",
    "secrets",
    "audit_checkpoints",
    "audit_log",
    "audit_outbox",
    "api_keys",
    "workspaces",
  ]) {
    await db.schema.dropTable(t).execute();
  }
}
