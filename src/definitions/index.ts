/**
 * Project definitions: loading and validating a project folder (outpost.yaml,
 * agents/*.yaml, tools/*.ts), choosing a model candidate, scaffolding a new
 * project. Everything else in Outpost reads projects through this face.
 */
export { defineTool } from "./define-tool.js";
export { parseDuration } from "./duration.js";
export { formatIssue, type Issue, ProjectError } from "./errors.js";
export { type InitOptions, initProject } from "./init.js";
export { DEFAULT_LIMITS, type LoadOptions, loadProject, type Validation, validateProject } from "./load-project.js";
export { expandEnv, selectCandidate } from "./models.js";
export { cedarIssue, positionAt } from "./policies.js";
export { checkYaml } from "./schema-issues.js";
export { PROVIDERS, type Provider } from "./schemas.js";
export { delegateToolName, exposedAgents, handoffToolName } from "./teams.js";
export type * from "./types.js";
export { parseYaml, type YamlSource } from "./yaml-source.js";
