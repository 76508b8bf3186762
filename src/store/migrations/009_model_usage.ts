import type { Kysely } from "kysely";

/**
 * The cost ledger (schema.ts ModelUsageTable): one row per model call, written by the run commit with the event that
 * records it, so spend can be summed by agent, team, model and period without reading every run's log
 * (telemetry/costs.ts). Keyed by the event (run, seq); read by workspace and time.
 *
 * Calls committed before this migration are taken from the logs once, here: each model.responded and
 * context.compacted event becomes its row, the agent followed through the run's handoffs. The JSON is parsed in
 * TypeScript, so both drivers fill it alike. Self-contained: a migration never changes with the code around it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("model_usage")
    .addColumn("workspace", "text", (c) => c.notNull())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("seq", "integer", (c) => c.notNull())
    .addColumn("agent", "text", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .addColumn("input_tokens", "bigint", (c) => c.notNull())
    .addColumn("output_tokens", "bigint", (c) => c.notNull())
    .addColumn("cost_usd", "double precision", (c) => c.notNull())
    .addPrimaryKeyConstraint("model_usage_pk", ["run_id", "seq"])
    .execute();
  await db.schema.createIndex("model_usage_by_time").on("model_usage").columns(["workspace", "at"]).execute();
  await backfill(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("model_usage").execute();
}

const PAGE = 2_000;
/** Rows per insert: 10 columns each, well under SQLite's and PostgreSQL's parameter limits. */
const INSERT_CHUNK = 500;

interface EventRow {
  run_id: string;
  seq: number;
  type: string;
  data: string;
  at: number;
  workspace: string;
  agent: string;
}

/** Every model call already in the logs, a page of events at a time in (run, seq) order. */
async function backfill(db: Kysely<any>): Promise<void> {
  let after: { runId: string; seq: number } | null = null;
  /** The agent acting in the run being read (a handoff passes the run on). */
  let current = { runId: "", agent: "" };
  for (;;) {
    let q = db
      .selectFrom("events as e")
      .innerJoin("runs as r", "r.id", "e.run_id")
      .select(["e.run_id", "e.seq", "e.type", "e.data", "e.at", "r.workspace", "r.agent"])
      .where("e.type", "in", ["model.responded", "context.compacted", "run.handed_off"]);
    if (after) {
      const { runId, seq } = after;
      q = q.where((eb) => eb.or([eb("e.run_id", ">", runId), eb.and([eb("e.run_id", "=", runId), eb("e.seq", ">", seq)])]));
    }
    const rows = (await q.orderBy("e.run_id").orderBy("e.seq").limit(PAGE).execute()) as EventRow[];
    if (rows.length === 0) return;
    const entries: Record<string, unknown>[] = [];
    for (const r of rows) {
      if (r.run_id !== current.runId) current = { runId: r.run_id, agent: r.agent };
      const data = JSON.parse(r.data) as {
        to?: string;
        model?: string;
        usage?: { input_tokens?: number; output_tokens?: number };
        cost_usd?: number;
      };
      if (r.type === "run.handed_off") {
        if (typeof data.to === "string") current.agent = data.to;
        continue;
      }
      entries.push({
        workspace: r.workspace,
        run_id: r.run_id,
        seq: Number(r.seq),
        agent: current.agent,
        model: String(data.model ?? "unknown"),
        purpose: r.type === "context.compacted" ? "compaction" : "step",
        at: Number(r.at),
        input_tokens: Number(data.usage?.input_tokens ?? 0),
        output_tokens: Number(data.usage?.output_tokens ?? 0),
        cost_usd: Number(data.cost_usd ?? 0),
      });
    }
    for (let i = 0; i < entries.length; i += INSERT_CHUNK) {
      await db
        .insertInto("model_usage")
        .values(entries.slice(i, i + INSERT_CHUNK))
        .execute();
    }
    const last = rows[rows.length - 1];
    after = { runId: last.run_id, seq: Number(last.seq) };
    if (rows.length < PAGE) return;
  }
}
