import { type Kysely, PostgresAdapter, sql } from "kysely";

/**
 * Memory (issue 5): scoped items with their version history, the text and vector indexes recall reads, and the
 * business-context cache. Full text differs by engine: SQLite keeps a contentless FTS5 table (rowid = item num)
 * written with the item; PostgreSQL derives a tsvector column from the item and indexes it with GIN.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  await db.schema
    .createTable("memory_items")
    // The item's number labels it in the full-text and vector indexes (integers, unlike ids).
    .addColumn("num", postgres ? "bigserial" : "integer", (c) => (postgres ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn("id", "text", (c) => c.notNull().unique())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("scope", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("subject", "text")
    .addColumn("key", "text")
    .addColumn("text", "text", (c) => c.notNull())
    .addColumn("tags", "text", (c) => c.notNull())
    .addColumn("classification", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("author", "text", (c) => c.notNull())
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint")
    /** The idempotency key of the write that made this version: a retried tool call finds its write done. */
    .addColumn("write_key", "text")
    .execute();
  // One current item per (scope, subject, key): a new fact with the same subject and key supersedes the old one.
  await sql`CREATE UNIQUE INDEX memory_items_key ON memory_items (workspace, scope, COALESCE(subject, ''), key) WHERE key IS NOT NULL`.execute(
    db,
  );
  await db.schema.createIndex("memory_items_scope").on("memory_items").columns(["workspace", "scope", "updated_at"]).execute();
  await db.schema.createIndex("memory_items_subject").on("memory_items").columns(["workspace", "subject"]).execute();
  await sql`CREATE INDEX memory_items_expiry ON memory_items (expires_at) WHERE expires_at IS NOT NULL`.execute(db);
  await sql`CREATE INDEX memory_items_write_key ON memory_items (workspace, write_key) WHERE write_key IS NOT NULL`.execute(db);

  await db.schema
    .createTable("memory_versions")
    .addColumn("item_id", "text", (c) => c.notNull())
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("scope", "text", (c) => c.notNull())
    .addColumn("subject", "text")
    .addColumn("key", "text")
    .addColumn("text", "text", (c) => c.notNull())
    .addColumn("tags", "text", (c) => c.notNull())
    .addColumn("classification", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("author", "text", (c) => c.notNull())
    .addColumn("written_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint")
    .addColumn("superseded_at", "bigint", (c) => c.notNull())
    .addColumn("superseded_by", "text", (c) => c.notNull())
    .addColumn("write_key", "text")
    .addPrimaryKeyConstraint("memory_versions_pk", ["item_id", "version"])
    .execute();
  await db.schema.createIndex("memory_versions_subject").on("memory_versions").columns(["workspace", "subject"]).execute();
  await sql`CREATE INDEX memory_versions_write_key ON memory_versions (workspace, write_key) WHERE write_key IS NOT NULL`.execute(db);

  await db.schema
    .createTable("memory_vectors")
    .addColumn("num", "bigint", (c) => c.primaryKey())
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("embedder", "text", (c) => c.notNull())
    .addColumn("vector", postgres ? "bytea" : "blob", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("memory_vectors_workspace").on("memory_vectors").columns(["workspace", "embedder"]).execute();

  if (postgres) {
    await sql`ALTER TABLE memory_items ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text || ' ' || tags || ' ' || COALESCE(subject, ''))) STORED`.execute(
      db,
    );
    await sql`CREATE INDEX memory_items_tsv ON memory_items USING GIN (tsv)`.execute(db);
  } else {
    // Contentless: the text lives in memory_items; `meta` holds filter tokens (workspace, scope, subject, kind) so a
    // scoped query is one FTS lookup instead of a join over every match.
    await sql`CREATE VIRTUAL TABLE memory_fts USING fts5(body, meta, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')`.execute(
      db,
    );
  }

  // Business context: an entity resolved through a connector tool, shared by every agent of the workspace.
  await db.schema
    .createTable("context_entities")
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("entity_id", "text", (c) => c.notNull())
    /** `customer:1042`: what erasure of a subject finds. */
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("data", "text", (c) => c.notNull())
    .addColumn("classification", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("fetched_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("context_entities_pk", ["workspace", "type", "entity_id"])
    .execute();
  await db.schema.createIndex("context_entities_subject").on("context_entities").columns(["workspace", "subject"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  if (!postgres) await sql`DROP TABLE IF EXISTS memory_fts`.execute(db);
  for (const t of ["context_entities", "memory_vectors", "memory_versions", "memory_items"]) await db.schema.dropTable(t).execute();
}
