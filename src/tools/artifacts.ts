/**
 * `artifacts.read`: the model pages through a large tool output that was kept
 * aside (runtime/executor.ts) instead of flooding its context. A run reads only
 * the artifacts of its own delegation tree, in its own workspace.
 */
import { z } from "zod";
import type { ToolDefinition } from "../definitions/types.js";
import type { Store } from "../store/types.js";

const PAGE = 4_000;
/** Offered to every agent that has tools at all. */
export const ARTIFACTS_READ = "artifacts.read";

/** How much of a large output the model sees at once. */
export const PREVIEW_CHARS = 4_000;

/** What the model sees of an output kept as artifact `id`: its beginning, and how to read the rest. */
export function artifactPreview(output: string, id: string, max: number, what = "this output"): string {
  const preview = Math.min(PREVIEW_CHARS, max);
  return (
    `${output.slice(0, preview)}\n[outpost: ${what} is ${output.length} characters; you see the first ${preview}. ` +
    `The whole ${what === "this output" ? "output" : "answer"} is artifact ${id}: read more with artifacts.read {"id": "${id}", "offset": ${preview}}]`
  );
}

export function artifactsTool(store: Store): ToolDefinition {
  return {
    name: ARTIFACTS_READ,
    description: `Read part of a large tool output that was stored as an artifact (you were shown its id). Returns up to ${PAGE} characters from offset, and the offset of the next part.`,
    input: z.object({
      id: z.string().min(1).max(100),
      offset: z.int().nonnegative().optional(),
      limit: z.int().positive().max(PAGE).optional(),
    }),
    sideEffects: false,
    handler: async ({ input, context }) => {
      const a = await store.getArtifact(context.workspace, input.id);
      if (!a || a.rootRunId !== context.rootRunId) throw new Error(`no artifact "${input.id}" in this run`);
      const start = Math.min(input.offset ?? 0, a.content.length);
      const end = Math.min(start + (input.limit ?? PAGE), a.content.length);
      return {
        id: a.id,
        size: a.size,
        offset: start,
        next_offset: end < a.content.length ? end : null,
        content: a.content.slice(start, end),
      };
    },
  };
}
