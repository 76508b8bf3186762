/**
 * What a commit writes to the cost ledger (store model_usage): one entry per model call among its events. Pure; the
 * executor passes the entries with the commit (CommitRequest.usage), and the store writes them in the same
 * transaction as the events, so the ledger holds exactly the calls the logs hold.
 */
import type { NewEvent } from "../core/events.js";
import type { UsageEntryInput } from "../store/types.js";

/**
 * The model calls among `events` (model.responded: an agent's step; context.compacted: a summary), each with the
 * agent that made it. `agentAfter` is the agent acting once the events are applied: walking back, a handoff's
 * `from` is who acted before it.
 */
export function usageEntries(events: readonly NewEvent[], agentAfter: string): UsageEntryInput[] {
  const entries: UsageEntryInput[] = [];
  let agent = agentAfter;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.type === "run.handed_off") {
      agent = e.data.from;
    } else if (e.type === "model.responded" || e.type === "context.compacted") {
      const d = e.data;
      entries.push({
        event: i,
        agent,
        model: d.model,
        purpose: e.type === "model.responded" ? "step" : "compaction",
        inputTokens: d.usage.input_tokens,
        outputTokens: d.usage.output_tokens,
        costUsd: d.cost_usd,
      });
    }
  }
  return entries.reverse();
}
