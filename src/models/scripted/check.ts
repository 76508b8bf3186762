/**
 * `outpost validate` for scripts: every agent that would run on the scripted
 * model here (its alias's first usable candidate, per the env) needs a valid
 * `<scriptsDir>/<agent>.yaml`. Problems are project Issues, located like the
 * loader's (file relative to the project root, line, field path).
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { Issue } from "../../definitions/errors.js";
import type { Project } from "../../definitions/types.js";
import { checkScriptText } from "./script.js";

export async function checkScripts(project: Project, env: NodeJS.ProcessEnv = process.env): Promise<Issue[]> {
  const issues: Issue[] = [];
  for (const agent of project.agents.values()) {
    const alias = project.models.get(agent.model || project.defaults.model || "");
    const candidate = alias?.candidates.find((c) => c.requiresEnv.every((name) => Boolean(env[name])));
    if (candidate?.provider !== "scripted") continue;

    const absolute = path.join(project.scriptsDir, `${agent.name}.yaml`);
    const file = path.relative(project.root, absolute).split(path.sep).join("/");
    const found = await stat(absolute).catch(() => undefined);
    if (!found?.isFile()) {
      issues.push({
        file,
        path: "",
        message:
          `no script for agent "${agent.name}", which runs on the scripted model here: create ${file}, e.g. ` +
          'dialogues: [{ when: "hello", turns: [{ text: "Hi! How can I help?" }] }]',
      });
      continue;
    }
    let text: string;
    try {
      text = await readFile(absolute, "utf8");
    } catch (error) {
      issues.push({ file, path: "", message: `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` });
      continue;
    }
    for (const problem of checkScriptText(text, file)) issues.push({ file, ...problem });
  }
  return issues;
}
