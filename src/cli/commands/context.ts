/**
 * `outpost context ls | show`: the business entities agents looked up (context.lookup) — what every agent of the
 * workspace is served about a customer or an order, where it came from and how old it is. On the local store
 * (--project/--data) or a server (--server), through the same MemoryApi.
 */
import type { Command } from "commander";
import type { ContextEntityView } from "../../core/memory-api.js";
import { addConnectionOptions, type ConnectionOptions } from "../connect.js";
import { UsageError } from "../errors.js";
import { command } from "../hints.js";
import { age, out, table } from "../output.js";
import { withMemory } from "./memory.js";

type Json = { json?: boolean };

export function registerContext(program: Command): void {
  const context = program
    .command("context")
    .description("business entities agents looked up (customers, orders…): what they are served, from where, how old");

  const ls = context
    .command("ls")
    .alias("list")
    .description("the entities agents fetched, most recent first")
    .option("--type <type>", "only this entity type (customer, order…)")
    .option("--limit <n>", "at most this many (1–200, default 50)")
    .option("--json", "print JSON");
  addConnectionOptions(ls).action(async (opts: ConnectionOptions & Json & { type?: string; limit?: string }) => {
    const limit = opts.limit === undefined ? undefined : Number(opts.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 200)) {
      throw new UsageError(`--limit ${opts.limit}: give a whole number from 1 to 200`);
    }
    await withMemory(opts, async ({ api, flags }) => {
      const { entities } = await api.listContext({
        ...(opts.type ? { type: opts.type } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      if (opts.json) return out.line(JSON.stringify(entities, null, 2));
      if (entities.length === 0) {
        return out.line(
          out.dim(`no agent has looked up ${opts.type ? `a ${opts.type}` : "an entity"} yet (agents do with context.lookup)`),
        );
      }
      out.line(
        table(
          ["ENTITY", "CLASS", "FETCHED", "BY", "TOOL", ""],
          entities.map((e) => [e.subject, e.classification, age(e.source.fetched_at), e.source.fetched_by, e.source.tool, freshness(e)]),
        ),
      );
      const first = entities[0];
      out.line(out.dim(`what agents are served: ${command(["context", "show", first.type, first.id], flags)}`));
    });
  });

  const show = context
    .command("show")
    .description("one entity as agents are served it: its data, source and age")
    .argument("<type>", "the entity type, e.g. customer")
    .argument("<id>", "its id, e.g. C-1042")
    .option("--json", "print JSON");
  addConnectionOptions(show).action(async (type: string, id: string, opts: ConnectionOptions & Json) => {
    await withMemory(opts, async ({ api }) => {
      const e = await api.getContext(type, id);
      if (opts.json) return out.line(JSON.stringify(e, null, 2));
      out.line(`${out.bold(e.subject)}  ${e.classification}  ${freshness(e)}`);
      out.line(`fetched ${age(e.source.fetched_at)} (${e.source.fetched_at}) by ${e.source.fetched_by} through ${e.source.tool}`);
      out.line(JSON.stringify(e.data, null, 2));
    });
  });
}

function freshness(e: ContextEntityView): string {
  if (e.fresh_until === null) return out.dim("type no longer declared");
  if (e.expired) return out.dim("expired: fetched again at the next lookup");
  const s = Math.max(1, Math.round((Date.parse(e.fresh_until) - Date.now()) / 1000));
  return `fresh for ${s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`}`;
}
