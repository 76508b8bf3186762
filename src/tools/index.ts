/**
 * Tools: the built-ins, delegation and handoff, artifacts, and the business systems Outpost
 * connects to (MCP servers, OpenAPI documents) behind one registry the run loop looks tools up in.
 */
export { ARTIFACTS_READ, artifactPreview, artifactsTool, PREVIEW_CHARS } from "./artifacts.js";
export { builtinTools } from "./builtin.js";
export { collaborationTools } from "./collaboration.js";
export { type EmitEvent, eventTools } from "./events.js";
export { mcpSource, normalizeToolName } from "./mcp.js";
export { openApiSource } from "./openapi.js";
export { ToolRegistry } from "./registry.js";
export {
  type ConnectionSecrets,
  type EgressGuard,
  ToolOutcomeUnknown,
  type ToolSource,
  type ToolSourceDeps,
  type ToolSourceStatus,
  ToolUnavailable,
} from "./source.js";
