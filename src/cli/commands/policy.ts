/** `outpost policy test FILE | schema | replay --since 7d`: trying policies before they govern anything. */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { DEFAULT_DATA_DIR } from "../connect.js";
import { EXIT_FAILED, EXIT_USAGE, Exit, formatIssue, UsageError } from "../errors.js";
import { err, out, table, truncate } from "../output.js";

async function loadPolicyProject(dir: string) {
  const { loadProject } = await import("../../definitions/index.js");
  const policy = await import("../../security/policy/index.js");
  const project = await loadProject(path.resolve(dir));
  return { project, policy, engine: policy.createPolicyEngine(project) };
}

export function registerPolicy(program: Command): void {
  const policy = program.command("policy").description("test policies on example requests, print their schema, replay recorded decisions");

  policy
    .command("test")
    .description("evaluate the example requests in a YAML file against the project's policies; exit 1 on any mismatch")
    .argument("<file>", "YAML list of {name, agent, action, resource, context?, on_behalf_of?, expect}")
    .option("--project <dir>", "project folder", ".")
    .action(async (file: string, opts: { project: string }) => {
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (e) {
        throw new UsageError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      const { policy: p, engine } = await loadPolicyProject(opts.project);
      const parsed = p.parsePolicyExamples(file, text);
      if ("issues" in parsed) {
        err.line(`${err.red("✗")} ${file} is not a list of policy examples:`);
        for (const issue of parsed.issues) err.line(`  ${formatIssue(issue)}`);
        err.line(
          err.dim("each entry: {name, agent, action, resource, context?, on_behalf_of?, expect: allow | deny | approval[:role[:group]]}"),
        );
        throw new Exit(EXIT_USAGE);
      }
      const results = p.runPolicyExamples(engine, parsed.examples);
      const rows = results.map((r) => [
        r.ok ? out.green("ok") : out.red("FAIL"),
        truncate(r.example.name, 48),
        r.example.expect,
        p.decisionText(r.decision),
        truncate(r.decision.approval?.policies.join(", ") || r.decision.policies.join(", ") || "(default deny)", 60),
      ]);
      out.line(table(["", "EXAMPLE", "EXPECTED", "DECISION", "POLICIES"], rows));
      for (const r of results.filter((x) => x.decision.errors.length > 0)) {
        err.line(`${err.yellow("warning:")} ${file}:${r.example.line ?? "?"} ${r.example.name}: ${r.decision.errors.join("; ")}`);
      }
      const failed = results.filter((r) => !r.ok);
      if (failed.length > 0) {
        for (const r of failed)
          err.line(
            `${err.red("✗")} ${file}:${r.example.line ?? "?"} ${r.example.name}: expected ${r.example.expect}, got ${p.decisionText(r.decision)}`,
          );
        err.line(`${failed.length} of ${results.length} examples failed`);
        throw new Exit(EXIT_FAILED);
      }
      out.line(
        `${out.green("✓")} ${results.length} example${results.length === 1 ? "" : "s"} passed (policies ${engine.hash.slice(0, 12)})`,
      );
    });

  policy
    .command("schema")
    .description("print the Cedar schema Outpost generates from the project's definitions")
    .option("--project <dir>", "project folder", ".")
    .action(async (opts: { project: string }) => {
      const { loadProject } = await import("../../definitions/index.js");
      const { policySchemaText } = await import("../../security/policy/index.js");
      out.write(policySchemaText(await loadProject(path.resolve(opts.project))));
    });

  policy
    .command("replay")
    .description("re-evaluate recorded policy decisions against the current policies; list every one that would flip")
    .option("--since <duration>", "how far back (e.g. 7d, 12h)", "7d")
    .option("--project <dir>", "project folder", ".")
    .option("--data <dir>", "local data folder", DEFAULT_DATA_DIR)
    .option("--json", "print JSON")
    .action(async (opts: { since: string; project: string; data: string; json?: boolean }) => {
      const { parseDuration } = await import("../../definitions/index.js");
      let window: number;
      try {
        window = parseDuration(opts.since);
      } catch (e) {
        throw new UsageError(`--since: ${(e as Error).message}`);
      }
      const since = Date.now() - window;
      const { project, policy: p, engine } = await loadPolicyProject(opts.project);
      const { openStore } = await import("../../store/index.js");
      const store = await openStore({ dataDir: path.resolve(opts.data), databaseUrl: process.env.OUTPOST_DATABASE_URL || undefined });
      try {
        const replay = await p.replayPolicyDecisions(store.domain.db, project.workspace, engine, since);
        if (opts.json) {
          out.line(JSON.stringify(replay, null, 2));
          return;
        }
        if (replay.flips.length > 0) {
          out.line(
            table(
              ["TIME", "RUN", "AGENT", "ACTION", "RESOURCE", "WAS", "NOW", "DECIDED BY"],
              replay.flips.map((f) => [
                new Date(f.at).toISOString().replace("T", " ").slice(0, 19),
                f.runId,
                f.request.agent,
                f.request.action,
                truncate(`${f.request.resource.type}::"${f.request.resource.id}"`, 40),
                f.before,
                f.after.startsWith("deny") ? out.red(f.after) : out.green(f.after),
                truncate(f.policies.join(", ") || "(default deny)", 50),
              ]),
            ),
          );
        }
        out.line(
          `${replay.checked} decision${replay.checked === 1 ? "" : "s"} since ${new Date(since).toISOString()} replayed; ${replay.flips.length} would flip (policies ${engine.hash.slice(0, 12)})`,
        );
      } finally {
        await store.close();
      }
    });
}
