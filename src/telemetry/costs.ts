/**
 * Cost accounting: what model calls cost, summed by agent, team, model, purpose and period, for one workspace
 * (`GET /v1/costs`, `outpost costs`). It reads the cost ledger (store model_usage), which the run commit writes with
 * each model.responded and context.compacted event, so the figures are the logs' figures, to the call.
 *
 * - Periods are UTC: a day, a week (Monday to Sunday, labelled by its Monday's date) or a calendar month. `from` is
 *   inclusive, `to` exclusive; a date alone as `to` includes that whole day (a month, that whole month).
 * - Teams are the project's teams as defined now (teams/*.yaml; lead and members, as budgets count them): an agent
 *   in two teams counts in both, an agent in none under `(none)`. Items grouped by team may therefore add up to more
 *   than the totals, which count every call once.
 * - `runs` counts distinct runs (a delegated child run is a run of its own); `calls` counts model calls.
 *
 * The grouping is done by the database, in SQL both drivers read alike (integer arithmetic on epoch milliseconds
 * for days and weeks, month boundaries computed here); labels and order are made here, the same for both.
 */
import { type RawBuilder, sql } from "kysely";
import { OutpostError } from "../core/errors.js";
import { parseDuration } from "../definitions/duration.js";
import { teamsOf } from "../security/budgets/index.js";
import type { DomainStorage } from "../store/types.js";

export const COST_DIMENSIONS = ["agent", "team", "model", "purpose"] as const;
export type CostDimension = (typeof COST_DIMENSIONS)[number];
export const COST_PERIODS = ["day", "week", "month"] as const;
export type CostPeriod = (typeof COST_PERIODS)[number];
/** Where the spend of agents that belong to no team is counted when grouping or filtering by team. */
export const NO_TEAM = "(none)";

export interface CostQuery {
  workspace: string;
  groupBy?: readonly CostDimension[];
  period?: CostPeriod | null;
  /** Epoch ms, inclusive. */
  from?: number | null;
  /** Epoch ms, exclusive. */
  to?: number | null;
  agents?: readonly string[];
  /** Team names (or NO_TEAM): calls of the agents in them. */
  teams?: readonly string[];
  models?: readonly string[];
}

export interface CostFigures {
  runs: number;
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

/** One group: its keys (those grouped by; `period` when a period was asked) and its figures. */
export interface CostRow extends CostFigures {
  /** `2026-12-01` (day), `2026-11-30` (the week's Monday), `2026-12` (month). */
  period?: string;
  agent?: string;
  team?: string;
  model?: string;
  /** `step` (an agent's model call) or `compaction` (a summary of older history). */
  purpose?: string;
}

export interface CostReport {
  /** The bounds applied (ISO), null where open. */
  from: string | null;
  to: string | null;
  group_by: CostDimension[];
  period: CostPeriod | null;
  /** Ordered by period, then most expensive first, then by key. */
  items: CostRow[];
  /** Every call matching the filters once (not the sum of items when grouped by team). */
  totals: CostFigures;
}

/** Costs as API clients read them (the HTTP client; the server answers GET /v1/costs with the same report). */
export interface CostsApi {
  getCosts(query?: CostQueryText): Promise<CostReport>;
}

/** A team as the definitions give it. */
export interface TeamMembers {
  name: string;
  lead: string;
  members: readonly string[];
}

const DAY_MS = 86_400_000;

/** The cost ledger of one database, read with the teams as the project defines them now. */
export class CostLedger {
  constructor(
    private readonly storage: Pick<DomainStorage, "db">,
    private readonly teams: () => Iterable<TeamMembers>,
  ) {}

  async report(q: CostQuery): Promise<CostReport> {
    const groupBy = [...new Set(q.groupBy ?? [])];
    const period = q.period ?? null;
    const teams = [...this.teams()];
    const membership = memberships(teams);
    const from = q.from ?? null;
    const to = q.to ?? null;
    checkTeams(q.teams ?? [], teams);

    const where: RawBuilder<unknown>[] = [sql`u.workspace = ${q.workspace}`];
    if (from !== null) where.push(sql`u.at >= ${from}`);
    if (to !== null) where.push(sql`u.at < ${to}`);
    if (q.agents && q.agents.length > 0) where.push(sql`u.agent IN (${sql.join(q.agents)})`);
    if (q.models && q.models.length > 0) where.push(sql`u.model IN (${sql.join(q.models)})`);
    // Grouped by team, the filter keeps those teams' rows; otherwise it keeps their agents' calls, each once.
    const byTeam = groupBy.includes("team");
    if (q.teams && q.teams.length > 0 && !byTeam) where.push(teamFilter(q.teams, membership));

    const db = this.storage.db;
    const totals = figures(
      (
        await sql<AggregateRow>`SELECT ${aggregates()} FROM (SELECT u.run_id, u.input_tokens, u.output_tokens, u.cost_usd
          FROM model_usage u WHERE ${sql.join(where, sql` AND `)}) b`.execute(db)
      ).rows[0],
    );

    const bucket = period ? await this.bucketOf(period, where) : null;
    const columns: RawBuilder<unknown>[] = [sql`u.run_id`, sql`u.input_tokens`, sql`u.output_tokens`, sql`u.cost_usd`];
    const keys: string[] = [];
    for (const d of groupBy) {
      keys.push(d);
      if (d === "team") columns.push(sql`COALESCE(m.team, ${NO_TEAM}) AS team`);
      else columns.push(sql`${sql.ref(`u.${d}`)} AS ${sql.ref(d)}`);
    }
    if (bucket) {
      keys.push("bucket");
      columns.push(sql`${bucket.expression} AS bucket`);
    }
    const join = byTeam ? sql`LEFT JOIN (${membershipTable(membership)}) m ON m.agent = u.agent` : sql``;
    const outerWhere = byTeam && q.teams && q.teams.length > 0 ? sql`WHERE b.team IN (${sql.join(q.teams)})` : sql``;
    const keyRefs = keys.map((k) => sql.ref(`b.${k}`));
    const grouped =
      keys.length === 0
        ? []
        : (
            await sql<AggregateRow & Record<string, unknown>>`
              SELECT ${sql.join(keyRefs)}, ${aggregates()}
              FROM (SELECT ${sql.join(columns)} FROM model_usage u ${join} WHERE ${sql.join(where, sql` AND `)}) b
              ${outerWhere}
              GROUP BY ${sql.join(keyRefs)}`.execute(db)
          ).rows;

    const items: CostRow[] =
      keys.length === 0
        ? totals.calls > 0
          ? [{ ...totals }]
          : []
        : grouped.map((r) => {
            const row: CostRow = { ...figures(r) };
            if (bucket) row.period = bucket.label(Number(r.bucket));
            for (const d of groupBy) row[d] = String(r[d]);
            return orderKeys(row);
          });
    items.sort((a, b) => compareRows(a, b, groupBy));
    return { ...emptyCostReport(q), items, totals };
  }

  /** The SQL that numbers a call's period, and the label of each number. */
  private async bucketOf(
    period: CostPeriod,
    where: RawBuilder<unknown>[],
  ): Promise<{ expression: RawBuilder<unknown>; label: (n: number) => string }> {
    const day = sql`CAST(u.at / ${sql.lit(DAY_MS)} AS BIGINT)`;
    if (period === "day") return { expression: day, label: (n) => isoDate(n * DAY_MS) };
    // 1970-01-01 was a Thursday: day d is in the week starting on Monday 7w − 3, w = ⌊(d + 3) / 7⌋.
    if (period === "week") return { expression: sql`CAST((${day} + 3) / 7 AS BIGINT)`, label: (n) => isoDate((7 * n - 3) * DAY_MS) };
    // Months have no arithmetic both SQL dialects share: they are numbered by their boundaries, over the months the
    // matching calls span (within from and to).
    const span = (
      await sql<{ lo: number | string | null; hi: number | string | null }>`
        SELECT min(u.at) AS lo, max(u.at) AS hi FROM model_usage u WHERE ${sql.join(where, sql` AND `)}`.execute(this.storage.db)
    ).rows[0];
    if (span?.lo == null || span.hi == null) return { expression: sql`0`, label: () => "" }; // nothing to group
    const lo = Number(span.lo);
    const hi = Number(span.hi) + 1;
    const months: number[] = []; // the start of each month the range touches
    const first = new Date(lo);
    for (let m = Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), 1); m < hi; ) {
      months.push(m);
      const d = new Date(m);
      m = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    }
    const whens = months.slice(1).map((start, i) => sql`WHEN u.at < ${start} THEN ${sql.lit(i)}`);
    const expression = whens.length === 0 ? sql`0` : sql`CASE ${sql.join(whens, sql` `)} ELSE ${sql.lit(months.length - 1)} END`;
    return { expression, label: (n) => isoDate(months[n] ?? months[0]).slice(0, 7) };
  }
}

/** The report of a query nothing matches (the CLI's, where there is no data yet). */
export function emptyCostReport(q: Omit<CostQuery, "workspace">): CostReport {
  return {
    from: q.from == null ? null : new Date(q.from).toISOString(),
    to: q.to == null ? null : new Date(q.to).toISOString(),
    group_by: [...new Set(q.groupBy ?? [])],
    period: q.period ?? null,
    items: [],
    totals: { runs: 0, calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 },
  };
}

/** Refuses a team the project does not define (a typo would otherwise read as no spend). */
export function checkTeams(names: readonly string[], teams: readonly TeamMembers[]): void {
  const known = new Set(teams.map((t) => t.name));
  const unknown = names.find((t) => t !== NO_TEAM && !known.has(t));
  if (unknown === undefined) return;
  throw new OutpostError(
    "invalid_request",
    `team: no team "${unknown}" in the project`,
    known.size > 0 ? `known teams: ${[...known].sort().join(", ")} (or ${NO_TEAM})` : `the project defines no teams: use ${NO_TEAM}`,
  );
}

interface AggregateRow {
  runs: number | string | null;
  calls: number | string | null;
  input_tokens: number | string | null;
  output_tokens: number | string | null;
  cost_usd: number | string | null;
}

const aggregates = () =>
  sql`count(DISTINCT b.run_id) AS runs, count(*) AS calls, sum(b.input_tokens) AS input_tokens,
    sum(b.output_tokens) AS output_tokens, sum(b.cost_usd) AS cost_usd`;

/** Figures as numbers (PostgreSQL answers sums of bigint as text), USD rounded past float noise so that both
 * databases, which may add in different orders, answer the same. */
function figures(r: AggregateRow | undefined): CostFigures {
  return {
    runs: Number(r?.runs ?? 0),
    calls: Number(r?.calls ?? 0),
    input_tokens: Number(r?.input_tokens ?? 0),
    output_tokens: Number(r?.output_tokens ?? 0),
    cost_usd: roundUsd(Number(r?.cost_usd ?? 0)),
  };
}

export const roundUsd = (usd: number) => Math.round(usd * 1e12) / 1e12;

/** [agent, team] for every agent in a team (lead or member), as budgets count them (teamsOf). */
function memberships(teams: readonly TeamMembers[]): [string, string][] {
  const agents = new Set(teams.flatMap((t) => [t.lead, ...t.members]));
  return [...agents].sort().flatMap((a) => teamsOf(teams, a).map((t): [string, string] => [a, t]));
}

/** The membership pairs as a derived table both dialects read (parameters cast, so PostgreSQL knows their type). */
function membershipTable(pairs: [string, string][]): RawBuilder<unknown> {
  if (pairs.length === 0) return sql`SELECT CAST(NULL AS TEXT) AS agent, CAST(NULL AS TEXT) AS team WHERE 1 = 0`;
  return sql.join(
    pairs.map(([agent, team]) => sql`SELECT CAST(${agent} AS TEXT) AS agent, CAST(${team} AS TEXT) AS team`),
    sql` UNION ALL `,
  );
}

/** Calls of the agents in `teams` (NO_TEAM: agents in no team). */
function teamFilter(teams: readonly string[], pairs: [string, string][]): RawBuilder<unknown> {
  const inTeams = [...new Set(pairs.filter(([, t]) => teams.includes(t)).map(([a]) => a))];
  const inAny = [...new Set(pairs.map(([a]) => a))];
  const parts: RawBuilder<unknown>[] = [];
  if (inTeams.length > 0) parts.push(sql`u.agent IN (${sql.join(inTeams)})`);
  if (teams.includes(NO_TEAM)) parts.push(inAny.length > 0 ? sql`u.agent NOT IN (${sql.join(inAny)})` : sql`1 = 1`);
  return parts.length === 0 ? sql`1 = 0` : sql`(${sql.join(parts, sql` OR `)})`;
}

const KEY_ORDER = ["period", "agent", "team", "model", "purpose"] as const;

/** Keys first (period, then the dimensions), figures after: what a reader of the JSON expects. */
function orderKeys(row: CostRow): CostRow {
  const out: Record<string, unknown> = {};
  for (const k of KEY_ORDER) if (row[k] !== undefined) out[k] = row[k];
  for (const k of ["runs", "calls", "input_tokens", "output_tokens", "cost_usd"] as const) out[k] = row[k];
  return out as unknown as CostRow;
}

function compareRows(a: CostRow, b: CostRow, groupBy: readonly CostDimension[]): number {
  if ((a.period ?? "") !== (b.period ?? "")) return (a.period ?? "") < (b.period ?? "") ? -1 : 1;
  if (a.cost_usd !== b.cost_usd) return b.cost_usd - a.cost_usd;
  for (const d of groupBy) {
    const x = a[d] ?? "";
    const y = b[d] ?? "";
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** A cost query as the API and the CLI take it: text, lists as comma lists or repeated. */
export interface CostQueryText {
  group_by?: string | readonly string[];
  period?: string;
  from?: string;
  to?: string;
  agent?: string | readonly string[];
  team?: string | readonly string[];
  model?: string | readonly string[];
}

/** Checks and reads a query's text; a mistake is an invalid_request naming the parameter and how to fix it. */
export function parseCostQuery(text: CostQueryText, now = Date.now()): Omit<CostQuery, "workspace"> {
  const groupBy = list(text.group_by, "group_by");
  for (const d of groupBy) {
    if (!(COST_DIMENSIONS as readonly string[]).includes(d)) {
      const asPeriod = (COST_PERIODS as readonly string[]).includes(d);
      throw new OutpostError(
        "invalid_request",
        `group_by: "${d}" is not something costs are grouped by — use ${COST_DIMENSIONS.join(", ")}`,
        asPeriod ? `periods are asked apart: period=${d}` : "e.g. group_by=agent,model (and period=day|week|month for time)",
      );
    }
  }
  const period = text.period === undefined || text.period === "" ? null : text.period;
  if (period !== null && !(COST_PERIODS as readonly string[]).includes(period)) {
    throw new OutpostError("invalid_request", `period: "${period}" is not a period — use day, week or month`, "e.g. period=month");
  }
  const from = text.from ? parseTime(text.from, "from", now) : null;
  const to = text.to ? parseTime(text.to, "to", now) : null;
  if (from !== null && to !== null && from >= to) {
    throw new OutpostError(
      "invalid_request",
      `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`,
      "to is exclusive, but a date alone includes that whole day: from=2026-12-01&to=2026-12-31 is all of December",
    );
  }
  const agents = list(text.agent, "agent");
  const teams = list(text.team, "team");
  const models = list(text.model, "model");
  return {
    groupBy: groupBy as CostDimension[],
    period: period as CostPeriod | null,
    from,
    to,
    ...(agents.length > 0 ? { agents } : {}),
    ...(teams.length > 0 ? { teams } : {}),
    ...(models.length > 0 ? { models } : {}),
  };
}

function list(value: string | readonly string[] | undefined, field: string): string[] {
  if (value === undefined) return [];
  const all = (typeof value === "string" ? [value] : value).flatMap((v) => v.split(",")).map((v) => v.trim());
  if (all.some((v) => v.includes("\u0000"))) throw new OutpostError("invalid_request", `${field}: must not contain NUL characters`);
  if (all.length > 100) throw new OutpostError("invalid_request", `${field}: at most 100 values`);
  return [...new Set(all.filter(Boolean))];
}

const TIME_HINT = "use a date (2026-12-01), a month (2026-12), an ISO time (2026-12-01T09:00Z) or a duration back from now (7d, 12h)";

/**
 * `from`/`to` as epoch ms: a duration back from now (`7d`), a UTC date or month, or an ISO time (UTC unless it
 * names a zone). A date or month as `to` includes it: its end is the start of the next.
 */
export function parseTime(value: string, field: "from" | "to", now = Date.now()): number {
  const v = value.trim();
  const date = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(v);
  if (date) {
    const [y, m, d] = [Number(date[1]), Number(date[2]), date[3] === undefined ? null : Number(date[3])];
    const start = Date.UTC(y, m - 1, d ?? 1);
    const check = new Date(start);
    if (m < 1 || m > 12 || (d !== null && check.getUTCDate() !== d)) {
      throw new OutpostError("invalid_request", `${field}: "${value}" is not a date`, TIME_HINT);
    }
    if (field === "from") return start;
    return d === null ? Date.UTC(y, m, 1) : Date.UTC(y, m - 1, d + 1);
  }
  if (/^\d{4}-\d{2}-\d{2}T/.test(v)) {
    const at = Date.parse(/(Z|[+-]\d{2}:?\d{2})$/i.test(v) ? v : `${v}Z`);
    if (!Number.isNaN(at)) return at;
  } else if (/^\d/.test(v)) {
    try {
      return now - parseDuration(v);
    } catch {
      // not a duration either: said below
    }
  }
  throw new OutpostError("invalid_request", `${field}: "${value}" is neither a date, a time nor a duration`, TIME_HINT);
}
