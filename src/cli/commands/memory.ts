/**
 * `outpost memory ls | search | show | add | edit | forget | erase`: what agents and people remembered, in the
 * project's workspace, on the local store (--project/--data, as the project's admin) or on a server (--server,
 * OUTPOST_API_KEY, with the key's roles). Both go through the same MemoryApi, so they answer alike.
 */
import path from "node:path";
import type { Command } from "commander";
import { OutpostError } from "../../core/errors.js";
import type { MemoryApi, MemoryItemView, MemoryPatchRequest, MemorySourceView } from "../../core/memory-api.js";
import type { TriggersApi } from "../../core/triggers-api.js";
import { addConnectionOptions, type ConnectionOptions, DEFAULT_DATA_DIR, localFlags, quietLogger } from "../connect.js";
import { UsageError } from "../errors.js";
import { command } from "../hints.js";
import { age, out, table, truncate } from "../output.js";
import { expiresAt } from "./keys.js";
import { parseLimit } from "./runs.js";

export interface MemoryAccess {
  api: MemoryApi;
  /** The project's triggers, read through the same connection. */
  triggers: TriggersApi;
  kind: "server" | "local";
  /** Flags that reach the same memory, for suggested commands. */
  flags: string;
}

type Json = { json?: boolean };
const collect = (value: string, previous: string[]) => [...previous, value];
const CLASSES = ["public", "internal", "confidential", "restricted"] as const;

export function registerMemory(program: Command): void {
  const memory = program.command("memory").description("what agents and people remembered: list, search, edit, forget, erase a subject");

  const ls = memory
    .command("ls")
    .alias("list")
    .description("list memory items, most recently written first")
    .option("--scope <scope>", "only this scope: workspace, team/NAME, agent/NAME, user/ID, session/ID")
    .option("--subject <subject>", "only items about this, e.g. customer:1042")
    .option("--tag <tag>", "only items with this tag")
    .option("--kind <kind>", "fact or knowledge")
    .option("--limit <n>", "at most this many (default 50)")
    .option("--json", "print JSON");
  addConnectionOptions(ls).action(
    async (opts: ConnectionOptions & Json & { scope?: string; subject?: string; tag?: string; kind?: string; limit?: string }) => {
      const limit = parseLimit(opts.limit, 50);
      if (opts.kind !== undefined && opts.kind !== "fact" && opts.kind !== "knowledge") {
        throw new UsageError(`--kind ${opts.kind}: there is no such kind`, "use --kind fact or --kind knowledge");
      }
      await withMemory(opts, async ({ api, flags }) => {
        // The API pages by at most 200: follow the cursor up to --limit.
        const items: MemoryItemView[] = [];
        let cursor: string | null = null;
        do {
          const page = await api.listMemory({
            limit: Math.min(200, limit - items.length),
            ...(cursor ? { cursor } : {}),
            ...(opts.scope ? { scope: opts.scope } : {}),
            ...(opts.subject ? { subject: opts.subject } : {}),
            ...(opts.tag ? { tag: opts.tag } : {}),
            ...(opts.kind ? { kind: opts.kind as "fact" | "knowledge" } : {}),
          });
          items.push(...page.items);
          cursor = page.next_cursor;
        } while (cursor && items.length < limit);
        if (opts.json) return out.line(JSON.stringify(items, null, 2));
        if (items.length === 0)
          return out.line(out.dim(`no memory here yet (${command(["memory", "add", "TEXT", "--scope", "SCOPE"], flags)})`));
        out.line(
          table(
            ["ID", "SCOPE", "SUBJECT", "KEY", "TEXT", "SOURCE", "UPDATED"],
            items.map((i) => [i.id, i.scope, i.subject ?? "-", i.key ?? "-", truncate(i.text, 60), sourceOf(i), age(i.updated_at)]),
          ),
        );
        if (cursor) out.line(out.dim(`more: ${command(["memory", "ls", "--limit", String(limit * 2)], flags)}`));
      });
    },
  );

  const search = memory
    .command("search")
    .description("search memory by meaning and words (every scope that holds memory, unless --scope)")
    .argument("<query>", "what to look for")
    .option("--scope <scope>", "only this scope (repeat for more)", collect, [])
    .option("--subject <subject>", "only items about this, e.g. customer:1042")
    .option("--tag <tag>", "only items with this tag (repeat: every one of them)", collect, [])
    .option("--mode <mode>", "hybrid (default), fts or vector")
    .option("--limit <n>", "at most this many (default 10, at most 50)")
    .option("--json", "print JSON");
  addConnectionOptions(search).action(
    async (
      query: string,
      opts: ConnectionOptions & Json & { scope: string[]; subject?: string; tag: string[]; mode?: string; limit?: string },
    ) => {
      const limit = parseLimit(opts.limit, 10);
      if (limit > 50) throw new UsageError(`--limit ${limit}: a search returns at most 50`, "use --limit 50 or less");
      if (opts.mode !== undefined && !["hybrid", "fts", "vector"].includes(opts.mode)) {
        throw new UsageError(`--mode ${opts.mode}: there is no such mode`, "use --mode hybrid, fts or vector");
      }
      await withMemory(opts, async ({ api }) => {
        const result = await api.searchMemory({
          q: query,
          limit,
          ...(opts.scope.length > 0 ? { scopes: opts.scope } : {}),
          ...(opts.tag.length > 0 ? { tags: opts.tag } : {}),
          ...(opts.subject ? { subject: opts.subject } : {}),
          ...(opts.mode ? { mode: opts.mode as "hybrid" | "fts" | "vector" } : {}),
        });
        if (opts.json) return out.line(JSON.stringify(result, null, 2));
        if (result.items.length === 0) {
          return out.line(
            out.dim(result.scopes.length === 0 ? "nothing found: no memory here yet" : `nothing found in ${result.scopes.join(", ")}`),
          );
        }
        out.line(
          table(
            ["SCORE", "ID", "SCOPE", "SUBJECT", "SOURCE", "AGE", "TEXT"],
            result.items.map((h) => [
              h.score.toFixed(3),
              h.id,
              h.scope,
              h.subject ?? "-",
              sourceOf(h),
              age(h.updated_at),
              truncate(h.text, 70),
            ]),
          ),
        );
        out.line(out.dim(`searched ${result.scopes.join(", ")}`));
      });
    },
  );

  const show = memory
    .command("show")
    .description("an item, where it came from, and its earlier versions")
    .argument("<id>", "item id (mem_…)")
    .option("--json", "print JSON");
  addConnectionOptions(show).action(async (id: string, opts: ConnectionOptions & Json) => {
    await withMemory(opts, async ({ api }) => {
      const item = await api.getMemory(id);
      if (opts.json) return out.line(JSON.stringify(item, null, 2));
      out.line(`${out.bold(item.id)}  ${item.kind} in ${item.scope}, version ${item.version}`);
      out.line(`  subject:        ${item.subject ?? "-"}${item.key ? `   key: ${item.key}` : ""}`);
      if (item.tags.length > 0) out.line(`  tags:           ${item.tags.join(", ")}`);
      out.line(`  classification: ${item.classification}`);
      out.line(`  source:         ${sourceDetail(item.source, item.author)}`);
      out.line(`  written:        ${item.updated_at} by ${item.author}${item.version > 1 ? ` (first ${item.created_at})` : ""}`);
      if (item.expires_at) out.line(`  expires:        ${item.expires_at}`);
      out.line();
      out.line(item.text);
      if (item.history.length === 0) return;
      out.line();
      out.line(out.bold("history"));
      for (const v of item.history) {
        out.line(`  v${v.version}  ${v.written_at} by ${v.author}, superseded ${v.superseded_at} by ${v.superseded_by}`);
        out.line(`      ${truncate(v.text, 100)}`);
      }
    });
  });

  const add = memory
    .command("add")
    .description("remember a fact; with --subject and --key it replaces the current fact of that subject and key")
    .argument("<text>", "the fact")
    .requiredOption("--scope <scope>", "workspace, team/NAME, agent/NAME, user/ID or session/ID")
    .option("--subject <subject>", "what it is about, e.g. customer:1042")
    .option("--key <key>", "a name for the fact, e.g. preferred_carrier")
    .option("--tag <tag>", "a tag (repeat for more)", collect, [])
    .option("--classification <class>", `${CLASSES.join(", ")} (default internal)`)
    .option("--expires <when>", "forget it after a duration (30d, 12h, 2w) or at an ISO date-time")
    .option("--json", "print JSON");
  addConnectionOptions(add).action(
    async (
      text: string,
      opts: ConnectionOptions &
        Json & { scope: string; subject?: string; key?: string; tag: string[]; classification?: string; expires?: string },
    ) => {
      const classification = classOf(opts.classification);
      const expires = opts.expires !== undefined ? expiresAt(opts.expires) : undefined;
      await withMemory(opts, async ({ api, flags }) => {
        const r = await api.remember({
          text,
          scope: opts.scope,
          ...(opts.subject ? { subject: opts.subject } : {}),
          ...(opts.key ? { key: opts.key } : {}),
          ...(opts.tag.length > 0 ? { tags: opts.tag } : {}),
          ...(classification ? { classification } : {}),
          ...(expires ? { expires_at: expires } : {}),
        });
        if (opts.json) return out.line(JSON.stringify(r, null, 2));
        out.line(`remembered ${r.id} in ${r.scope} (version ${r.version})`);
        if (r.superseded) out.line(`  replaced version ${r.superseded.version}: ${truncate(r.superseded.text, 80)}`);
        out.line(out.dim(`see it with: ${command(["memory", "show", r.id], flags)}`));
      });
    },
  );

  const edit = memory
    .command("edit")
    .description("edit an item: a new version, the old one kept in its history")
    .argument("<id>", "item id (mem_…)")
    .option("--text <text>", "the new text")
    .option("--tag <tag>", "the new tags (repeat for more; they replace the old ones)", collect, [])
    .option("--classification <class>", CLASSES.join(", "))
    .option("--expires <when>", "a duration (30d, 12h), an ISO date-time, or never")
    .option("--json", "print JSON");
  addConnectionOptions(edit).action(
    async (id: string, opts: ConnectionOptions & Json & { text?: string; tag: string[]; classification?: string; expires?: string }) => {
      const classification = classOf(opts.classification);
      const patch: MemoryPatchRequest = {
        ...(opts.text !== undefined ? { text: opts.text } : {}),
        ...(opts.tag.length > 0 ? { tags: opts.tag } : {}),
        ...(classification ? { classification } : {}),
        ...(opts.expires !== undefined ? { expires_at: opts.expires === "never" ? null : expiresAt(opts.expires) } : {}),
      };
      if (Object.keys(patch).length === 0) {
        throw new UsageError("nothing to change", "give --text, --tag, --classification or --expires");
      }
      await withMemory(opts, async ({ api }) => {
        const item = await api.updateMemory(id, patch);
        if (opts.json) return out.line(JSON.stringify(item, null, 2));
        out.line(`edited ${item.id}: now version ${item.version} (the earlier one is in its history)`);
      });
    },
  );

  const forget = memory.command("forget").alias("rm").description("forget an item and its history").argument("<id>", "item id (mem_…)");
  addConnectionOptions(forget).action(async (id: string, opts: ConnectionOptions) => {
    await withMemory(opts, async ({ api }) => {
      await api.forgetMemory(id);
      out.line(`forgot ${id} and its history (recorded in the audit log as memory.forgotten)`);
    });
  });

  const erase = memory
    .command("erase")
    .description("erase everything about a subject: its items, knowledge chunks, earlier versions and cached context (admins)")
    .requiredOption("--subject <subject>", "e.g. customer:1042")
    .option("--json", "print JSON");
  addConnectionOptions(erase).action(async (opts: ConnectionOptions & Json & { subject: string }) => {
    await withMemory(opts, async ({ api, kind, flags }) => {
      const r = await api.eraseSubject(opts.subject);
      if (opts.json) return out.line(JSON.stringify(r, null, 2));
      out.line(`erased ${r.subject}:`);
      out.line(`  ${count(r.items, "memory item")}`);
      out.line(`  ${count(r.knowledge_chunks, "knowledge chunk")}`);
      out.line(`  ${count(r.versions, "earlier version")}`);
      out.line(`  ${count(r.context_entities, "cached context entity", "cached context entities")}`);
      if (r.ids.length > 0) out.line(out.dim(`  ids: ${r.ids.join(", ")}`));
      const see = kind === "server" ? "GET /v1/audit?kind=memory.erased" : command(["audit", "list", "--kind", "memory.erased"], flags);
      out.line(`recorded in the audit log as memory.erased (${see})`);
    });
  });
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function classOf(value: string | undefined): (typeof CLASSES)[number] | undefined {
  if (value === undefined) return undefined;
  if (!(CLASSES as readonly string[]).includes(value)) {
    throw new UsageError(`--classification ${value}: there is no such classification`, `use one of ${CLASSES.join(", ")}`);
  }
  return value as (typeof CLASSES)[number];
}

/** Who or what wrote it, in a word or two. */
function sourceOf(item: MemoryItemView): string {
  const s = item.source;
  if (s.kind === "run") return s.agent ? `agent ${s.agent}` : "a run";
  if (s.kind === "knowledge") return s.file ? `knowledge ${path.basename(s.file)}` : "knowledge";
  return item.author;
}

function sourceDetail(s: MemorySourceView, author: string): string {
  if (s.kind === "run") {
    const step = s.step !== undefined ? `, step ${s.step}` : "";
    return `agent ${s.agent ?? "?"} in run ${s.run_id ?? "?"}${step}${s.tool ? ` (${s.tool})` : ""}`;
  }
  if (s.kind === "knowledge")
    return `knowledge ${s.file ?? "?"}${s.chunk !== undefined ? ` chunk ${s.chunk}` : ""}${s.heading ? ` "${s.heading}"` : ""}`;
  return `a person (${author})`;
}

export async function withMemory(opts: ConnectionOptions, fn: (access: MemoryAccess) => Promise<void>): Promise<void> {
  const server = (opts.server ?? process.env.OUTPOST_SERVER)?.replace(/\/+$/, "");
  if (server) {
    try {
      new URL(server);
    } catch {
      throw new UsageError(`"${server}" is not a server URL`, "use e.g. --server http://127.0.0.1:7700");
    }
    const { createClient } = await import("../../client/index.js");
    const api = createClient(server, { apiKey: process.env.OUTPOST_API_KEY || undefined });
    return fn({ api, triggers: api, kind: "server", flags: opts.server !== undefined ? `--server ${server}` : "" });
  }

  const { existsSync } = await import("node:fs");
  const projectDir = path.resolve(opts.project ?? ".");
  if (!existsSync(path.join(projectDir, "outpost.yaml"))) {
    throw new OutpostError(
      "not_found",
      `no Outpost project in ${projectDir} (no outpost.yaml), and no server named`,
      "name a project with --project DIR, or talk to a running Outpost with --server URL (or set OUTPOST_SERVER)",
    );
  }
  const [{ loadProject }, { startOutpost }, { localCaller }, { memoryApi }, { triggersApi }] = await Promise.all([
    import("../../definitions/index.js"),
    import("../../runtime/index.js"),
    import("../../security/identity/index.js"),
    import("../../server/routes/memory.js"),
    import("../../triggers/index.js"),
  ]);
  const project = await loadProject(projectDir);
  const logger = await quietLogger();
  // No workers: reading or editing memory must not resume anyone's runs. Closing chains the audit entries written.
  const outpost = await startOutpost({
    project,
    dataDir: path.resolve(opts.data ?? DEFAULT_DATA_DIR),
    logger,
    redactor: logger.redactor,
    concurrency: 0,
  });
  try {
    await fn({
      api: memoryApi(outpost.memory, localCaller(project.workspace), outpost.context),
      triggers: triggersApi(outpost.triggers, project.workspace),
      kind: "local",
      flags: localFlags(opts),
    });
  } finally {
    await outpost.close();
  }
}
