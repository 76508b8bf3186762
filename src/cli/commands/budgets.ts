/** `outpost budgets`: spend against each budget cap for the current period, from a server or the local store. */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { OutpostError } from "../../core/errors.js";
import type { BudgetUsage } from "../../security/budgets/index.js";
import { addConnectionOptions, type ConnectionOptions, localProject, serverUrl } from "../connect.js";
import { formatInt, formatUsd, out, table } from "../output.js";

export function registerBudgets(program: Command): void {
  const cmd = program
    .command("budgets")
    .description("show spend against each budget cap (outpost.yaml budgets:) for the current period")
    .option("--json", "print JSON");
  addConnectionOptions(cmd).action(async (opts: ConnectionOptions & { json?: boolean }) => {
    const rows = await readUsage(opts);
    if (opts.json) {
      out.line(JSON.stringify(rows, null, 2));
      return;
    }
    if (rows.length === 0) {
      out.line(out.dim("no budgets — add caps under budgets: in outpost.yaml, e.g. - { scope: workspace, period: month, usd: 100 }"));
      return;
    }
    out.line(
      table(
        ["SCOPE", "PERIOD", "USD SPENT", "RESERVED", "LIMIT", "TOKENS SPENT", "RESERVED", "LIMIT", "ON EXCEED", "RESETS"],
        rows.map((r) => [
          r.scope,
          r.period_key,
          money(r.usd_spent, r.usd_limit),
          formatUsd(r.usd_reserved),
          r.usd_limit === null ? out.dim("—") : formatUsd(r.usd_limit),
          count(r.tokens_spent, r.tokens_limit),
          formatInt(r.tokens_reserved),
          r.tokens_limit === null ? out.dim("—") : formatInt(r.tokens_limit),
          r.on_exceed,
          r.resets_at === null ? out.dim("never") : `${r.resets_at.slice(0, 16).replace("T", " ")} UTC`,
        ]),
      ),
    );
  });
}

/** Red at the cap, yellow past 80% of it. */
function shade(text: string, used: number, limit: number | null): string {
  if (limit === null) return text;
  if (used >= limit) return out.red(text);
  return used >= 0.8 * limit ? out.yellow(text) : text;
}
const money = (spent: number, limit: number | null) => shade(formatUsd(spent), spent, limit);
const count = (spent: number, limit: number | null) => shade(formatInt(spent), spent, limit);

async function readUsage(opts: ConnectionOptions): Promise<BudgetUsage[]> {
  const url = serverUrl(opts);
  if (url) return fetchUsage(url);

  const { project, dataDir, databaseUrl } = await localProject(opts);
  const caps = project.budgets ?? [];
  // Without caps there is nothing to show; without data nothing is spent yet (and no data folder is created).
  if (caps.length === 0) return [];
  const { Budgets, capUsage } = await import("../../security/budgets/index.js");
  if (!databaseUrl && !existsSync(dataDir)) return capUsage(caps, []);
  const { openStore } = await import("../../store/index.js");
  const store = await openStore({ dataDir, databaseUrl });
  try {
    return await new Budgets(store.domain, caps).usage(project.workspace);
  } finally {
    await store.close();
  }
}

async function fetchUsage(url: string): Promise<BudgetUsage[]> {
  const key = process.env.OUTPOST_API_KEY;
  const response = await fetch(`${url}/v1/budgets`, { headers: key ? { authorization: `Bearer ${key}` } : {} }).catch((e: Error) => {
    throw new OutpostError("unavailable", `cannot reach ${url}: ${e.message}`, "check the URL and that `outpost up` is running there");
  });
  const body = (await response.json().catch(() => null)) as {
    budgets?: BudgetUsage[];
    error?: { code: string; message: string; hint?: string };
  } | null;
  if (response.ok && body?.budgets) return body.budgets;
  if (response.status === 404 && !body?.error?.message?.includes("budgets")) {
    throw new OutpostError("not_found", `${url} does not serve budgets (GET /v1/budgets answered 404)`, "upgrade that Outpost");
  }
  const e = body?.error;
  throw new OutpostError(
    response.status === 401 ? "unauthorized" : response.status === 403 ? "forbidden" : "unavailable",
    e?.message ?? `GET /v1/budgets answered ${response.status}`,
    e?.hint ?? (response.status === 401 ? "set OUTPOST_API_KEY to an API key of that server" : undefined),
  );
}
