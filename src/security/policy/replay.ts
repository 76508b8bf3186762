/**
 * `outpost policy replay`: the decisions recorded as `policy.decided` run events, re-evaluated against
 * the project's current policies; every one that would come out differently is a flip.
 */
import type { Kysely } from "kysely";
import type { Database } from "../../store/schema.js";
import type { PolicyDecision, PolicyEngine, PolicyRequest } from "../types.js";
import { decisionText } from "./examples.js";

export interface PolicyFlip {
  runId: string;
  seq: number;
  /** When the decision was recorded (epoch ms). */
  at: number;
  request: PolicyRequest;
  /** As recorded: `allow`, `deny` or `approval:role[:group]`. */
  before: string;
  after: string;
  /** The policies that decide now. */
  policies: string[];
  /** The policy hash the recorded decision was made under. */
  recordedUnder: string;
}

export interface PolicyReplay {
  /** Decisions re-evaluated. */
  checked: number;
  flips: PolicyFlip[];
}

interface RecordedDecision {
  request: {
    action: string;
    agent: string;
    on_behalf_of: string | null;
    resource: { type: string; id: string; attributes?: Record<string, unknown> };
    context: Record<string, unknown>;
  };
  effect: "allow" | "deny";
  approval: PolicyDecision["approval"];
  policies_sha256: string;
}

export async function replayPolicyDecisions(
  db: Kysely<Database>,
  workspace: string,
  engine: PolicyEngine,
  since: number,
): Promise<PolicyReplay> {
  const rows = await db
    .selectFrom("events")
    .innerJoin("runs", "runs.id", "events.run_id")
    .select(["events.run_id", "events.seq", "events.at", "events.data"])
    .where("runs.workspace", "=", workspace)
    .where("events.type", "=", "policy.decided")
    .where("events.at", ">=", since)
    .orderBy("events.at")
    .orderBy("events.run_id")
    .orderBy("events.seq")
    .execute();
  const flips: PolicyFlip[] = [];
  for (const row of rows) {
    const recorded = (typeof row.data === "string" ? JSON.parse(row.data) : row.data) as RecordedDecision;
    const request: PolicyRequest = {
      action: recorded.request.action as PolicyRequest["action"],
      agent: recorded.request.agent,
      onBehalfOf: recorded.request.on_behalf_of,
      resource: recorded.request.resource as PolicyRequest["resource"],
      context: recorded.request.context as PolicyRequest["context"],
    };
    const before = decisionText({ effect: recorded.effect, approval: recorded.approval, policies: [], errors: [] });
    const decision = engine.authorize(request);
    const after = decisionText(decision);
    if (after !== before) {
      flips.push({
        runId: row.run_id,
        seq: Number(row.seq),
        at: Number(row.at),
        request,
        before,
        after,
        policies: decision.policies,
        recordedUnder: recorded.policies_sha256,
      });
    }
  }
  return { checked: rows.length, flips };
}
