/**
 * `emit.<event>`: the tool an agent emits a named business event through (agents' `emits:`). It starts one run of
 * each agent and workflow subscribed to the event (`on_events:`) and wakes the runs waiting for it. The call's
 * idempotency key keys the runs it starts, so a call retried after a crash starts none twice.
 */
import { z } from "zod";
import { emitToolName } from "../definitions/schemas.js";
import type { Project, ToolDefinition } from "../definitions/types.js";
import type { EventSubscription } from "../triggers/index.js";

/** Delivers an event in a workspace: what Outpost does for a workflow's emit step too. */
export type EmitEvent = (
  workspace: string,
  event: string,
  payload: unknown,
  key: string,
  from: string,
) => Promise<{ delivered: number; started: number }>;

export function eventTools(project: Project, subscriptions: readonly EventSubscription[], emit: EmitEvent): ToolDefinition[] {
  const events = new Set([...project.agents.values()].flatMap((a) => a.emits ?? []));
  return [...events].map((event): ToolDefinition => {
    const subscribers = subscriptions.filter((s) => s.event === event).map((s) => s.agent);
    return {
      name: emitToolName(event),
      description:
        `Emit the business event ${event}: it starts a run of each subscriber (${subscribers.join(", ") || "none yet"}) ` +
        "with the payload as its input, and wakes the runs waiting for it. Put in the payload what they need (ids, amounts).",
      input: z.object({
        payload: z.record(z.string(), z.unknown()).default({}).describe("The event's data, e.g. { sku, location, available }"),
      }),
      sideEffects: true,
      handler: async ({ input, context, idempotencyKey }) => {
        const r = await emit(context.workspace, event, input.payload, idempotencyKey, `agent:${context.agent}`);
        return { event, runs_started: r.started, runs_woken: r.delivered };
      },
    };
  });
}
