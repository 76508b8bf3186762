/**
 * `outpost triggers ls | firings ID`: what starts runs without a person asking (schedules, webhooks, events), when each fires next,
 * and each firing with the run it started or why it was skipped. On the local store or a server (--server).
 */
import type { Command } from "commander";
import type { FiringView } from "../../core/triggers-api.js";
import { addConnectionOptions, type ConnectionOptions } from "../connect.js";
import { command } from "../hints.js";
import { age, out, table } from "../output.js";
import { withMemory } from "./memory.js";
import { parseLimit } from "./runs.js";

type Json = { json?: boolean };

export function registerTriggers(program: Command): void {
  const triggers = program
    .command("triggers")
    .description("schedules, webhooks and event subscriptions: when each fires next, and what each firing started");

  const ls = triggers
    .command("ls")
    .alias("list")
    .description("the project's triggers, with the next and the latest firing")
    .option("--json", "print JSON");
  addConnectionOptions(ls).action(async (opts: ConnectionOptions & Json) => {
    await withMemory(opts, async ({ triggers: api, flags }) => {
      const { triggers: list } = await api.listTriggers();
      if (opts.json) return out.line(JSON.stringify(list, null, 2));
      if (list.length === 0) return out.line(out.dim("no triggers: add schedules:, webhooks: or on_events: to an agent's YAML"));
      out.line(
        table(
          ["TRIGGER", "WHEN", "NEXT", "LAST"],
          list.map((t) => [
            t.id,
            t.kind === "schedule"
              ? `${t.cron} (${t.timezone})`
              : t.kind === "webhook"
                ? `POST ${t.path}${t.signed ? " (signed)" : ""}`
                : `on event ${t.name}`,
            t.next_at ?? "-",
            t.last_firing ? lastText(t.last_firing) : out.dim("never fired"),
          ]),
        ),
      );
      out.line(out.dim(`each firing and its run: ${command(["triggers", "firings", list[0].id], flags)}`));
    });
  });

  const firings = triggers
    .command("firings")
    .description("a trigger's firings, newest first: the run each started, or why it was skipped")
    .argument("<id>", "the trigger, as triggers ls shows it (schedule:AGENT.NAME, webhook:NAME, event:EVENT:SUBSCRIBER)")
    .option("--limit <n>", "at most this many (default 50)")
    .option("--json", "print JSON");
  addConnectionOptions(firings).action(async (id: string, opts: ConnectionOptions & Json & { limit?: string }) => {
    const limit = parseLimit(opts.limit, 50);
    await withMemory(opts, async ({ triggers: api }) => {
      const { firings: list } = await api.listFirings(id, { limit });
      if (opts.json) return out.line(JSON.stringify(list, null, 2));
      if (list.length === 0) return out.line(out.dim(`${id} has not fired yet`));
      out.line(
        table(
          ["DUE", "STATUS", "RUN", "DETAIL"],
          list.map((f) => [f.fire_at, f.status, f.run_id ?? "-", f.detail ?? ""]),
        ),
      );
    });
  });
}

function lastText(f: FiringView): string {
  return `${f.status} ${age(f.fire_at)}${f.run_id ? ` → ${f.run_id}` : ""}`;
}
