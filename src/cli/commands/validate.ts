/** `outpost validate`: check a project and say what would run. */
import path from "node:path";
import type { Command } from "commander";
import { EXIT_FAILED, Exit, formatIssue } from "../errors.js";
import { agentModels, scriptedHint } from "../models.js";
import { err, out } from "../output.js";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function registerValidate(program: Command): void {
  program
    .command("validate")
    .description("check a project's YAML and tools; prints file:line for every problem")
    .option("--project <dir>", "project folder", ".")
    .action(async (opts: { project: string }) => {
      const { validateProject } = await import("../../definitions/index.js");
      const root = path.resolve(opts.project);
      const result = await validateProject(root);
      // Scripts are the models layer's: checked for the agents that would play them here.
      const scriptIssues = result.project ? await (await import("../../models/index.js")).checkScripts(result.project, process.env) : [];
      // Policies against the schema generated from these definitions (security/policy).
      const policyCheck = result.project
        ? (await import("../../security/policy/index.js")).checkPolicies(result.project)
        : { errors: [], warnings: [] };
      if (!result.ok || !result.project || scriptIssues.length > 0 || policyCheck.errors.length > 0) {
        const issues = [...result.issues, ...scriptIssues, ...policyCheck.errors];
        err.line(`${err.red("✗")} ${root}: ${plural(issues.length, "problem")}`);
        for (const issue of issues) err.line(`  ${formatIssue(issue)}`);
        throw new Exit(EXIT_FAILED);
      }
      const project = result.project;
      out.line(
        `${out.green("✓")} ${root} is valid: ${[
          plural(project.agents.size, "agent"),
          ...(project.teams.size ? [plural(project.teams.size, "team")] : []),
          plural(project.tools.size, "tool"),
          ...(project.connections.size ? [plural(project.connections.size, "connection")] : []),
          plural(project.models.size, "model"),
        ].join(", ")} (workspace ${project.workspace})`,
      );
      const models = agentModels(project);
      const width = Math.max(0, ...models.map((m) => m.agent.length));
      for (const m of models) out.line(`  ${m.agent.padEnd(width)}  ${m.text}`);
      const hint = scriptedHint(models, project);
      if (hint) out.line(out.dim(`  ${hint}`));
      for (const issue of [...result.issues, ...policyCheck.warnings]) err.line(`${err.yellow("warning:")} ${formatIssue(issue)}`);
    });
}
