/**
 * The tools through which agents work together. They are never executed: the
 * run loop resolves them (runtime/decide.ts) — a delegation becomes a child
 * run the caller waits for, a handoff passes the run to another agent.
 */
import { z } from "zod";
import { delegateToolName, handoffToolName } from "../definitions/index.js";
import type { Project, ToolDefinition } from "../definitions/types.js";

const resolvedByTheRunLoop = () => {
  throw new Error("delegation and handoff are resolved by the run loop, not executed");
};

/** One `delegate.<agent>` and one `handoff.<agent>` tool per agent that some agent lists. */
export function collaborationTools(project: Project): ToolDefinition[] {
  const teamOf = (agent: string) => [...project.teams.values()].find((t) => t.members.includes(agent));
  const targets = { delegate: new Set<string>(), handoff: new Set<string>() };
  for (const a of project.agents.values()) {
    for (const d of a.delegates) targets.delegate.add(d);
    for (const h of a.handoffs) targets.handoff.add(h);
  }
  const tools: ToolDefinition[] = [];
  for (const name of targets.delegate) {
    const agent = project.agents.get(name);
    if (!agent) continue;
    const team = teamOf(name);
    tools.push({
      name: delegateToolName(name),
      description:
        `Ask the ${name} agent${team ? ` (${team.name})` : ""} to do a task and wait for its answer. ${agent.description}`.trim() +
        " It works on its own run and sees only the task you give it: include every detail it needs (ids, amounts, what to do). Call several delegate tools in one step to ask several agents at once.",
      input: z.object({ task: z.string().min(1).max(20_000).describe("What to do, with every detail needed") }),
      sideEffects: true,
      collaboration: { kind: "delegate", agent: name },
      handler: resolvedByTheRunLoop,
    });
  }
  for (const name of targets.handoff) {
    const agent = project.agents.get(name);
    if (!agent) continue;
    tools.push({
      name: handoffToolName(name),
      description: `Hand this conversation over to the ${name} agent, which continues it in your place. ${agent.description}`.trim(),
      input: z.object({ reason: z.string().min(1).max(2_000).describe("Why this agent should take over") }),
      sideEffects: false,
      collaboration: { kind: "handoff", agent: name },
      handler: resolvedByTheRunLoop,
    });
  }
  return tools;
}
