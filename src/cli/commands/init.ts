/** `outpost init DIR`: scaffold a new project. */
import path from "node:path";
import type { Command } from "commander";
import { command } from "../hints.js";
import { out } from "../output.js";

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("create a new Outpost project (outpost.yaml, an agent, a tool, a model script)")
    .argument("<dir>", "folder to create the project in (created if missing)")
    .action(async (dir: string) => {
      const { initProject } = await import("../../definitions/index.js");
      const root = path.resolve(dir);
      const created = await initProject(root);
      out.line(`${out.green("✓")} created a project in ${root}`);
      for (const file of created) out.line(`  ${out.dim("+")} ${path.relative(root, path.resolve(root, file)) || file}`);
      out.line();
      out.line(out.bold("Next"));
      out.line(`  ${command(["validate", "--project", dir])}`);
      out.line(`  ${command(["up", "--project", dir])}`);
    });
}
