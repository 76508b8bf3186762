/**
 * Policy on every action (Cedar): the engine, the request builders the runtime calls, the generated
 * schema, the checks `outpost validate` runs, `outpost policy test` examples and `replay`.
 */
export { checkPolicies, type PolicyCheck, policySchemaText } from "./check.js";
export { agentEntityAttributes, createPolicyEngine, type ProjectPolicyEngine } from "./engine.js";
export {
  decisionText,
  type ExampleResult,
  exampleRequest,
  matchesExpectation,
  type PolicyExample,
  parsePolicyExamples,
  runPolicyExamples,
} from "./examples.js";
export { BASELINE_FILE, type LoadedPolicy, loadPolicySet, policyFiles } from "./policy-set.js";
export { type PolicyFlip, type PolicyReplay, replayPolicyDecisions } from "./replay.js";
export {
  amountCents,
  connectorUseRequest,
  DEFAULT_TOOL_CLASSIFICATION,
  delegateRequest,
  handoffRequest,
  memoryRequest,
  modelEntityId,
  modelUseRequest,
  POLICY_ACTIONS,
  type RunFacts,
  toCedarRecord,
  toolCallRequest,
} from "./requests.js";
export { policySchema } from "./schema.js";
