/**
 * `outpost costs`: what model calls cost, by agent, team, model or purpose, per day, week or month (UTC), from a
 * server (GET /v1/costs) or the local store (the same query, telemetry/costs.ts).
 */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { OutpostError } from "../../core/errors.js";
import type { CostQueryText, CostReport } from "../../telemetry/costs.js";
import { addConnectionOptions, type ConnectionOptions, localProject, serverUrl } from "../connect.js";
import { UsageError } from "../errors.js";
import { formatInt, formatUsd, out, table } from "../output.js";

interface CostsOptions extends ConnectionOptions {
  by: string[];
  period?: string;
  since?: string;
  until?: string;
  agent: string[];
  team: string[];
  model: string[];
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];
/** The API's parameter for each flag, to say mistakes in the flags' words. */
const FLAGS: Record<string, string> = {
  group_by: "--by",
  period: "--period",
  from: "--since",
  to: "--until",
  agent: "--agent",
  team: "--team",
  model: "--model",
};
const EXAMPLE = "e.g. outpost costs --by agent,model --period day --since 30d";

export function registerCosts(program: Command): void {
  const cmd = program
    .command("costs")
    .description("show what model calls cost, by agent, team, model or purpose, per day, week or month (UTC)")
    .option("--by <what>", "group by agent, team, model, purpose (a comma list, or repeat); none for totals only", collect, [])
    .option("--period <period>", "also group by day, week (from Monday) or month")
    .option("--since <when>", "from: 30d, 12h, a date (2026-12-01), a month (2026-12) or an ISO time")
    .option("--until <when>", "to (exclusive; a date or month alone includes it whole)")
    .option("--agent <name>", "only this agent (repeat for more)", collect, [])
    .option("--team <name>", "only this team's agents ((none): agents in no team; repeat for more)", collect, [])
    .option("--model <name>", "only this model (repeat for more)", collect, [])
    .option("--json", "print JSON (the GET /v1/costs answer)");
  addConnectionOptions(cmd).action(async (opts: CostsOptions) => {
    const by = opts.by.length === 0 ? ["agent"] : opts.by.flatMap((b) => b.split(",")).filter((b) => b.trim() !== "none");
    const query: CostQueryText = {
      group_by: by,
      ...(opts.period ? { period: opts.period } : {}),
      ...(opts.since ? { from: opts.since } : {}),
      ...(opts.until ? { to: opts.until } : {}),
      ...(opts.agent.length > 0 ? { agent: opts.agent } : {}),
      ...(opts.team.length > 0 ? { team: opts.team } : {}),
      ...(opts.model.length > 0 ? { model: opts.model } : {}),
    };
    let report: CostReport;
    try {
      report = await readCosts(opts, query);
    } catch (e) {
      throw inFlagWords(e);
    }
    if (opts.json) {
      out.line(JSON.stringify(report, null, 2));
      return;
    }
    print(report);
  });
}

async function readCosts(opts: ConnectionOptions, query: CostQueryText): Promise<CostReport> {
  const { parseCostQuery, CostLedger, checkTeams, emptyCostReport } = await import("../../telemetry/costs.js");
  const parsed = parseCostQuery(query); // mistakes are said before anything is opened or asked
  const url = serverUrl(opts);
  if (url) {
    const { createClient } = await import("../../client/index.js");
    return createClient(url, { apiKey: process.env.OUTPOST_API_KEY || undefined }).getCosts(query);
  }

  const { project, dataDir, databaseUrl } = await localProject(opts);
  const teams = [...project.teams.values()];
  // Without data nothing was spent yet (and no data folder is created); the query is still checked.
  if (!databaseUrl && !existsSync(dataDir)) {
    checkTeams(parsed.teams ?? [], teams);
    return emptyCostReport(parsed);
  }
  const { openStore } = await import("../../store/index.js");
  const store = await openStore({ dataDir, databaseUrl });
  try {
    return await new CostLedger(store.domain, () => teams).report({ workspace: project.workspace, ...parsed });
  } finally {
    await store.close();
  }
}

/** A query mistake (`from: "x" is …`) in the words of the flags (`--since: "x" is …`), as a usage error. */
function inFlagWords(e: unknown): unknown {
  if (!(e instanceof OutpostError) || e.code !== "invalid_request") return e;
  const m = /^(\w+): /.exec(e.message);
  const flag = m ? FLAGS[m[1]] : undefined;
  if (!flag) return e;
  return new UsageError(`${flag}: ${e.message.slice(m?.[0].length ?? 0)}`, m?.[1] === "group_by" || m?.[1] === "period" ? EXAMPLE : e.hint);
}

function print(r: CostReport): void {
  const range =
    r.from || r.to
      ? ` ${r.from ? `from ${r.from.slice(0, 16).replace("T", " ")}` : ""}${r.to ? ` to ${r.to.slice(0, 16).replace("T", " ")}` : ""} UTC`
      : "";
  if (r.totals.calls === 0) {
    out.line(out.dim(`no model calls recorded${range ? ` for${range}` : ""}`));
    return;
  }
  const keys = [...(r.period ? (["period"] as const) : []), ...r.group_by];
  if (keys.length > 0) {
    out.line(
      table(
        [...keys.map((k) => k.toUpperCase()), "RUNS", "CALLS", "TOKENS IN", "TOKENS OUT", "COST"],
        r.items.map((i) => [
          ...keys.map((k) => i[k] ?? ""),
          formatInt(i.runs),
          formatInt(i.calls),
          formatInt(i.input_tokens),
          formatInt(i.output_tokens),
          formatUsd(i.cost_usd),
        ]),
      ),
    );
    out.line();
  }
  const t = r.totals;
  const plural = (n: number, word: string) => `${formatInt(n)} ${word}${n === 1 ? "" : "s"}`;
  out.line(
    `${out.bold("total")}${range}: ${formatUsd(t.cost_usd)} — ${plural(t.runs, "run")}, ${plural(t.calls, "model call")}, ` +
      `${formatInt(t.input_tokens)} tokens in, ${formatInt(t.output_tokens)} out`,
  );
  if (r.group_by.includes("team")) out.line(out.dim("an agent in several teams counts in each; the total counts every call once"));
}
