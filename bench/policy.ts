/**
 * Policy decision latency: one `authorize` (entities built, Cedar evaluated over a preparsed set, the
 * decision assembled) over a mix of realistic requests, with the baseline plus 20 project policies
 * (forbids, @approval permits, amount and taint conditions). Target: p99 ≤ 100 µs.
 */
import type { Project } from "../src/definitions/types.js";
import {
  connectorUseRequest,
  createPolicyEngine,
  delegateRequest,
  memoryRequest,
  modelUseRequest,
  toolCallRequest,
} from "../src/security/policy/index.js";
import type { PolicyRequest } from "../src/security/types.js";

export interface PolicyResult {
  policies: number;
  decisions: number;
  p50Us: number;
  p99Us: number;
  /** The same requests answered again (decision cache). */
  cachedP50Us: number;
  cachedP99Us: number;
  meanUs: number;
}

const PROJECT_POLICIES = `
@id("refunds.over_500") @approval("operator:finance")
permit (principal, action == Action::"tool.call", resource == Tool::"ledger.issue_refund")
when { context has amount_cents && context.amount_cents > 50000 };
@id("refunds.cap") forbid (principal, action == Action::"tool.call", resource == Tool::"ledger.issue_refund")
when { context has amount_cents && context.amount_cents > 1000000 };
@id("support.no_ledger") forbid (principal, action == Action::"tool.call", resource)
when { principal.team == "support" && resource.connection == "ledger" };
@id("tainted.side_effects") @approval("operator")
permit (principal, action == Action::"tool.call", resource) when { context.tainted && resource.side_effects };
@id("restricted.local_only") forbid (principal, action == Action::"model.use", resource)
when { context.run_classification_level >= 2 && resource.location != "local" && principal.clearance_level < 2 };
@id("finance.memory") forbid (principal, action in [Action::"memory.read", Action::"memory.write"], resource == MemoryScope::"team/finance")
unless { principal.teams.contains("finance") };
@id("no_night_owls") forbid (principal == Agent::"intern", action, resource);
@id("crm.readonly") forbid (principal, action == Action::"tool.call", resource)
when { resource.connection == "crm" && resource.side_effects && !principal.teams.contains("sales") };
@id("delegation.finance") forbid (principal, action == Action::"agent.delegate", resource == Agent::"treasury")
unless { principal.team == "finance" };
@id("handoff.support") forbid (principal, action == Action::"agent.handoff", resource) when { resource.team == "finance" && principal.team == "" };
@id("wire.approval") @approval("operator:treasury")
permit (principal, action == Action::"tool.call", resource == Tool::"bank.wire") when { context has amount_cents };
@id("wire.country") forbid (principal, action == Action::"tool.call", resource == Tool::"bank.wire")
when { context.arguments has country && ["KP", "IR", "SY"].contains(context.arguments.country) };
@id("email.external") @approval("operator:support")
permit (principal, action == Action::"tool.call", resource == Tool::"mail.send")
when { context.arguments has to && !(context.arguments.to like "*@acme.example") };
@id("connector.restricted") forbid (principal, action == Action::"connector.use", resource)
when { resource.classification_level == 3 && context.on_behalf_of == "" };
@id("export.bulk") forbid (principal, action == Action::"tool.call", resource == Tool::"crm.export")
when { context.arguments has limit && context.arguments.limit > 1000 };
@id("orders.cancel") @approval("operator")
permit (principal, action == Action::"tool.call", resource == Tool::"orders.cancel") when { context.tainted };
@id("refunds.by_self") forbid (principal, action == Action::"tool.call", resource == Tool::"ledger.issue_refund")
when { context.on_behalf_of == "user:mallory" };
@id("models.cheap_only") forbid (principal, action == Action::"model.use", resource)
when { principal.clearance == "public" && resource.location == "external" };
@id("memory.write_public") forbid (principal, action == Action::"memory.write", resource)
when { resource.classification_level > principal.clearance_level };
@id("audit.reader") permit (principal == Agent::"auditor", action == Action::"memory.read", resource);
`;

function benchPolicyProject(): Project {
  const agent = (name: string, clearance: "internal" | "confidential" | "restricted") => ({
    name,
    description: "",
    instructions: "",
    model: "cloud",
    tools: [],
    delegates: [],
    handoffs: [],
    fanOut: "all" as const,
    limits: {} as never,
    clearance,
    file: `agents/${name}.yaml`,
  });
  return {
    root: "/bench",
    workspace: "acme",
    models: new Map(),
    agents: new Map(
      [agent("support", "internal"), agent("refunds", "confidential"), agent("treasury", "restricted")].map((a) => [a.name, a]),
    ),
    tools: new Map(),
    connections: new Map(),
    teams: new Map([
      ["support", { name: "support", description: "", lead: "support", members: ["support"], exposes: [], file: "" }],
      ["finance", { name: "finance", description: "", lead: "refunds", members: ["refunds", "treasury"], exposes: [], file: "" }],
    ]),
    defaults: { limits: {} as never },
    scriptsDir: "/bench/scripts",
    policies: [{ file: "policies/acme.cedar", text: PROJECT_POLICIES }],
    policyOptions: { baseline: true },
  };
}

function requests(): PolicyRequest[] {
  const refund = { name: "ledger.issue_refund", classification: "confidential" as const };
  const run = { onBehalfOf: "user:ann", runClassification: "confidential" as const };
  return [
    toolCallRequest({
      agent: "refunds",
      tool: refund,
      connection: "ledger",
      args: { order_id: "A-1001", amount: 120.5, reason: "damaged" },
      ...run,
    }),
    toolCallRequest({
      agent: "refunds",
      tool: refund,
      connection: "ledger",
      args: { order_id: "A-1002", amount: 900, reason: "late" },
      ...run,
    }),
    toolCallRequest({
      agent: "support",
      tool: { name: "helpdesk.get_ticket" },
      connection: "helpdesk",
      args: { id: "T-77" },
      ...run,
      tainted: true,
    }),
    toolCallRequest({
      agent: "support",
      tool: { name: "mail.send" },
      args: { to: "bob@example.org", subject: "hi", body: "x".repeat(400) },
      ...run,
    }),
    toolCallRequest({
      agent: "treasury",
      tool: { name: "bank.wire", classification: "restricted" },
      args: { amount_usd: 25_000, country: "DE", iban: "DE89370400440532013000" },
      ...run,
    }),
    modelUseRequest({
      agent: "refunds",
      alias: "cloud",
      candidate: { provider: "openai", model: "gpt-4.1-mini", location: "external" },
      ...run,
      runClassification: "restricted",
    }),
    modelUseRequest({
      agent: "support",
      alias: "local",
      candidate: { provider: "openai-compatible", model: "llama3.1", location: "local" },
      ...run,
    }),
    memoryRequest({ agent: "support", action: "memory.read", scope: "team/finance", classification: "confidential", ...run }),
    memoryRequest({ agent: "refunds", action: "memory.write", scope: "customer/c-42", classification: "confidential", ...run }),
    delegateRequest({ agent: "support", target: "refunds", ...run }),
    connectorUseRequest({ agent: "treasury", connection: { name: "bank", kind: "mcp", classification: "restricted" }, ...run }),
  ];
}

/**
 * Two series: every request new to the engine (a different person each time, so the decision cache cannot answer:
 * the Cedar path), and the same requests again (what a run's repeated model.use / connector.use checks cost).
 */
export function policyLatency(quick: boolean): PolicyResult {
  const engine = createPolicyEngine(benchPolicyProject());
  const mix = requests();
  const rounds = quick ? 1_000 : 5_000;
  let who = 0;
  const fresh = (r: PolicyRequest): PolicyRequest => ({ ...r, onBehalfOf: `user:${who++}` });
  for (let i = 0; i < 2_000; i++) engine.authorize(fresh(mix[i % mix.length] as PolicyRequest)); // warm-up (JIT, wasm)
  const measure = (make: (r: PolicyRequest) => PolicyRequest) => {
    const samples = new Float64Array(rounds * mix.length);
    let n = 0;
    for (let round = 0; round < rounds; round++) {
      for (const request of mix) {
        const r = make(request);
        const start = process.hrtime.bigint();
        engine.authorize(r);
        samples[n++] = Number(process.hrtime.bigint() - start) / 1000;
      }
    }
    const sorted = Array.from(samples).sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
    return { decisions: sorted.length, p50Us: at(0.5), p99Us: at(0.99), meanUs: sorted.reduce((s, v) => s + v, 0) / sorted.length };
  };
  const cold = measure(fresh);
  const warm = measure((r) => r);
  return { policies: engine.policies.length, ...cold, cachedP50Us: warm.p50Us, cachedP99Us: warm.p99Us };
}

export function policySection(r: PolicyResult, record: (name: string, value: string, note?: string) => void): string {
  const met = r.p99Us <= 100;
  record("policy decision p50 (new request)", `${r.p50Us.toFixed(1)} µs`, `${r.policies} policies`);
  record("policy decision p99 (new request)", `${r.p99Us.toFixed(1)} µs`, `target ≤ 100 µs: ${met ? "met" : "MISSED"}`);
  record("policy decision p99 (repeated)", `${r.cachedP99Us.toFixed(1)} µs`, `p50 ${r.cachedP50Us.toFixed(1)} µs, decision cache`);
  return `## Policy decisions (Cedar)

${r.decisions.toLocaleString("en-US")} decisions over 11 realistic requests (tool calls with arguments and amounts, model use
under a restricted run, memory, delegation, a connector) against ${r.policies} policies (the baseline and 20 project
policies: forbids, \`@approval\` permits, amount, taint and argument conditions). One decision = building the entities
and context, Cedar evaluation over the preparsed set (\`statefulIsAuthorized\`), assembling the PolicyDecision.

| Measure | Value | Note |
| --- | ---: | --- |
| p50, request new to the engine | ${r.p50Us.toFixed(1)} µs | mean ${r.meanUs.toFixed(1)} µs |
| p99, request new to the engine | ${r.p99Us.toFixed(1)} µs | target ≤ 100 µs: ${met ? "met" : "**missed**"} |
| p50 / p99, same request again | ${r.cachedP50Us.toFixed(1)} / ${r.cachedP99Us.toFixed(1)} µs | answered by the decision cache |

A new request's cost is almost all the crossing into Cedar's WebAssembly: entities and context are converted on every
call (when this section was written, on the machine then used, an empty call cost ~35 µs and one with two small entities
~140 µs, whatever the number of policies). The engine
passes only the tool arguments some policy reads, and answers repeated requests (a run's model.use and connector.use
checks at every step) from a cache.
`;
}

// `tsx bench/policy.ts`: this section alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = policyLatency(process.argv.includes("--quick"));
  console.log(policySection(r, (name, value, note) => console.log(`${name.padEnd(40)} ${value.padStart(12)}  ${note ?? ""}`)));
}
