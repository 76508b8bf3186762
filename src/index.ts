/**
 * The `outpost` package as seen by a project's own code, e.g. tools/*.ts:
 *
 *   import { defineTool } from "outpost";
 *
 * Kept small on purpose: tool files load it, so it must not pull in the server.
 */
export { defineTool } from "./definitions/define-tool.js";
export type { Demo, DemoScenario } from "./definitions/demo.js";
export type {
  AgentDefinition,
  AgentLimits,
  AgentToolRef,
  Classification,
  ModelAlias,
  ModelCandidate,
  Project,
  ToolContext,
  ToolDefinition,
  ToolHandlerArgs,
} from "./definitions/types.js";
export type { CaseRecord, CustomScorer, Score } from "./evals/index.js";
export { defineWorkflow } from "./workflows/definition.js";
