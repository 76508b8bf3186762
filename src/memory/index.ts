/**
 * Memory: scoped items with owners, sources and versions; full-text and vector recall fused by rank; the agent's
 * memory tools and the policy requests they make. The runtime recalls from here before each model call.
 */
export { createEmbedder, type Embedder, type EmbedderSettings, hashedEmbedder } from "./embedding.js";
export { chunkDocument, formatOf, type KnowledgeChunk } from "./knowledge.js";
export { type MemoryScopeResolution, memoryRequests, resolveMemoryScopes } from "./policy.js";
export { formatScope, normalizeScope, parseScope, type RunScopeFacts, runScopes, scopeForTool } from "./scopes.js";
export { CLASSIFICATIONS, MemoryStore, type MemoryStoreOptions } from "./store.js";
export { describe as describeMemory, MEMORY_FORGET, MEMORY_RECALL, MEMORY_REMEMBER, MEMORY_TOOL_NAMES, memoryTools } from "./tools.js";
export type * from "./types.js";
