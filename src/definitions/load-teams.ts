/**
 * teams/*.yaml, and the rules of who may work with whom: every team member
 * exists, the lead and exposed agents are members, and each agent's
 * `delegates`/`handoffs` name agents its team allows (see teams.ts).
 */
import path from "node:path";
import type { Issue } from "./errors.js";
import { readYamlFolder } from "./files.js";
import { teamFileSchema } from "./schemas.js";
import { didYouMean } from "./suggest.js";
import { delegateToolName, handoffToolName, mayWorkWith } from "./teams.js";
import type { AgentDefinition, Project, TeamDefinition } from "./types.js";
import type { YamlSource } from "./yaml-source.js";

export async function loadTeams(root: string, agents: Map<string, AgentDefinition>, issues: Issue[]): Promise<Map<string, TeamDefinition>> {
  const teams = new Map<string, TeamDefinition>();
  for (const { file, source, value: t } of await readYamlFolder(root, "teams", teamFileSchema, issues)) {
    const at = (fieldPath: (string | number)[]) => ({ file, line: source.lineOf(fieldPath), path: fieldPath.join(".") });
    if (teams.has(t.name)) {
      issues.push({ ...at(["name"]), message: `team "${t.name}" is already defined in ${teams.get(t.name)?.file} — rename one` });
      continue;
    }
    const known = [...agents.keys()];
    t.members.forEach((m, i) => {
      if (!agents.has(m)) {
        issues.push({
          ...at(["members", i]),
          message: `unknown agent "${m}"${didYouMean(m, known) || ` — define it in agents/${m}.yaml`}`,
        });
      }
    });
    if (!t.members.includes(t.lead)) {
      issues.push({ ...at(["lead"]), message: `the lead "${t.lead}" is not a member of the team — add it to members:` });
    }
    (t.exposes ?? []).forEach((m, i) => {
      if (!t.members.includes(m)) {
        issues.push({ ...at(["exposes", i]), message: `"${m}" is not a member of ${t.name} — a team can expose only its own members` });
      }
    });
    teams.set(t.name, {
      name: t.name,
      description: t.description,
      lead: t.lead,
      members: t.members,
      exposes: t.exposes ?? [],
      file: path.posix.join("teams", path.basename(file)),
    });
  }
  return teams;
}

/** Checks `delegates`/`handoffs` against the teams, and gives each agent its collaboration tools. */
export function checkCollaboration(
  agents: Map<string, AgentDefinition>,
  teams: Map<string, TeamDefinition>,
  sources: Map<string, YamlSource>,
  issues: Issue[],
): void {
  const project = { agents, teams } as Project;
  for (const agent of agents.values()) {
    const source = sources.get(agent.name);
    for (const kind of ["delegates", "handoffs"] as const) {
      agent[kind].forEach((target, i) => {
        const at = { file: agent.file, line: source?.lineOf([kind, i]), path: `${kind}[${i}]` };
        if (!agents.has(target)) {
          const hint = didYouMean(target, [...agents.keys()]) || ` — define it in agents/${target}.yaml`;
          issues.push({ ...at, message: `unknown agent "${target}"${hint}` });
          return;
        }
        if (target === agent.name) {
          issues.push({
            ...at,
            message: `an agent cannot ${kind === "delegates" ? "delegate" : "hand off"} to itself — remove "${target}"`,
          });
          return;
        }
        if (!mayWorkWith(project, agent.name, target)) {
          const team = [...teams.values()].find((t) => t.members.includes(target));
          issues.push({
            ...at,
            message: `${agent.name} may not work with "${target}": it is in team ${team?.name ?? "?"} and not exposed — add it to that team's exposes: (${team?.file ?? "teams/"}), or put both agents in one team`,
          });
          return;
        }
        const name = kind === "delegates" ? delegateToolName(target) : handoffToolName(target);
        if (!agent.tools.some((t) => t.name === name)) agent.tools.push({ name });
      });
    }
  }
}
