/**
 * `defineTool` — how a project declares a tool in `tools/*.ts`:
 *
 *   import { defineTool } from "outpost";
 *   import { z } from "zod";
 *
 *   export default defineTool({
 *     name: "orders.lookup",
 *     description: "Find an order by its number.",
 *     input: z.object({ order_id: z.string() }),
 *     handler: async ({ input }) => findOrder(input.order_id),
 *   });
 *
 * It returns its argument unchanged, typed, and marked so the loader knows a
 * tool when it sees one. The mark is a registered symbol, so tools defined
 * through another copy of this module (tool files are loaded separately) are
 * recognised too.
 */
import type { ToolDefinition } from "./types.js";

const TOOL_BRAND = Symbol.for("outpost.tool");

export function defineTool<I, O>(definition: ToolDefinition<I, O>): ToolDefinition<I, O> {
  Object.defineProperty(definition, TOOL_BRAND, { value: true, enumerable: false });
  return definition;
}

/** True for objects made by `defineTool` (by any copy of Outpost). */
export function isBrandedTool(value: unknown): value is ToolDefinition {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[TOOL_BRAND] === true;
}
