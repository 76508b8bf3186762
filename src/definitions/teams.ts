/**
 * Who may work with whom. An agent may delegate or hand off to a member of its
 * own team, or to an agent another team exposes. Agents in no team are open to
 * everyone (a project without teams keeps working as before).
 */
import type { Project } from "./types.js";

/** Agents reachable from outside their team: by other teams' agents and by the open endpoints (MCP, A2A). */
export function exposedAgents(project: Project): string[] {
  const inTeam = new Set<string>();
  const exposed = new Set<string>();
  for (const team of project.teams.values()) {
    for (const m of team.members) inTeam.add(m);
    for (const m of team.exposes) exposed.add(m);
  }
  return [...project.agents.keys()].filter((a) => exposed.has(a) || !inTeam.has(a));
}

/** Whether `from` may delegate or hand off to `to` under the project's teams. */
export function mayWorkWith(project: Project, from: string, to: string): boolean {
  if (from === to) return false;
  for (const team of project.teams.values()) {
    if (team.members.includes(from) && team.members.includes(to)) return true;
  }
  return exposedAgents(project).includes(to);
}

/** Tool names may not hold "-": `order-desk` is reached as `delegate.order_desk`. */
const toolSegment = (agent: string) => agent.replaceAll("-", "_");
export const delegateToolName = (agent: string) => `delegate.${toolSegment(agent)}`;
export const handoffToolName = (agent: string) => `handoff.${toolSegment(agent)}`;
