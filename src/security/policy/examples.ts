/**
 * `outpost policy test FILE`: a YAML list of example requests with the decision each should get.
 *
 *   - name: refunds over $500 need a finance operator
 *     agent: refunds
 *     action: tool.call
 *     resource: ledger.issue_refund          # or {type: Tool, id: …, attributes: {…}}
 *     context: {arguments: {amount: 900}}    # amount_cents is derived from arguments when not given
 *     on_behalf_of: user:ann
 *     expect: approval:operator:finance      # allow | deny | approval[:role[:group]]
 */
import { z } from "zod";
import { checkYaml, type Issue, parseYaml } from "../../definitions/index.js";
import {
  type CedarJson,
  classificationLevel,
  type PolicyAction,
  type PolicyDecision,
  type PolicyEngine,
  type PolicyRequest,
} from "../types.js";
import { amountCents, POLICY_ACTIONS, RESOURCE_TYPE, toCedarRecord } from "./requests.js";

const EXPECT = /^(allow|deny|approval(:[a-z]+(:[a-z0-9][a-z0-9_-]*)?)?)$/;

const exampleSchema = z.strictObject({
  name: z.string().min(1),
  agent: z.string().min(1),
  action: z.enum(POLICY_ACTIONS as [PolicyAction, ...PolicyAction[]]),
  resource: z.union([
    z.string().min(1),
    z.strictObject({
      type: z.enum(["Tool", "Agent", "Model", "MemoryScope", "Connector"]).optional(),
      id: z.string().min(1),
      attributes: z.record(z.string(), z.unknown()).optional(),
    }),
  ]),
  context: z.record(z.string(), z.unknown()).optional(),
  on_behalf_of: z.string().optional(),
  expect: z.string().regex(EXPECT, 'expect is "allow", "deny", "approval", "approval:<role>" or "approval:<role>:<group>"'),
});
const fileSchema = z.array(exampleSchema).min(1);
export type PolicyExample = z.output<typeof exampleSchema> & { line?: number };

/** Parses an examples file; problems come back as file:line issues. */
export function parsePolicyExamples(file: string, text: string): { examples: PolicyExample[] } | { issues: Issue[] } {
  const source = parseYaml(file, text);
  if (source.syntaxIssues.length > 0) return { issues: source.syntaxIssues };
  const checked = checkYaml(source, fileSchema);
  if (!checked.ok) return { issues: checked.issues };
  const examples = checked.value.map((example, index) => ({ ...example, line: source.lineOf([index]) }));
  return { examples };
}

/** The request an example stands for: resource attributes default to the project's definitions. */
export function exampleRequest(example: PolicyExample): PolicyRequest {
  const resource = typeof example.resource === "string" ? { id: example.resource } : example.resource;
  const context: Record<string, CedarJson> = { ...(toCedarRecord(example.context ?? {}) as Record<string, CedarJson>) };
  const run = typeof context.run_classification === "string" ? context.run_classification : "public";
  context.run_classification = run;
  context.run_classification_level ??= classificationLevel(run as never);
  context.tainted ??= false;
  if (example.action === "tool.call") {
    const args = example.context?.arguments;
    context.arguments = toCedarRecord(args);
    const amount = amountCents(args);
    if (context.amount_cents === undefined && amount !== undefined) context.amount_cents = amount;
  }
  return {
    action: example.action,
    agent: example.agent,
    onBehalfOf: example.on_behalf_of ?? null,
    resource: {
      type: resource.type ?? RESOURCE_TYPE[example.action],
      id: resource.id,
      ...(resource.attributes ? { attributes: toCedarRecord(resource.attributes) } : {}),
    },
    context,
  };
}

/** `allow`, `deny`, `approval:operator`, `approval:operator:finance` — the form `expect` is written in. */
export function decisionText(decision: PolicyDecision): string {
  if (decision.effect === "deny") return "deny";
  if (!decision.approval) return "allow";
  return `approval:${decision.approval.role}${decision.approval.group ? `:${decision.approval.group}` : ""}`;
}

/** `approval` matches any approval; `approval:operator` any group of that role. */
export function matchesExpectation(expect: string, decision: PolicyDecision): boolean {
  const actual = decisionText(decision);
  if (expect === actual) return true;
  return expect.startsWith("approval") && actual.startsWith(`${expect}:`) ? true : expect === "approval" && actual.startsWith("approval");
}

export interface ExampleResult {
  example: PolicyExample;
  decision: PolicyDecision;
  ok: boolean;
}

export function runPolicyExamples(engine: PolicyEngine, examples: PolicyExample[]): ExampleResult[] {
  return examples.map((example) => {
    const decision = engine.authorize(exampleRequest(example));
    return { example, decision, ok: matchesExpectation(example.expect, decision) };
  });
}
