/**
 * The model layer: one ModelClient contract, many drivers — AI SDK providers
 * (openai, anthropic, amazon-bedrock, openai-compatible) and the offline,
 * deterministic scripted model.
 */
export {
  createModelClient,
  createScriptedClient,
  describeModel,
  type ModelClientOptions,
  type ScriptedClientOptions,
} from "./create.js";
export { checkScripts } from "./scripted/check.js";
export type { ScriptFunction, ScriptReply, ScriptSource } from "./scripted/client.js";
export type { ScriptObject } from "./scripted/script.js";
export { encodeToolName } from "./sdk/tool-names.js";
export * from "./types.js";
